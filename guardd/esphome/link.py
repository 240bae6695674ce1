"""The ESPHome link to Home Assistant: a TCP listener (Home Assistant's integration connects to
the device, port 6053 by default) where only a peer that proves the pre-shared key in the Noise
handshake gets anything but the constant refusal (handshake.py), and, with `allow`, only from
those addresses. Everything after the handshake is encrypted.

Connections: Home Assistant keeps one open (its entry's), and opens short ones of its own (adding
the device, re-authenticating). At most PENDING connections may be in their handshake (a newer one
pushes the oldest out, so a flood of strangers cannot lock Home Assistant out for long) and at most
SESSIONS may be past it (a newer one closes the oldest that is not the satellite). The satellite is
the connection that subscribed to the voice assistant; a newer subscription takes its place.

Bounds: the handshake within HANDSHAKE_S, each frame within FRAME_S of its first byte and 64 KiB,
a peer silent for IDLE_S is gone (an idle Home Assistant pings every 40 s), a peer may send at most
RATE_BYTES a second (BURST at once), and what waits to be written is bounded (outbox.py).

Each connection has its own reader thread; what its messages mean goes to the core through the
inbox's peer lane (cli/inbox.py), bounded in bytes: the reader waits there, at most LANE_WAIT_S,
so a peer that sends faster than the core takes is slowed at its own socket, then dropped. The
link's own news (a connection, its end, an upload beginning) always goes in; refusals are
rationed to one each REFUSAL_GAP_S with the rest counted. An announcement Home Assistant asks for
is fetched from its own address on a thread of its own (homeassistant/fetch.py), one at a time,
its pieces into the same lane. The core's calls (set_muted, announce_finished, drop, fetch) never wait on a socket; send_utterance() waits, on the sender's thread, within its
deadline, for Home Assistant to subscribe (it reconnects) and to take the audio.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable, Protocol

from google.protobuf.message import Message
from nacl.exceptions import CryptoError

from guardd.config.settings import ESPHOME
from guardd.esphome import messages
from guardd.esphome.device import Identity
from guardd.esphome.framing import FRAME_MAX, FrameReader, LinkBroken, PeerClosed, TooSlow, unpack_message
from guardd.esphome.handshake import Refused, SeenEphemerals, handshake
from guardd.esphome.inputs import ReplyAudio, RunAnswered, SatelliteOn
from guardd.esphome.outbox import Outbox
from guardd.esphome.satellite import Satellite
from guardd.esphome.session import Session
from guardd.esphome.upload import NotApproved, run_messages
from guardd.homeassistant.fetch import Fetch
from guardd.homeassistant.inputs import PeerFrame, PeerNews, Uploading
from guardd.homeassistant.said import Meaning, SoundChunk
from guardd.journal import Recorder
from guardd.listening import Listener
from guardd.speak.feed import Feed

log = logging.getLogger(__name__)

# Home Assistant pings a link quiet for 20 s, and a pong cancels its next ping: an idle link hears
# from it every 40 s. It gives up after 90 s without an answer; so does guardd.
IDLE_S = 90.0
PENDING = 4  # connections in their handshake at once
SESSIONS = 3  # authenticated connections at once
RATE_BYTES = 96 * 1024  # bytes a second a peer may send (a reply's speech is 32 KB/s)
BURST = 256 * 1024
REFUSAL_GAP_S = 6.0  # one refusal reported at most this often; the rest are counted
SEND_BUFFER = 64 * 1024  # bytes (the kernel doubles it) in flight to one peer
LANE_WAIT_S = 5.0  # the longest a reader (or a fetch) waits for room in the core's inbox
FRAME_COST = 256  # bytes counted in the inbox for an item besides the audio it carries


class Lane(Protocol):
    """The inbox's lane for the link (cli/inbox.py PeerLane)."""

    def offer(self, item: Any, cost: int, wait_s: float = 0.0) -> bool: ...

    def put(self, item: Any) -> None: ...


def cost(said: Any) -> int:
    """What an item weighs in the inbox: its audio, and FRAME_COST for the rest."""
    audio = said.pcm if isinstance(said, ReplyAudio) else said.audio if isinstance(said, SoundChunk) else b""
    return FRAME_COST + len(audio)


