"""The Wyoming link to Home Assistant: a TCP listener that lets one peer in at a time, and only
from the addresses the owner allowed. Home Assistant's Wyoming integration connects to the
satellite (not the other way round), sends `run-satellite`, asks `describe`, pings every 2 s
and reconnects when the link drops.

What guardd sends here on its own is fixed: `info` (from the config, never from anything the
microphone heard) and `pong` (without the ping's text: nothing of the peer's is echoed); the
core adds `played` and `error`. An approved utterance goes out through upload(), from the
sender's thread, and only while the peer has the satellite running (`run-satellite`, and no
`pause-satellite` since). Every other frame the peer sends is handed to the core as a
PeerFrame, in order, from this link's own thread, marked with the upload it may answer;
frames the protocol does not name, or that break the bounds (frames.py), drop the connection.
So does a peer that sends nothing for IDLE_S (its pings stopped) or does not take what guardd
writes within IDLE_S. Each connection, refusal and drop is handed over as PeerNews, for the
log. Frames sent and received are counted by type, for `guardd status`.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from wyoming.event import Event
from wyoming.ping import Pong

from guardd.wyoming.frames import FrameError, read_frame, write_frame

log = logging.getLogger(__name__)

IDLE_S = 10.0  # Home Assistant pings every 2 s and gives up after 5: a link silent this long is gone
# Every frame type a peer may send; anything else drops the connection.
FROM_PEER = frozenset({
    "describe", "ping", "pong", "run-satellite", "pause-satellite", "run-pipeline", "detect",
    "transcribe", "transcript", "synthesize", "audio-start", "audio-chunk", "audio-stop", "error",
    "voice-started", "voice-stopped", "played", "timer-started", "timer-updated", "timer-cancelled",
    "timer-finished", "detection",
})
FRAME_S = 10.0  # from its first byte, a frame must be whole within this
SEND_BUFFER = 32 * 1024  # bytes (the kernel doubles it): a second of audio, at most, in flight
ANSWERED_HERE = frozenset({"describe", "ping", "pong"})  # never handed to the core


@dataclass(frozen=True)
class PeerNews:
    """A connection came (`connected`), was refused (`refused`: not in allow) or ended (`closed`)."""

    what: str
    peer: str
    reason: str = ""


@dataclass(frozen=True)
class PeerFrame:
    """A frame from the connected peer, for the core; `run` is the request id of the last
    upload on this connection (what the frame may be an answer to), None before any."""

    peer: str
    event: Event
    run: str | None = None


@dataclass(frozen=True)
class Uploading:
    """An approved upload is about to be written: the frames that follow may answer it."""

    request_id: str


class SlowFrame(Exception):
    """A frame whose bytes came in a trickle."""


class FrameClock(io.RawIOBase):
    """The peer's socket as the frame reader reads it, with every frame bounded in time: from
    its first byte it must be whole within FRAME_S (a peer trickling a byte at a time keeps
    no connection), and each read waits at most IDLE_S (the socket's timeout)."""

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


def allowed(address: str, allow: tuple[str, ...]) -> bool:
    """Whether a peer's address is one of `allow` (an IPv4 address seen as ::ffff:a.b.c.d too)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip == ipaddress.ip_address(a) for a in allow)


class WyomingLink:
    def __init__(self, host: str, port: int, allow: tuple[str, ...], info: Event,
                 deliver: Callable[[Any], None]) -> None:
        self._address = (host, port)
        self._allow = allow
        self._info = info
        self._deliver = deliver
        self._listener: socket.socket | None = None
        self._peer: socket.socket | None = None
        self._peer_name = ""
        self._since = 0.0
        self._running = False  # the peer sent run-satellite, and no pause-satellite since
        self._run: str | None = None  # the request id of this connection's last upload
        self._lock = threading.Lock()  # the peer socket, and writes to it
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._address)
        listener.listen(4)
        self._listener = listener
        self._spawn(self._accept, "guardd-wyoming-accept")

    def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            self._close(self._listener)  # (the shutdown wakes the thread blocked in accept)
        self._drop(None, "guardd is stopping")
        for thread in self._threads:
            thread.join(2.0)

    @property
    def ready(self) -> bool:
        """A peer is connected and has the satellite running: an upload may go."""
        return self._peer is not None and self._running

    def send(self, event: Event) -> bool:
        """Write one frame to the peer; False when none is connected or the write failed."""
        with self._lock:
            peer = self._peer
        return peer is not None and self._write(peer, event) is None

    def upload(self, request_id: str, frames: list[Event], within_s: float) -> tuple[int, str]:
        """Write one approved pipeline run (upload.py) to the peer that has the satellite
        running, all within `within_s`: (audio bytes written, "" or why it failed). A failure
        part way drops the connection; nothing is ever written again for this request."""
        with self._lock:
            peer = self._peer
            if peer is None:
                return 0, "Home Assistant is not connected"
            if not self._running:
                return 0, "Home Assistant has the satellite paused (or has not started it)"
            self._run = request_id
        self._deliver(Uploading(request_id))  # before any frame: an answer comes after it
        deadline = time.monotonic() + within_s
        sent = 0
        for event in frames:
            if time.monotonic() > deadline:
                why = f"Home Assistant did not take the audio within {within_s:g} s"
                self._drop(peer, why)
                return sent, why
            failed = self._write(peer, event)
            if failed is not None:
                return sent, f"the upload broke off: {failed}"
            if event.type == "audio-chunk":
                sent += len(event.payload or b"")
        return sent, ""

    def drop(self, reason: str) -> None:
        """End the current connection (a reply that breaks the rules, say), saying why."""
        self._drop(None, reason)

    def status(self) -> dict[str, Any]:
        with self._lock:
            peer = self._peer_name if self._peer is not None else None
            return {"listen": f"{self._address[0]}:{self.port}", "peer": peer, "running": self.ready,
                    "connected_s": round(time.monotonic() - self._since, 1) if peer else None,
                    "sent": dict(self.sent), "received": dict(self.received)}

    def _write(self, peer: socket.socket, event: Event) -> str | None:
        """Write a frame to `peer` if it is still the current one: None, or why not (the
        connection is then dropped)."""
        with self._lock:
            if peer is not self._peer:
                return "Home Assistant reconnected or went away"
            frame = io.BytesIO()
            write_frame(frame, event)
            try:
                peer.sendall(frame.getvalue())  # one call: it waits at most IDLE_S in all
            except OSError as exc:
                failed = f"cannot write to the peer: {exc}"
            else:
                self.sent[event.type] += 1
                return None
        self._drop(peer, failed)
        return failed

    # -- threads -------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping:
            try:
                conn, address = self._listener.accept()
            except OSError:
                return  # the listener was closed: guardd is stopping
            name = f"{address[0]}:{address[1]}"
            if not allowed(address[0], self._allow):
                conn.close()  # nothing is written to a peer outside allow
                self._deliver(PeerNews("refused", name, "not in wyoming.allow"))
                continue
            conn.settimeout(IDLE_S)  # every read and every write waits at most this long
            # A bounded send buffer: an upload to a peer that stops reading waits, and fails,
            # instead of vanishing into a buffer the kernel would grow to megabytes.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each frame goes at once
            with self._lock:
                old, self._peer, self._peer_name, self._since = self._peer, conn, name, time.monotonic()
                self._running, self._run = False, None
            if old is not None:
                self._close(old)  # Home Assistant reconnected: the old link is dead
            self._deliver(PeerNews("connected", name))
            self._spawn(self._serve, "guardd-wyoming-peer", conn, name)

    def _serve(self, conn: socket.socket, name: str) -> None:
        timed = FrameClock(conn)
        reader = io.BufferedReader(timed)
        reason = "the peer closed the connection"
        try:
            while timed.next_frame() and (event := read_frame(reader)) is not None:
                if event.type not in FROM_PEER:
                    raise FrameError(f"an event type the protocol does not name: {event.type[:40]!r}")
                self.received[event.type] += 1
                if event.type == "describe":
                    self._write(conn, self._info)
                elif event.type == "ping":
                    self._write(conn, Pong().event())
                elif event.type not in ANSWERED_HERE:
                    if event.type in ("run-satellite", "pause-satellite"):
                        with self._lock:
                            self._running = event.type == "run-satellite" and conn is self._peer
                    self._deliver(PeerFrame(name, event, self._run))
        except (FrameError, SlowFrame) as exc:
            reason = str(exc)
        except TimeoutError:
            reason = f"nothing from the peer for {IDLE_S:g} s"
        except OSError as exc:
            reason = f"the connection failed: {exc}"
        self._drop(conn, reason)

    def _drop(self, conn: socket.socket | None, reason: str) -> None:
        """End the link with `conn` (None: whichever is current), once, saying why."""
        with self._lock:
            if self._peer is None or (conn is not None and conn is not self._peer):
                if conn is not None:
                    self._close(conn)  # a link already replaced
                return
            conn, name, self._peer, self._running = self._peer, self._peer_name, None, False
        self._close(conn)
        self._deliver(PeerNews("closed", name, reason))

    @staticmethod
    def _close(conn: socket.socket) -> None:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
