"""The control socket: local programs submit sends, ask for status and subscribe to events.

A Unix stream socket (mode 0660, group configurable) speaking newline-delimited JSON. This
module only moves bytes: one thread accepts, reads and writes with a selector, turns each
complete line into a `ClientCall` (with the caller's uid, pid and executable from SO_PEERCRED)
for the core's inbox, and reports a closed connection as `ClientGone` so its request is
cancelled. Limits keep a hostile or broken client from hurting anyone else: a frame size limit,
a read deadline for a started line, a cap on connections and on unsent output.

A flood of idle connections (connected, nothing asked) must not lock out the next real client,
so idle ones are bounded per peer uid and in total, and when a limit is reached the oldest idle
connection is closed to make room for the newcomer rather than the newcomer being refused. A
connection that has asked to submit or subscribe holds something the core is doing for it and
is never closed to make room; only a uid's own places limit those.
"""

from __future__ import annotations

import base64
import binascii
import errno
import grp
import json
import logging
import os
import selectors
import socket
import stat
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from guardd.config.settings import SocketConfig
from guardd.errors import GuarddError
from guardd.confirm.outbox import Caller

log = logging.getLogger(__name__)

MAX_CLIENTS = 32  # connections in all
MAX_CLIENTS_PER_UID = 16  # one user holds at most half the places, so another always finds room
MAX_IDLE = 16  # connections that have not asked to submit or subscribe, in all
MAX_IDLE_PER_UID = 8
RECENT_CALL_S = 1.0  # an idle connection that asked this recently is the last to be closed
EVICTION_LOG_S = 10.0  # closed-to-make-room connections are counted in one log line this often
MAX_PENDING_OUTPUT = 8_000_000  # bytes queued for a client that does not read: then it is dropped
READ_CHUNK = 65536
ACCEPTS_PER_ROUND = 8  # then the waiting lines are read: a connect storm cannot starve them
CALLS = ("submit", "status", "subscribe", "mute")
HOLDING_CALLS = ("submit", "subscribe")  # the connection stays open for what the core does next


@dataclass(frozen=True)
class ClientCall:
    client: int
    message: dict[str, Any]
    caller: Caller


@dataclass(frozen=True)
class ClientGone:
    client: int


class BadRequest(ValueError):
    pass


def parse_submit(message: dict[str, Any]) -> tuple[str, str, bytes, str | None]:
    """(kind, destination, payload, content type) of a submit call, or BadRequest."""
    to = message.get("to")
    if not isinstance(to, str) or not to or len(to) > 64:
        raise BadRequest("submit needs \"to\": the name of a configured destination")
    kind = message.get("kind", "message" if "text" in message else "upload")
    if kind == "message":
        text = message.get("text")
        if not isinstance(text, str):
            raise BadRequest("a message needs \"text\": a string")
        try:
            return kind, to, text.encode("utf-8"), None
        except UnicodeEncodeError:  # JSON allows "\ud800", a lone surrogate UTF-8 cannot hold
            raise BadRequest("\"text\" is not valid Unicode") from None
    if kind == "upload":
        data = message.get("data")
        if not isinstance(data, str):
            raise BadRequest("an upload needs \"data\": the payload in base64")
        try:
            payload = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("\"data\" is not valid base64") from None
        content_type = message.get("content_type")
        if content_type is not None and (not isinstance(content_type, str) or not content_type.isprintable()
                                         or len(content_type) > 100):
            raise BadRequest("\"content_type\" must be a short printable string")
        return kind, to, payload, content_type
    raise BadRequest("\"kind\" must be \"message\" or \"upload\"")


def peer_caller(sock: socket.socket) -> Caller:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = "?"
    return Caller(uid, pid, exe)


class _Conn:
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


