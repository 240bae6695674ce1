"""The Wyoming link to Home Assistant: a TCP listener for the addresses the owner allowed
(guardd/listening.py, shared with the ESPHome link), and the connections they make. Home Assistant's Wyoming integration connects to the satellite (not
the other way round): its satellite connection sends `run-satellite` first, then `describe`, then
a `ping` 2 s after each `pong` (giving up after 5 s of silence), and `pause-satellite` before it
closes (homeassistant/components/wyoming/assist_satellite.py, `_connect_and_loop`,
`_run_pipeline_loop`, `run`). Every 30 s its WyomingInfoCoordinator opens a second connection
just to send `describe` (wyoming/coordinator.py and data.py `load_wyoming_info`), while the
satellite connection stays open.

So several connections may be open at once (MAX_CONNECTIONS; the oldest that is not the
satellite connection makes room for a new one), each with its own state and writer
(connection.py). The satellite connection is the one that sent `run-satellite` last: uploads
go to it, and a newer one displaces it (Home Assistant reconnected; the old one is closed, and
its end logged). `describe` and `ping` are answered on whichever connection asked. A connection
that has not started the satellite may send only `describe`, `ping`, `run-satellite` and
`pause-satellite` (and what is only counted); anything else drops it. A connection that says
nothing for POLL_IDLE_S before it starts the satellite, or IDLE_S after, is dropped.

What guardd sends on its own is fixed: `info` (from the config, never from anything the
microphone heard) and `pong` (without the ping's text); the core adds `played`. An approved
utterance goes out through upload(), from the sender's thread, to the satellite connection
while it runs; when there is none (Home Assistant is reconnecting) the upload waits for one
within its deadline. Frames for the core go into the inbox's peer lane (bounded in bytes; the
reader waits there, bounded, so a flooding peer is slowed at its own socket, or dropped), marked
with their connection and the upload they may answer. Frames the protocol does not name, or
that break the bounds (frames.py), drop the connection; so does `pause-satellite` (PAUSED_ENDS).

What is logged costs little while idle: a connection is news for the core (a `peer` record)
once it sends a frame for the core, that is when it starts the satellite; its end is news too,
and so is the end of any connection that broke the protocol or its bounds.
A connection that only asks `describe` (Home Assistant's 30 s poll) is a poll: counted, and
told to the core at most once per POLL_NEWS_S, with the count. Refusals are counted by reason.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import socket
import threading
import time
from collections import Counter
from typing import Any, Callable, Protocol

from guardd.config.settings import WYOMING
from guardd.homeassistant.inputs import PeerFrame, PeerNews, Uploading
from guardd.journal import Recorder
from guardd.listening import Listener
from guardd.speak.feed import Feed
from guardd.wyoming.connection import Connection
from guardd.wyoming.frames import Event, FrameError, read_frame
from guardd.wyoming.satellite import Satellite
from guardd.wyoming.upload import NotApproved, pipeline_frames

log = logging.getLogger(__name__)

IDLE_S = 10.0  # the satellite connection: Home Assistant pings every 2 s, gives up after 5
POLL_IDLE_S = 5.0  # a connection that has not started the satellite (a poll takes milliseconds)
FRAME_S = 10.0  # from its first byte, a frame must be whole within this
MAX_CONNECTIONS = 4  # at once, from allowed peers: the satellite, a poll, a reconnect, one spare
POLL_NEWS_S = 3600.0  # polls are told to the core (and logged) at most this often, counted
LANE_WAIT_S = 5.0  # the longest a connection's reader waits for room in the core's inbox
# Home Assistant's pause ends the connection it came on. Its mute switch turned on stops its
# satellite loop but leaves the connection open (assist_satellite.py _muted_changed); turned off
# again before the loop saw the switch, the loop goes on, on the same connection, with no new
# run-satellite, and its pause would never be lifted (seen on the real one). Ended, Home
# Assistant reconnects 3 s later and sends run-satellite, or, while its switch stays on, waits
# for it to be turned off first (`run`, on_muted).
PAUSED_ENDS = "Home Assistant paused the satellite: it runs it again on a new connection"
SEND_BUFFER = 32 * 1024  # bytes (the kernel doubles it): a second of audio, at most, in flight
RECEIVE_BUFFER = 64 * 1024  # bytes the kernel holds for a peer before its writes wait
FRAME_COST = 256  # bytes counted in the inbox for a frame besides its payload and data
PONG = Event("pong", {"text": None})  # the answer to every ping, as the package's Pong() (the ping's text not copied)

ANSWERED_HERE = frozenset({"describe", "ping"})
COUNTED_ONLY = frozenset({"pong", "played", "transcribe", "voice-started", "voice-stopped"})
BEFORE_SATELLITE = frozenset({"run-satellite", "pause-satellite"})  # for the core, from any connection
FOR_THE_CORE = BEFORE_SATELLITE | frozenset({
    "run-pipeline", "detect", "detection", "synthesize", "transcript", "error", "audio-start",
    "audio-chunk", "audio-stop", "timer-started", "timer-updated", "timer-cancelled", "timer-finished",
})
FROM_PEER = ANSWERED_HERE | COUNTED_ONLY | FOR_THE_CORE  # anything else drops the connection


class Lane(Protocol):
    """The inbox's lane for the link (cli/inbox.py PeerLane)."""

    def offer(self, item: Any, cost: int, wait_s: float = 0.0) -> bool: ...

    def put(self, item: Any) -> None: ...