class Bucket:
    """At most `rate` a second, `burst` at once: whether `amount` more may pass now."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._level, self._at = burst, time.monotonic()

    def take(self, amount: float) -> bool:
        now = time.monotonic()
        self._level = min(self._burst, self._level + (now - self._at) * self._rate)
        self._at = now
        if amount > self._level:
            return False
        self._level -= amount
        return True


class Connection:
    """One accepted socket: its handshake, then its session."""

    def __init__(self, number: int, sock: socket.socket, peer: str) -> None:
        self.number = number  # the link's count of connections (and fetches): the core tells them apart by it
        self.sock = sock
        self.peer = peer
        self.host = peer.rpartition(":")[0].strip("[]")
        self.since = time.monotonic()
        self.session: Session | None = None
        self.outbox: Outbox | None = None
        self.run: str | None = None  # the request id of this connection's last upload
        self.answer = threading.Event()  # Home Assistant answered the run guardd started
        self.answer_error = False
        self.received: dict[str, int] = {}
        self.second = (time.monotonic(), 0)  # (when this second began, bytes the peer sent in it)

    def shut(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class EsphomeLink:
    destination = ESPHOME  # Home Assistant over this link, as after_wake.upload_to names it

    def __init__(self, host: str, port: int, psk: bytes, identity: Identity, allow: tuple[str, ...],
                 lane: Lane) -> None:
        self._listener = Listener(host, port, allow=allow, allow_key="esphome.allow", serve=self._take,
                                  refused=self._refuse, name="guardd-esphome")
        self._psk = psk
        self._identity = identity
        self._lane = lane
        self._lock = threading.Lock()  # the connection lists, the satellite, the mute, the seen keys
        self._changed = threading.Condition(self._lock)  # the satellite came or went
        self._numbers = 0
        self._fetch: tuple[int, Fetch] | None = None  # the announcement being fetched (its number)
        self.fetches = 0
        self.peak_rate = 0  # the most bytes any peer sent in one second (of RATE_BYTES), for `status`
        self._pending: list[Connection] = []
        self._sessions: list[Connection] = []
        self._satellite: Connection | None = None
        self._muted = True  # until the core says otherwise: a missing mute state means muted
        self._seen = SeenEphemerals()
        self._refusals_held = 0
        self._last_refusal = -REFUSAL_GAP_S
        self.refused = 0
        self._listen = f"{host}:{port}"
        self._listening = False
        self._stopping = False
        self.failure: str | None = None  # why it is not listening (start failed), for `status`

    @property
    def port(self) -> int | None:
        """The port listened on, None while not listening."""
        return self._listener.port if self._listening else None

    def start(self) -> None:
        """Listen (OSError when the address cannot be had, and `failure` says why) and take connections."""
        try:
            self._listener.start()
        except OSError as exc:
            self.failure = exc.strerror or str(exc)
            raise
        self._listening, self.failure = True, None
        self._listen = f"{self._listen.rpartition(':')[0]}:{self._listener.port}"

    def stop(self) -> None:
        self._listener.stop()
        with self._changed:
            self._stopping = True
            everyone = self._pending + self._sessions
            fetch, self._fetch = self._fetch, None
            self._changed.notify_all()
        self._listening = False
        if fetch is not None:
            fetch[1].stop()
        for conn in everyone:
            conn.shut()
        self._listener.join()

    def satellite(self, *, record: Recorder, stream: Callable[[str], Feed]) -> Satellite:
        """The rules, taking this link's messages, for the core's thread."""
        return Satellite(self, record=record, stream=stream)

    # -- the core's calls: none waits on a socket ----------------------------------------------

    @property
    def ready(self) -> bool:
        """Home Assistant has the voice assistant subscribed: an upload may go."""
        return self._satellite is not None

    def set_muted(self, muted: bool) -> None:
        """The owner's mute as it is now; every connection that watches states is told."""
        with self._lock:
            self._muted = muted
            watching = [c for c in self._sessions if c.session is not None and c.session.wants_states]
        for conn in watching:
            assert conn.session is not None
            self._send(conn, conn.session.mute_state())

    def announce_finished(self, success: bool) -> bool:
        """An announcement (or a reply's speech) has played: Home Assistant's run can end."""
        return self._to_satellite(messages.pb.VoiceAssistantAnnounceFinished(success=success))

    def drop(self, connection: int, reason: str) -> None:
        """End connection (or fetch) `connection`: a sound that breaks the rules, say."""
        with self._lock:
            fetch = self._fetch if self._fetch is not None and self._fetch[0] == connection else None
            if fetch is not None:
                self._fetch = None
            conn = next((c for c in self._sessions if c.number == connection), None)
        if fetch is not None:
            log.info("esphome: the announcement's fetch stopped: %s", reason)
            fetch[1].stop()
        if conn is not None:
            log.info("esphome: dropping %s: %s", conn.peer, reason)
            conn.shut()

    def fetch(self, connection: int, url: str) -> int | None:
        """Fetch an announcement that connection `connection` asked for, from that peer's own
        address (homeassistant/fetch.py), on a thread of its own: its number (its pieces come as
        frames of that connection number), or None while another one is being fetched."""
        with self._lock:
            conn = next((c for c in self._sessions if c.number == connection), None)
            if conn is None or self._stopping or (self._fetch is not None and self._fetch[1].running):
                return None
            self._numbers += 1
            number = self._numbers
            self.fetches += 1

        def offer(said: Meaning) -> bool:
            return self._lane.offer(PeerFrame(conn.peer, said, None, number), cost(said), LANE_WAIT_S)

        fetch = Fetch(url, conn.host, offer, name=f"guardd-esphome-fetch-{number}")
        with self._lock:
            self._fetch = (number, fetch)
        fetch.start()
        return number

    def status(self) -> dict[str, Any]:
        with self._lock:
            satellite = self._satellite
            sessions = list(self._sessions)
        received: dict[str, int] = {}
        sent: dict[str, int] = {}
        listening = self._listening
        for conn in sessions:
            for name, n in conn.received.items():
                received[name] = received.get(name, 0) + n
            for type_id, n in (conn.outbox.sent().items() if conn.outbox else ()):
                name = messages.BY_ID[type_id].cls.__name__
                sent[name] = sent.get(name, 0) + n
        return {"listen": self._listen, "listening": listening, "failure": self.failure,
                "peer": satellite.peer if satellite else None,
                "running": satellite is not None, "sessions": len(sessions), "refused": self.refused,
                "connected_s": round(time.monotonic() - satellite.since, 1) if satellite else None,
                "announcements_fetched": self.fetches, "peak_bytes_per_s": self.peak_rate,
                "sent": sent, "received": received}

    # -- the sender's call ---------------------------------------------------------------------

    def send_utterance(self, request_id: str, pcm: bytes, sha256: str, within_s: float) -> tuple[int, str]:
        """One approved utterance as a voice assistant run, to the satellite, all within
        `within_s` (waiting for Home Assistant to subscribe while it reconnects): (audio bytes
        written, "" or why it failed). The audio is hashed again as framed (upload.py); a
        failure part way ends the connection, and nothing is written again for this request."""
        deadline = time.monotonic() + within_s
        try:
            start, audio = run_messages(pcm, sha256)
        except NotApproved as exc:
            return 0, str(exc)
        with self._changed:
            while self._satellite is None or self._satellite.outbox is None:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    return 0, f"Home Assistant has not subscribed to the voice assistant (waited {within_s:g} s)"
                self._changed.wait(left)
            conn = self._satellite
            assert conn.outbox is not None
            conn.run, conn.answer_error = request_id, False
            conn.answer.clear()
        self._lane.put(Uploading(request_id, conn.number))  # before any message: an answer comes after it
        outbox = conn.outbox

        def failed(why: str, sent: int = 0) -> tuple[int, str]:
            log.info("esphome: upload %s to %s failed: %s", request_id, conn.peer, why)
            conn.shut()
            return sent, why

        if outbox.put(*messages.encode(start)) is None:
            return failed("Home Assistant does not take what guardd writes")
        if not conn.answer.wait(max(0.0, deadline - time.monotonic())):
            return failed(f"Home Assistant did not start the pipeline within {within_s:g} s")
        if conn.answer_error:
            return 0, "Home Assistant could not start a pipeline for it"
        sent = 0
        last = None
        for message in audio:
            last = outbox.put(*messages.encode(message), wait_until=deadline)
            if last is None:
                return failed(f"Home Assistant did not take the audio within {within_s:g} s", sent)
            sent += len(message.data)
        if last is None or not outbox.wait_written(last, deadline):
            return failed(f"Home Assistant did not take the audio within {within_s:g} s", sent)
        return sent, ""

    # -- threads -------------------------------------------------------------------------------

    def _take(self, sock: socket.socket, peer: str) -> None:
        """A new connection, on its own thread: it takes a handshake's place (pushing the oldest
        out when they are all taken), then is served."""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._numbers += 1
            conn = Connection(self._numbers, sock, peer)
            pushed = self._pending.pop(0) if len(self._pending) >= PENDING else None
            self._pending.append(conn)
        if pushed is not None:
            pushed.shut()  # its thread reports it
        self._serve(conn)

    def _serve(self, conn: Connection) -> None:
        reader = FrameReader(conn.sock)
        try:
            send, receive = handshake(conn.sock, reader, self._psk, self._fresh)
        except Refused as exc:
            with self._lock:
                self._pending = [c for c in self._pending if c is not conn]
            self._refuse(conn.peer, str(exc))  # counted and said before the stranger sees the close
            conn.sock.close()
            return
        conn.session = Session(self._identity, lambda: self._muted)
        conn.outbox = Outbox(conn.sock, send, lambda why: self._broken(conn, why))
        with self._lock:
            self._pending = [c for c in self._pending if c is not conn]
            self._sessions.append(conn)
            crowd = [c for c in self._sessions if c is not self._satellite]
            oldest = crowd[0] if len(self._sessions) > SESSIONS and crowd[0] is not conn else None
        if oldest is not None:
            oldest.shut()
        conn.outbox.start()
        self._lane.put(PeerNews("connected", conn.peer, connection=conn.number))
        try:
            reason = self._converse(conn, reader, receive)
        except Exception as exc:  # noqa: BLE001 - a bug here must end this connection, said, not the thread silently
            log.exception("esphome: the connection with %s failed", conn.peer)
            reason = f"an error in guardd: {type(exc).__name__}"
        conn.outbox.flush(time.monotonic() + 1.0)  # answers already due still go (a peer may half-close)
        conn.shut()
        with self._changed:
            self._sessions = [c for c in self._sessions if c is not conn]
            if self._satellite is conn:
                self._satellite = None
                self._changed.notify_all()
        conn.outbox.close()
        conn.sock.close()
        self._lane.put(PeerNews("closed", conn.peer, reason, conn.number, conn.run))

    def _converse(self, conn: Connection, reader: FrameReader, receive: Any) -> str:
        """Read, answer and hand over messages until the connection ends; why it ended."""
        assert conn.session is not None and conn.outbox is not None
        budget = Bucket(RATE_BYTES, BURST)
        while True:
            try:
                body = reader.read(quiet_s=IDLE_S, limit=FRAME_MAX)
                self._count_rate(conn, len(body) + 3)
                if not budget.take(len(body) + 3):
                    return f"more than {RATE_BYTES // 1024} KiB a second from the peer"
                try:
                    plaintext = receive.decrypt(body)
                except CryptoError:
                    return "a frame that does not decrypt (not from the peer that made the handshake)"
                message = messages.decode(*unpack_message(plaintext))
            except PeerClosed:
                return "the peer closed the connection"
            except TooSlow as exc:
                return f"nothing from the peer for {IDLE_S:g} s" if exc.quiet else str(exc)
            except (LinkBroken, messages.BadMessage) as exc:
                return str(exc)
            name = type(message).__name__
            conn.received[name] = conn.received.get(name, 0) + 1
            reaction = conn.session.take(message)
            for answer in reaction.answers:
                if not self._send(conn, answer):
                    return "the peer does not take what guardd writes"
            for said in reaction.said:
                if not self._meaning(conn, said):
                    return f"the peer sends faster than guardd takes its messages (for {LANE_WAIT_S:g} s)"
            if reaction.end is not None:
                return reaction.end

    def _count_rate(self, conn: Connection, size: int) -> None:
        """The bytes a peer sends each second, its peak kept (what Home Assistant really sends, say
        a reply's speech, beside RATE_BYTES)."""
        began, sent = conn.second
        now = time.monotonic()
        if now - began >= 1.0:
            began, sent = now, 0
        conn.second = (began, sent + size)
        self.peak_rate = max(self.peak_rate, sent + size)

    def _meaning(self, conn: Connection, said: Any) -> bool:
        """Act on what the link itself must know, and hand the message's meaning to the core;
        False when the core's lane had no room for it in time."""
        if isinstance(said, SatelliteOn):
            with self._changed:
                old = self._satellite if said.on and self._satellite is not conn else None
                if said.on:
                    self._satellite = conn
                elif self._satellite is conn:
                    self._satellite = None
                self._changed.notify_all()
            if old is not None:
                old.shut()  # Home Assistant subscribed again on a newer connection
        elif isinstance(said, RunAnswered) and conn.run is not None:
            conn.answer_error = said.error
            conn.answer.set()
        return self._lane.offer(PeerFrame(conn.peer, said, conn.run, conn.number), cost(said), LANE_WAIT_S)

    def _send(self, conn: Connection, message: Message) -> bool:
        """Queue a message for `conn` without waiting; a full outbox ends the connection."""
        if conn.outbox is None or conn.outbox.put(*messages.encode(message)) is None:
            conn.shut()
            return False
        return True

    def _to_satellite(self, message: Message) -> bool:
        with self._lock:
            conn = self._satellite
        return conn is not None and self._send(conn, message)

    def _broken(self, conn: Connection, why: str) -> None:
        log.info("esphome: %s: %s", conn.peer, why)
        conn.shut()

    def _fresh(self, ephemeral: bytes) -> bool:
        with self._lock:
            return self._seen.first_time(ephemeral)

    def _refuse(self, peer: str, reason: str) -> None:
        """Report a refusal, at most one each REFUSAL_GAP_S; the rest are counted into it."""
        now = time.monotonic()
        with self._lock:
            self.refused += 1
            if now - self._last_refusal < REFUSAL_GAP_S:
                self._refusals_held += 1
                return
            more, self._refusals_held, self._last_refusal = self._refusals_held, 0, now
        if not self._lane.offer(PeerNews("refused", peer, reason, count=more), FRAME_COST):
            with self._lock:
                self._refusals_held += more + 1  # no room now: told with the next one
