"""What waits to be written to one connection, bounded in bytes, and the one thread that
encrypts and writes it. The core's calls put a message here and return at once: they never wait
on a socket. A peer that stops reading fills the box, and the next put that finds it full ends
the connection instead of growing it. Only an upload (the sender's thread) may wait for room.

Frames are encrypted here, in the order they were put, so the cipher's counter matches the
order on the wire.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from typing import Callable

from guardd.esphome.framing import frame, pack_message
from guardd.esphome.noise import CipherSpent, CipherState

LIMIT = 256 * 1024  # bytes of messages waiting for one connection
BATCH = 64 * 1024  # bytes written in one call
WRITE_S = 10.0  # a write the peer does not take within this ends the connection


class Outbox:
    def __init__(self, sock: socket.socket, cipher: CipherState, on_broken: Callable[[str], None]) -> None:
        self._sock = sock.dup()  # the writer's own timeout; the reader sets its own on `sock`
        self._sock.settimeout(WRITE_S)
        self._cipher = cipher
        self._on_broken = on_broken
        self._waiting: deque[tuple[int, bytes]] = deque()
        self._bytes = 0
        self._put = 0  # sequence number of the last message put
        self._written = 0  # ... and of the last one written
        self._closed = False
        self._cond = threading.Condition()
        self._sent: dict[int, int] = {}  # message type -> count put
        self._thread = threading.Thread(target=self._write, name="guardd-esphome-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, type_id: int, payload: bytes, *, wait_until: float | None = None) -> int | None:
        """Queue one message; its sequence number, or None when the box is closed or full (and,
        with `wait_until`, stayed full until then)."""
        plaintext = pack_message(type_id, payload)
        with self._cond:
            while not self._closed and self._bytes + len(plaintext) > LIMIT:
                left = None if wait_until is None else wait_until - time.monotonic()
                if left is None or left <= 0:
                    return None
                self._cond.wait(left)
            if self._closed:
                return None
            self._put += 1
            self._waiting.append((self._put, plaintext))
            self._bytes += len(plaintext)
            self._sent[type_id] = self._sent.get(type_id, 0) + 1
            self._cond.notify_all()
            return self._put

    def sent(self) -> dict[int, int]:
        """How many messages of each type were put, for `guardd status`."""
        with self._cond:
            return dict(self._sent)

    def flush(self, until: float) -> bool:
        """Whether everything put so far was written by `until`."""
        with self._cond:
            last = self._put
        return self.wait_written(last, until)

    def wait_written(self, seq: int, until: float) -> bool:
        """Whether message `seq` was handed to the kernel by `until`."""
        with self._cond:
            while self._written < seq and not self._closed:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return self._written >= seq

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._waiting.clear()
            self._bytes = 0
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(WRITE_S + 1)
        self._sock.close()

    def _write(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch: list[tuple[int, bytes]] = []
                size = 0
                while self._waiting and (not batch or size + len(self._waiting[0][1]) <= BATCH):
                    batch.append(self._waiting.popleft())
                    size += len(batch[-1][1])
            try:
                wire = b"".join(frame(self._cipher.encrypt(plaintext)) for _, plaintext in batch)
                self._sock.sendall(wire)
            except (OSError, CipherSpent) as exc:
                why = "the peer did not take what guardd wrote" if isinstance(exc, TimeoutError) else f"cannot write: {exc}"
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                self._on_broken(why)
                return
            with self._cond:
                self._bytes -= size
                self._written = batch[-1][0]
                self._cond.notify_all()
