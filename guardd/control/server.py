"""The control socket: local programs submit sends, ask for status and subscribe to events.

A Unix stream socket (mode 0660, group configurable) speaking newline-delimited JSON. This
module only moves bytes: one thread accepts, reads and writes with a selector, turns each
complete line into a `ClientCall` (with the caller's uid, pid and executable from SO_PEERCRED)
for the core's inbox, and reports a closed connection as `ClientGone` so its request is
cancelled. Limits keep a hostile or broken client from hurting anyone else: a frame size limit,
a read deadline for a started line, a cap on connections and on unsent output.

Which connections may stay when too many come is in connections.py.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from guardd.config.settings import SocketConfig
from guardd.confirm.outbox import Caller
from guardd.control import protocol
from guardd.control.connections import (
    MAX_CLIENTS, Conn, Evictions, Waker, bind_socket, eviction_pool, peer_caller, say_busy,
)
from guardd.errors import BadRequest

log = logging.getLogger(__name__)

MAX_PENDING_OUTPUT = 8_000_000  # bytes queued for a client that does not read: then it is dropped
READ_CHUNK = 65536
ACCEPTS_PER_ROUND = 8  # then the waiting lines are read: a connect storm cannot starve them


@dataclass(frozen=True)
class ClientCall:
    client: int
    message: dict[str, Any]
    caller: Caller


@dataclass(frozen=True)
class ClientGone:
    client: int


class ControlServer:
    def __init__(self, cfg: SocketConfig, deliver: Callable[[ClientCall | ClientGone], None]) -> None:
        self.cfg = cfg
        self._deliver = deliver
        self._sel = selectors.DefaultSelector()
        self._conns: dict[int, Conn] = {}
        self._lock = threading.Lock()
        self._next_id = 1
        self._stop = False
        self._waker = Waker()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.path = Path(cfg.path)
        self._evictions = Evictions()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._listener = bind_socket(self.cfg)
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._waker.readable, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, name="guardd-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._waker.poke()
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
        self._waker.close()

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # -- from the core thread ------------------------------------------------------------------

    def send(self, client: int, message: dict[str, Any], *, close: bool = False) -> None:
        """Queue one JSON line for a client (thread-safe); a client that stopped reading is dropped."""
        data = protocol.encode(message)
        with self._lock:
            conn = self._conns.get(client)
            if conn is None:
                return
            conn.queue(data, close=close, max_pending=MAX_PENDING_OUTPUT, now=time.monotonic())
        self._waker.poke()

    # -- the selector thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop:
            for key, _mask in self._sel.select(timeout=0.2):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._waker.drain()
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
                say_busy(sock, "too many connections with calls in progress")
                sock.close()
                continue
            with self._lock:
                client = self._next_id
                self._next_id += 1
                self._conns[client] = Conn(client, sock, caller, time.monotonic())
            self._sel.register(sock, selectors.EVENT_READ, client)

    def _make_room(self, uid: int) -> bool:
        """Close idle connections until one more from `uid` fits the limits; False if it cannot.

        The victim comes from `eviction_pool`, chosen by `eviction_order`. Before it goes, whatever it already sent is read: a client
        caught in a flood that has just asked keeps its place while a silent one can go."""
        for _ in range(2 * MAX_CLIENTS):
            pool = eviction_pool(list(self._conns.values()), uid)
            if pool is None:
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

    def _evict(self, conn: Conn) -> None:
        say_busy(conn.sock, "closed to make room: this connection has no call in progress")
        self._close(conn.client)
        self._evictions.add(conn.caller.uid, time.monotonic())

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
        for line in conn.lines(data, time.monotonic()):
            if not self._line(client, conn, line):
                break  # refused: the connection closes, and what followed is not read
        if len(conn.inbuf) > self.cfg.max_frame_bytes:
            self._refuse(client, "too_large", f"a request line may be at most {self.cfg.max_frame_bytes} bytes")

    def _line(self, client: int, conn: Conn, line: bytes) -> bool:
        """Hand one complete line to the core; False if it was refused."""
        if len(line) > self.cfg.max_frame_bytes:
            self._refuse(client, "too_large", f"a request line may be at most {self.cfg.max_frame_bytes} bytes")
            return False
        try:
            message = protocol.parse_call(line)
        except BadRequest as exc:
            self._refuse(client, "bad_request", str(exc))
            return False
        conn.holding = conn.holding or message["call"] in protocol.HOLDING_CALLS
        conn.calls += 1
        self._deliver(ClientCall(client, message, conn.caller))
        return True

    def _refuse(self, client: int, code: str, text: str) -> None:
        self.send(client, protocol.error(code, text), close=True)
        conn = self._conns.get(client)
        if conn is not None:
            conn.inbuf.clear()

    def _flush_and_expire(self) -> None:
        now = time.monotonic()
        self._evictions.log(now)
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
