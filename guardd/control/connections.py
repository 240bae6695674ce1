"""The control socket's listening socket, its connections and the limits on them.

A flood of idle connections (connected, nothing asked) must not lock out the next real client,
so idle ones are bounded per peer uid and in total, and when a limit is reached the oldest idle
connection is closed to make room for the newcomer rather than the newcomer being refused. A
connection that has asked to submit or subscribe holds something the core is doing for it and
is never closed to make room; only a uid's own places limit those.
"""

from __future__ import annotations

import grp
import logging
import os
import socket
import stat
import struct
from collections import Counter
from pathlib import Path

from guardd.config.settings import SocketConfig
from guardd.confirm.outbox import Caller
from guardd.control import protocol
from guardd.errors import GuarddError

log = logging.getLogger(__name__)

MAX_CLIENTS = 32  # connections in all
MAX_CLIENTS_PER_UID = 16  # one user holds at most half the places, so another always finds room
MAX_IDLE = 16  # connections that have not asked to submit or subscribe, in all
MAX_IDLE_PER_UID = 8
RECENT_CALL_S = 1.0  # an idle connection that asked this recently is the last to be closed
EVICTION_LOG_S = 10.0  # closed-to-make-room connections are counted in one log line this often


def say_busy(sock: socket.socket, why: str) -> None:
    """Tell a connection that is not (or no longer) served why, without waiting for it to read."""
    try:
        sock.send(protocol.encode(protocol.error("busy", why)))
    except OSError:
        pass


class Waker:
    """A socket pair that wakes the selector thread from another thread."""

    def __init__(self) -> None:
        self.readable, self._w = socket.socketpair()
        self.readable.setblocking(False)
        self._w.setblocking(False)

    def poke(self) -> None:
        try:
            self._w.send(b"x")
        except OSError:
            pass  # already poked (the buffer is full), or shutting down

    def drain(self) -> None:
        try:
            while self.readable.recv(4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.readable.close()
        self._w.close()


def peer_caller(sock: socket.socket) -> Caller:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = "?"
    return Caller(uid, pid, exe)


class Conn:
    def __init__(self, client: int, sock: socket.socket, caller: Caller, now: float) -> None:
        self.client = client
        self.sock = sock
        self.caller = caller
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.line_started: float | None = now  # the read deadline runs from here
        self.closing = False  # close once the output is flushed
        self.closing_since = 0.0  # a client that never reads it is closed read_timeout_s later
        self.holding = False  # asked to submit or subscribe: never closed to make room
        self.calls = 0  # complete calls handed to the core
        self.idle_since = now  # connected, or last sent a complete line

    @property
    def idle(self) -> bool:
        return not self.holding

    def queue(self, data: bytes, *, close: bool, max_pending: int, now: float) -> None:
        """Add output (under the server's lock). A client owed more than max_pending bytes does
        not read: its output is dropped and it is closed."""
        self.outbuf += data
        was_closing = self.closing
        if len(self.outbuf) > max_pending:
            self.outbuf.clear()
            self.closing = True
        self.closing = self.closing or close
        if self.closing and not was_closing:
            self.closing_since = now

    def lines(self, data: bytes, now: float) -> list[bytes]:
        """Take bytes read; the complete lines among them, in order. The read deadline runs
        from the first byte of a line, and a complete line ends the connection's idleness."""
        if self.line_started is None:
            self.line_started = now
        self.inbuf += data
        complete = []
        while b"\n" in self.inbuf:
            line, _, rest = bytes(self.inbuf).partition(b"\n")
            self.inbuf = bytearray(rest)
            self.line_started = now if rest else None
            self.idle_since = now
            complete.append(line)
        return complete

    def eviction_order(self, now: float) -> tuple[int, float]:
        """Which idle connection goes first: one already being closed, then one that never
        asked anything, then one whose status answer is delivered, and last one that asked in
        the last second or still has output queued (its answer may be on its way); the oldest
        first within each."""
        if self.closing:
            tier = 0
        elif not self.calls:
            tier = 1
        elif self.outbuf or now - self.idle_since < RECENT_CALL_S:
            tier = 3
        else:
            tier = 2
        return tier, self.idle_since


class Evictions:
    """Idle connections closed to make room, counted per uid and logged at most once every
    EVICTION_LOG_S: a flood would otherwise flood the journal too."""

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self._logged = -EVICTION_LOG_S

    def add(self, uid: int, now: float) -> None:
        self._counts[uid] += 1
        self.log(now)

    def log(self, now: float) -> None:
        if self._counts and now - self._logged >= EVICTION_LOG_S:
            counts = ", ".join(f"uid {uid}: {n}" for uid, n in sorted(self._counts.items()))
            log.warning("control socket: closed %d idle connections to make room (%s); at most %d idle, "
                        "%d per uid", sum(self._counts.values()), counts, MAX_IDLE, MAX_IDLE_PER_UID)
            self._counts.clear()
            self._logged = now


def eviction_pool(conns: list[Conn], uid: int) -> list[Conn] | None:
    """None when one more connection from `uid` fits the limits; else the idle connections one
    of which must close first: the newcomer's own uid's when that uid is at its limits, else
    those of the uid holding the most idle connections (a flood pays for itself). Empty: none
    can go, and the newcomer is refused."""
    mine = [c for c in conns if c.caller.uid == uid]
    idle = [c for c in conns if c.idle]
    if len(mine) >= MAX_CLIENTS_PER_UID or sum(c.idle for c in mine) >= MAX_IDLE_PER_UID:
        return [c for c in mine if c.idle]
    if len(conns) >= MAX_CLIENTS or len(idle) >= MAX_IDLE:
        most = Counter(c.caller.uid for c in idle)
        return [c for c in idle if most[c.caller.uid] == max(most.values())]
    return None


def bind_socket(cfg: SocketConfig) -> socket.socket:
    """The listening socket at cfg.path, mode 0660 from its first moment, in cfg.group."""
    path = Path(cfg.path)
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise GuarddError(f"socket.path {path} exists and is not a socket; remove it or pick another path")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # a stale socket from a process that died
            else:
                raise GuarddError(f"another guardd is listening on {path}")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)  # the socket is created 0660: no window where others could connect
        try:
            listener.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o660)
        if cfg.group:
            os.chown(path, -1, grp.getgrnam(cfg.group).gr_gid)
        listener.listen(16)
        listener.setblocking(False)
        return listener
    except KeyError:
        raise GuarddError(f"socket.group {cfg.group!r} is not a group on this system") from None
    except OSError as exc:
        raise GuarddError(f"cannot create the control socket {path}: {exc.strerror}") from None