class SlowFrame(Exception):
    """A frame whose bytes came in a trickle."""


class FrameClock(io.RawIOBase):
    """The peer's socket as the frame reader reads it, with every frame bounded in time: from
    its first byte it must be whole within FRAME_S (a peer trickling a byte at a time keeps
    no connection), and each read waits at most the socket's timeout."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._began: float | None = None

    def readable(self) -> bool:
        return True

    def next_frame(self) -> bool:
        self._began = None
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._conn.recv_into(buffer)
        now = time.monotonic()
        if self._began is None:
            self._began = now
        elif now - self._began > FRAME_S:
            raise SlowFrame(f"a frame took over {FRAME_S:g} s to arrive")
        return n


def not_here(host: str) -> str | None:
    """Why guardd could not listen on `host` on this machine (it is none of its addresses), or
    None; for check-config, so a pasted example address is caught before the daemon runs."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None  # (the config's own check says so)
    if ip.is_unspecified:
        return None
    with socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError as exc:
            return f"{host} is not an address of this machine ({exc.strerror})"
    return None


def frame_cost(event: Event) -> int:
    return FRAME_COST + len(event.payload or b"") + (len(json.dumps(event.data)) if event.data else 0)


class WyomingLink:
    destination = WYOMING  # Home Assistant over this link, as after_wake.upload_to names it

    def __init__(self, host: str, port: int, allow: tuple[str, ...], info: Event, lane: Lane) -> None:
        self._address = (host, port)
        self._allow = allow
        self._info = info
        self._lane = lane
        # The kernel's largest backlog: a burst of connects (refused ones too) never makes Home
        # Assistant wait for SYN retries (27.9).
        self._accepting = Listener(host, port, allow=allow, allow_key="wyoming.allow", serve=self._admit,
                                   refused=self._refuse, name="guardd-wyoming", backlog=socket.SOMAXCONN)
        self._port: int | None = None
        self.failure: str | None = None  # why it is not listening (start failed), for `status`
        self._lock = threading.Lock()  # the connections and the satellite; never held across I/O
        self._changed = threading.Condition(self._lock)  # the satellite connection came or went
        self._connections: dict[int, Connection] = {}
        self._satellite: Connection | None = None
        self._numbers = 0
        self._stopping = False
        self._counting = threading.Lock()  # the counters below, written by several threads
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # connections refused or ended early, by reason
        self.polls = 0
        self._last_poll: float | None = None
        self._polls_untold = 0
        self._polls_told_at = float("-inf")
        self._refusals_untold = 0

    @property
    def port(self) -> int | None:
        """The port listened on, None while not listening (27.10: never an error)."""
        return self._port

    def start(self) -> None:
        """Listen; raises OSError (and `failure` says why) when the address cannot be had."""
        try:
            self._accepting.start()
        except OSError as exc:
            self.failure = exc.strerror or str(exc)
            raise
        self._port = self._accepting.port
        self.failure = None

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            connections = list(self._connections.values())
            self._changed.notify_all()
        self._accepting.stop()
        self._port = None
        for conn in connections:
            conn.shut("guardd is stopping")
        self._accepting.join(2.0)

    @property
    def ready(self) -> bool:
        """The satellite connection is up and Home Assistant has the satellite running."""
        sat = self._satellite
        return sat is not None and sat.open and sat.running

    # -- what the core and the sender call -----------------------------------------------------

    def satellite(self, *, record: Recorder, stream: Callable[[str], Feed]) -> Satellite:
        """The rules, taking this link's Wyoming frames, for the core's thread."""
        return Satellite(self, record=record, stream=stream)

    def set_muted(self, muted: bool) -> None:
        """Nothing to tell: Home Assistant's Wyoming switch shows only its own pause."""

    def send_utterance(self, request_id: str, pcm: bytes, sha256: str, within_s: float) -> tuple[int, str]:
        """One approved utterance as a pipeline run (upload.py frames it and hashes what it framed)."""
        try:
            frames = pipeline_frames(pcm, sha256)
        except NotApproved as exc:
            return 0, str(exc)
        return self.upload(request_id, frames, within_s)

    def send(self, connection: int, event: Event) -> bool:
        """Queue a frame for connection `connection` (never waits); False when it is gone."""
        with self._lock:
            conn = self._connections.get(connection)
        return conn is not None and conn.push(event)

    def drop(self, connection: int, reason: str) -> None:
        """End connection `connection` (a reply that breaks the rules, say), saying why."""
        with self._lock:
            conn = self._connections.get(connection)
        if conn is not None:
            conn.shut(reason)

    def upload(self, request_id: str, frames: list[Event], within_s: float) -> tuple[int, str]:
        """Write one approved pipeline run (upload.py) to the satellite connection while Home
        Assistant has it running, all within `within_s`, waiting for one (Home Assistant
        reconnects within 3 to 13 s) while there is none: (audio bytes written, "" or why it
        failed). A failure part way drops the connection; nothing is written again for it."""
        deadline = time.monotonic() + within_s
        with self._changed:
            while not self.ready:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    sat = self._satellite
                    if sat is None or not sat.open:
                        return 0, f"Home Assistant is not connected (waited {within_s:g} s)"
                    return 0, f"Home Assistant has the satellite paused (waited {within_s:g} s)"
                self._changed.wait(left)
            conn = self._satellite
            assert conn is not None
            conn.run = request_id
        self._lane.put(Uploading(request_id, conn.number))  # before any frame: an answer comes after it
        before = conn.written_audio
        for event in frames:
            if not conn.push(event, wait_s=max(0.0, deadline - time.monotonic())):
                break
        else:
            if conn.flushed(deadline):
                return conn.written_audio - before, ""
        sent = conn.written_audio - before
        if conn.open:
            why = f"Home Assistant did not take the audio within {within_s:g} s"
            conn.shut(why)
            return sent, why
        return sent, f"the upload broke off: {conn.reason}"

    def status(self) -> dict[str, Any]:
        """For `guardd status`: where it listens, the satellite connection (its peer, how long
        it has been up, whether it runs), the connections open, the polls and the counts."""
        port = self.port
        now = time.monotonic()
        with self._lock:
            sat = self._satellite if self._satellite is not None and self._satellite.open else None
            open_now = len(self._connections)
            last_poll = self._last_poll
        return {
            "listen": f"{self._address[0]}:{port if port is not None else self._address[1]}",
            "listening": port is not None, "failure": self.failure,
            "peer": sat.name if sat else None, "running": bool(sat and sat.running),
            "connected_s": round(now - sat.since, 1) if sat else None,
            "connections": open_now, "polls": self.polls,
            "last_poll_s": round(now - last_poll, 1) if last_poll is not None else None,
        } | self._counts()

    def _counts(self) -> dict[str, Any]:
        with self._counting:
            return {"sent": dict(self.sent), "received": dict(self.received), "refused": dict(self.refused)}

    # -- threads -------------------------------------------------------------------------------

    def _admit(self, sock: socket.socket, name: str) -> None:
        """A connection from an allowed peer (guardd/listening.py checked it), on its own thread:
        bounded, counted among the connections (the oldest that is not the satellite connection
        makes room), then read until it ends."""
        if not self._allow:  # (the config requires allow; with none, nobody is let in)
            _close(sock)
            self._refuse(name, "not in wyoming.allow")
            return
        sock.settimeout(POLL_IDLE_S)  # every read and write waits at most this long
        # Bounded buffers: an upload to a peer that stops reading waits, and fails, instead of
        # vanishing into a buffer the kernel would grow to megabytes; a peer's burst waits in its
        # own socket, not in guardd.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each frame goes at once
        with self._lock:
            if self._stopping:
                _close(sock)
                return
            self._numbers += 1
            conn = Connection(self._numbers, sock, name, self._written)
            crowd = [c for c in self._connections.values() if c is not self._satellite]
            evicted = min(crowd, key=lambda c: c.since) if len(self._connections) >= MAX_CONNECTIONS else None
            self._connections[conn.number] = conn
        if evicted is not None:
            evicted.shut(f"over {MAX_CONNECTIONS} connections: the oldest made room")
        conn.start()
        self._serve(conn)

    def _refuse(self, name: str, reason: str) -> None:
        """Counted by reason; told to the core when its lane has room (never waited for)."""
        self._count(self.refused, reason)
        with self._counting:
            missed = self._refusals_untold
        told = self._lane.offer(PeerNews("refused", name, reason, count=missed), FRAME_COST)
        with self._counting:
            self._refusals_untold = self._refusals_untold - missed if told else self._refusals_untold + 1

    def _serve(self, conn: Connection) -> None:
        timed = FrameClock(conn.sock)
        reader = io.BufferedReader(timed)
        reason = "the peer closed the connection"
        broke = False  # the peer broke the protocol or its bounds: its end is news, told or not
        try:
            while timed.next_frame() and (event := read_frame(reader)) is not None:
                if self._take(conn, event):
                    reason = PAUSED_ENDS
                    break
        except (FrameError, SlowFrame) as exc:
            reason, broke = str(exc), True
        except TimeoutError:
            reason = f"nothing from the peer for {IDLE_S if conn.satellite else POLL_IDLE_S:g} s"
        except OSError as exc:
            reason = f"the connection failed: {exc}"
        conn.shut(reason)
        self._ended(conn, broke)

    def _take(self, conn: Connection, event: Event) -> bool:
        """One frame from `conn`: answered, counted or handed to the core; True when it ends the
        connection (pause-satellite)."""
        kind = event.type
        if kind not in FROM_PEER:
            raise FrameError(f"an event type the protocol does not name: {kind[:40]!r}")
        if not conn.open:
            raise FrameError(conn.reason or "the connection ended")
        self._count(self.received, kind)
        conn.last_frame = time.monotonic()
        if kind == "describe":
            conn.describes += 1
            conn.push(self._info)
            return False
        if kind == "ping":
            conn.push(PONG)
            return False
        if kind in COUNTED_ONLY:
            return False
        if not conn.satellite and kind not in BEFORE_SATELLITE:
            raise FrameError(f"{kind} on a connection that has not started the satellite (run-satellite)")
        if not conn.told:
            conn.told = True
            self._lane.put(PeerNews("connected", conn.name, connection=conn.number))
        if kind in BEFORE_SATELLITE:
            self._satellite_frame(conn, kind == "run-satellite")
        frame = PeerFrame(conn.name, event, conn.run, conn.number)
        if not self._lane.offer(frame, frame_cost(event), LANE_WAIT_S):
            raise FrameError(f"the peer sends faster than guardd takes its frames (for {LANE_WAIT_S:g} s)")
        return kind == "pause-satellite"

    def _satellite_frame(self, conn: Connection, run: bool) -> None:
        """run-satellite makes `conn` the satellite connection (displacing another); pause
        stops uploads on it. Only `conn`'s own state changes otherwise."""
        displaced = None
        with self._changed:
            conn.running = run
            if run:
                if not conn.satellite:
                    conn.satellite = True
                    conn.sock.settimeout(IDLE_S)
                if self._satellite is not conn:
                    displaced, self._satellite = self._satellite, conn
            self._changed.notify_all()
        if displaced is not None:
            displaced.shut(f"displaced: Home Assistant started the satellite again from {conn.name}")

    def _ended(self, conn: Connection, broke: bool) -> None:
        with self._changed:
            self._connections.pop(conn.number, None)
            if self._satellite is conn:
                self._satellite = None
            self._changed.notify_all()
        conn.finish()
        if conn.told or broke:
            self._lane.put(PeerNews("closed", conn.name, conn.reason or "", conn.number, conn.run))
        elif conn.describes and conn.reason == "the peer closed the connection":
            self._polled(conn)
        else:  # an allowed peer's connection that ended before it was of any use
            self._count(self.refused, _reason_kind(conn.reason or ""))

    def _polled(self, conn: Connection) -> None:
        """A poll ended: counted, and told at most once per POLL_NEWS_S (never waited for)."""
        now = time.monotonic()
        with self._counting:
            self.polls += 1
            self._last_poll = now
            self._polls_untold += 1
            due = now - self._polls_told_at >= POLL_NEWS_S
            count = self._polls_untold
            if due:
                self._polls_told_at = now
        if due and self._lane.offer(PeerNews("polls", conn.host, count=count), FRAME_COST):
            with self._counting:
                self._polls_untold -= count

    def _written(self, kind: str) -> None:
        self._count(self.sent, kind)

    def _count(self, counter: Counter[str], key: str) -> None:
        with self._counting:
            counter[key] += 1


def _reason_kind(reason: str) -> str:
    """A reason without the numbers that make each one unique, for counting."""
    return reason.split(":")[0][:80] or "ended"


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
