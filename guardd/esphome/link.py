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

Each connection has its own reader thread; what its messages mean is handed to the core through
`deliver` (which must not block), refusals rationed to one each REFUSAL_GAP_S with the rest
counted. The core's calls (set_muted, announce_finished, end_run, drop) never wait on a socket;
upload() waits, on the sender's thread, within its deadline.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable

from google.protobuf.message import Message
from nacl.exceptions import CryptoError

from guardd.esphome import messages
from guardd.esphome.device import Identity
from guardd.esphome.framing import FRAME_MAX, FrameReader, LinkBroken, PeerClosed, TooSlow, unpack_message
from guardd.esphome.handshake import Refused, SeenEphemerals, handshake
from guardd.esphome.inputs import PeerFrame, PeerNews, RunAnswered, SatelliteOn, Uploading
from guardd.esphome.outbox import Outbox
from guardd.esphome.session import Session
from guardd.esphome.upload import NotApproved, run_messages
from guardd.listening import Listener

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

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.since = time.monotonic()
        self.session: Session | None = None
        self.outbox: Outbox | None = None
        self.run: str | None = None  # the request id of this connection's last upload
        self.answer = threading.Event()  # Home Assistant answered the run guardd started
        self.answer_error = False
        self.received: dict[str, int] = {}

    def shut(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class EsphomeLink:
    def __init__(self, host: str, port: int, psk: bytes, identity: Identity, allow: tuple[str, ...],
                 deliver: Callable[[Any], None]) -> None:
        self._listener = Listener(host, port, allow=allow, allow_key="esphome.allow", serve=self._take,
                                  refused=self._refuse, name="guardd-esphome")
        self._psk = psk
        self._identity = identity
        self._deliver = deliver
        self._lock = threading.Lock()  # the connection lists, the satellite, the mute, the seen keys
        self._pending: list[Connection] = []
        self._sessions: list[Connection] = []
        self._satellite: Connection | None = None
        self._muted = True  # until the core says otherwise: a missing mute state means muted
        self._seen = SeenEphemerals()
        self._refusals_held = 0
        self._last_refusal = -REFUSAL_GAP_S
        self.refused = 0
        self._listen = f"{host}:{port}"

    @property
    def port(self) -> int:
        return self._listener.port

    def start(self) -> None:
        """Listen (OSError when the address cannot be had) and take connections."""
        self._listener.start()
        self._listen = f"{self._listen.rpartition(':')[0]}:{self.port}"

    def stop(self) -> None:
        self._listener.stop()
        with self._lock:
            everyone = self._pending + self._sessions
        for conn in everyone:
            conn.shut()
        self._listener.join()

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

    def end_run(self) -> bool:
        """Stop the pipeline run guardd started (Home Assistant aborts it)."""
        return self._to_satellite(messages.pb.VoiceAssistantRequest(start=False))

    def drop(self, reason: str) -> None:
        """End the satellite's connection (a reply that breaks the rules, say)."""
        with self._lock:
            conn = self._satellite
        if conn is not None:
            log.info("esphome: dropping %s: %s", conn.peer, reason)
            conn.shut()

    def status(self) -> dict[str, Any]:
        with self._lock:
            satellite = self._satellite
            sessions = list(self._sessions)
        received: dict[str, int] = {}
        sent: dict[str, int] = {}
        for conn in sessions:
            for name, n in conn.received.items():
                received[name] = received.get(name, 0) + n
            for type_id, n in (conn.outbox.sent().items() if conn.outbox else ()):
                name = messages.BY_ID[type_id].cls.__name__
                sent[name] = sent.get(name, 0) + n
        return {"listen": self._listen, "peer": satellite.peer if satellite else None,
                "running": satellite is not None, "sessions": len(sessions), "refused": self.refused,
                "connected_s": round(time.monotonic() - satellite.since, 1) if satellite else None,
                "sent": sent, "received": received}

    # -- the sender's call ---------------------------------------------------------------------

    def upload(self, request_id: str, pcm: bytes, sha256: str, within_s: float) -> tuple[int, str]:
        """One approved utterance as a voice assistant run, to the satellite, all within
        `within_s`: (audio bytes written, "" or why it failed). The audio is hashed again as
        framed (upload.py); a failure part way ends the connection, and nothing is written
        again for this request."""
        deadline = time.monotonic() + within_s
        try:
            start, audio = run_messages(pcm, sha256)
        except NotApproved as exc:
            return 0, str(exc)
        with self._lock:
            conn = self._satellite
            if conn is None or conn.outbox is None:
                return 0, "Home Assistant has not subscribed to the voice assistant"
            conn.run, conn.answer_error = request_id, False
            conn.answer.clear()
        self._deliver(Uploading(request_id))  # before any message: an answer comes after it
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
        conn = Connection(sock, peer)
        with self._lock:
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
            conn.sock.close()
            self._refuse(conn.peer, str(exc))
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
        self._deliver(PeerNews("connected", conn.peer))
        try:
            reason = self._converse(conn, reader, receive)
        except Exception as exc:  # noqa: BLE001 - a bug here must end this connection, said, not the thread silently
            log.exception("esphome: the connection with %s failed", conn.peer)
            reason = f"an error in guardd: {type(exc).__name__}"
        conn.outbox.flush(time.monotonic() + 1.0)  # answers already due still go (a peer may half-close)
        conn.shut()
        with self._lock:
            self._sessions = [c for c in self._sessions if c is not conn]
            was_satellite = self._satellite is conn
            if was_satellite:
                self._satellite = None
        conn.outbox.close()
        conn.sock.close()
        self._deliver(PeerNews("closed", conn.peer, reason))

    def _converse(self, conn: Connection, reader: FrameReader, receive: Any) -> str:
        """Read, answer and hand over messages until the connection ends; why it ended."""
        assert conn.session is not None and conn.outbox is not None
        budget = Bucket(RATE_BYTES, BURST)
        while True:
            try:
                body = reader.read(quiet_s=IDLE_S, limit=FRAME_MAX)
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
                self._meaning(conn, said)
            if reaction.end is not None:
                return reaction.end

    def _meaning(self, conn: Connection, said: Any) -> None:
        if isinstance(said, SatelliteOn):
            with self._lock:
                old = self._satellite if said.on and self._satellite is not conn else None
                if said.on:
                    self._satellite = conn
                elif self._satellite is conn:
                    self._satellite = None
            if old is not None:
                old.shut()  # Home Assistant subscribed again on a newer connection
        elif isinstance(said, RunAnswered) and conn.run is not None:
            conn.answer_error = said.error
            conn.answer.set()
        self._deliver(PeerFrame(conn.peer, said, conn.run))

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
        self._deliver(PeerNews("refused", peer, reason, more))