class ControlServer:
    def __init__(self, cfg: SocketConfig, deliver: Callable[[ClientCall | ClientGone], None]) -> None:
        self.cfg = cfg
        self._deliver = deliver
        self._sel = selectors.DefaultSelector()
        self._conns: dict[int, _Conn] = {}
        self._lock = threading.Lock()
        self._next_id = 1
        self._stop = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.path = Path(cfg.path)
        self._evicted: Counter[int] = Counter()  # uid -> idle connections closed, not yet logged
        self._evicted_logged = -EVICTION_LOG_S

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._listener = self._bind()
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, name="guardd-control", daemon=True)
        self._thread.start()

    def _bind(self) -> socket.socket:
        path = self.path
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
            if self.cfg.group:
                os.chown(path, -1, grp.getgrnam(self.cfg.group).gr_gid)
            listener.listen(16)
            listener.setblocking(False)
            return listener
        except KeyError:
            raise GuarddError(f"socket.group {self.cfg.group!r} is not a group on this system") from None
        except OSError as exc:
            raise GuarddError(f"cannot create the control socket {path}: {exc.strerror}") from None

    def stop(self) -> None:
        self._stop = True
        self._poke()
        if self._thread is not None:
            self._thread.join(2.0)
        for conn in list(self._conns.values()):
            conn.sock.close()
        self._conns.clear()
        if self._listener is not None:
            self._listener.close()
            try:
                self.path.unlink()
            except OSError:
                pass
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # -- from the core thread ------------------------------------------------------------------

    def send(self, client: int, message: dict[str, Any], *, close: bool = False) -> None:
        """Queue one JSON line for a client (thread-safe); a client that stopped reading is dropped."""
        data = json.dumps(message, sort_keys=True).encode() + b"\n"
        with self._lock:
            conn = self._conns.get(client)
            if conn is None:
                return
            conn.outbuf += data
            was_closing = conn.closing
            if len(conn.outbuf) > MAX_PENDING_OUTPUT:
                conn.outbuf.clear()
                conn.closing = True
            conn.closing = conn.closing or close
            if conn.closing and not was_closing:
                conn.closing_since = time.monotonic()
        self._poke()

    def _poke(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already poked, or shutting down

    # -- the selector thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop:
            for key, _mask in self._sel.select(timeout=0.2):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    self._readable(key.data)
            self._flush_and_expire()

    def _accept(self) -> None:
        """Take at most ACCEPTS_PER_ROUND connections; the rest wait in the backlog until the
        lines already sent have been read, so a storm of connects cannot starve an asking client."""
        assert self._listener is not None
        for _ in range(ACCEPTS_PER_ROUND):
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    log.warning("control socket: out of file descriptors")
                return
            sock.setblocking(False)
            try:
                caller = peer_caller(sock)
            except OSError:
                sock.close()
                continue
            if not self._make_room(caller.uid):
                try:
                    sock.send(b'{"code":"busy","message":"too many connections with calls in progress",'
                              b'"status":"error"}\n')
                except OSError:
                    pass
                sock.close()
                continue
            with self._lock:
                client = self._next_id
                self._next_id += 1
                self._conns[client] = _Conn(client, sock, caller, time.monotonic())
            self._sel.register(sock, selectors.EVENT_READ, client)

    def _make_room(self, uid: int) -> bool:
        """Close idle connections until one more from `uid` fits the limits; False if it cannot.

        The victim is an idle connection of the newcomer's own uid when that uid is at its
        limits, else of the uid holding the most idle connections (a flood pays for itself),
        chosen by `eviction_order`. Before it goes, whatever it already sent is read: a client
        caught in a flood that has just asked keeps its place while a silent one can go."""
        for _ in range(2 * MAX_CLIENTS):
            conns = list(self._conns.values())
            mine = [c for c in conns if c.caller.uid == uid]
            idle = [c for c in conns if c.idle]
            if len(mine) >= MAX_CLIENTS_PER_UID or sum(c.idle for c in mine) >= MAX_IDLE_PER_UID:
                pool = [c for c in mine if c.idle]
            elif len(conns) >= MAX_CLIENTS or len(idle) >= MAX_IDLE:
                most = Counter(c.caller.uid for c in idle)
                pool = [c for c in idle if most[c.caller.uid] == max(most.values())]
            else:
                return True
            if not pool:
                return False
            now = time.monotonic()
            victim = min(pool, key=lambda c: c.eviction_order(now))
            since = victim.idle_since
            self._readable(victim.client)
            if victim.client in self._conns and victim.idle and victim.idle_since == since:
                self._evict(victim)
        return False

    def _evict(self, conn: _Conn) -> None:
        try:
            conn.sock.send(b'{"code":"busy","message":"closed to make room: this connection has no call in progress",'
                           b'"status":"error"}\n')
        except OSError:
            pass
        self._close(conn.client)
        self._evicted[conn.caller.uid] += 1
        self._log_evictions(time.monotonic())

    def _log_evictions(self, now: float) -> None:
        """One line per EVICTION_LOG_S at most: a flood would otherwise flood the journal too."""
        if self._evicted and now - self._evicted_logged >= EVICTION_LOG_S:
            counts = ", ".join(f"uid {uid}: {n}" for uid, n in sorted(self._evicted.items()))
            log.warning("control socket: closed %d idle connections to make room (%s); at most %d idle, "
                        "%d per uid", sum(self._evicted.values()), counts, MAX_IDLE, MAX_IDLE_PER_UID)
            self._evicted.clear()
            self._evicted_logged = now

    def _readable(self, client: int) -> None:
        conn = self._conns.get(client)
        if conn is None:
            return
        try:
            data = conn.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        if conn.closing:
            return
        if conn.line_started is None:
            conn.line_started = time.monotonic()
        conn.inbuf += data
        while b"\n" in conn.inbuf:
            line, _, rest = bytes(conn.inbuf).partition(b"\n")
            conn.inbuf = bytearray(rest)
            conn.line_started = time.monotonic() if rest else None
            conn.idle_since = time.monotonic()
            self._line(client, conn, line)
        if len(conn.inbuf) > self.cfg.max_frame_bytes:
            self._refuse(client, "too_large", f"a request line may be at most {self.cfg.max_frame_bytes} bytes")

    def _line(self, client: int, conn: _Conn, line: bytes) -> None:
        if len(line) > self.cfg.max_frame_bytes:
            self._refuse(client, "too_large", f"a request line may be at most {self.cfg.max_frame_bytes} bytes")
            return
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            self._refuse(client, "bad_request", "each line must be one JSON object")
            return
        if not isinstance(message, dict) or message.get("call") not in CALLS:
            self._refuse(client, "bad_request", f"\"call\" must be one of: {', '.join(CALLS)}")
            return
        conn.holding = conn.holding or message["call"] in HOLDING_CALLS
        conn.calls += 1
        self._deliver(ClientCall(client, message, conn.caller))

    def _refuse(self, client: int, code: str, text: str) -> None:
        self.send(client, {"status": "error", "code": code, "message": text}, close=True)
        conn = self._conns.get(client)
        if conn is not None:
            conn.inbuf.clear()

    def _flush_and_expire(self) -> None:
        now = time.monotonic()
        self._log_evictions(now)
        for client, conn in list(self._conns.items()):
            with self._lock:
                pending = bytes(conn.outbuf)
            if pending:
                try:
                    sent = conn.sock.send(pending)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    self._close(client)
                    continue
                with self._lock:
                    del conn.outbuf[:sent]
            if conn.closing and (not conn.outbuf or now - conn.closing_since > self.cfg.read_timeout_s):
                self._close(client)  # flushed, or the client does not read what it is owed
            elif conn.line_started is not None and now - conn.line_started > self.cfg.read_timeout_s:
                self._refuse(client, "timeout", f"a request line must arrive within {self.cfg.read_timeout_s:g} s")

    def _close(self, client: int) -> None:
        with self._lock:
            conn = self._conns.pop(client, None)
        if conn is None:
            return
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        self._deliver(ClientGone(client))
