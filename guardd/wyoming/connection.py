"""One connection from an allowed peer: its state, and its writer. Frames to the peer wait in a
queue bounded in bytes and are written by a thread of the connection's own, so that a peer that
stops reading holds up nothing but itself: not the core (which only queues `played`), not the
sender (which waits, within its deadline, for room), not another connection's `info`.

The state is the connection's own (27.9): which upload it carried last, whether it sent
`run-satellite` (and no `pause-satellite` since), whether the core has heard of it. Frames of
a connection that was replaced or dropped can only touch that connection's state.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from typing import Callable

from guardd.wyoming.frames import Event, encode

log = logging.getLogger(__name__)

OUT_BYTES = 64 * 1024  # frames waiting to be written to one peer; an upload waits for room
OUT_SLACK = 16 * 1024  # room beyond OUT_BYTES for metadata (info, pong, played), which never waits


class Connection:
    """A connection's state and its writer. The link creates it, reads its frames on a thread
    of its own (link._serve) and ends it with `shut` (from any thread, once; the first reason
    wins); the reader closes the socket when it has finished."""

    def __init__(self, number: int, sock: socket.socket, name: str, on_written: Callable[[str], None]) -> None:
        self.number = number  # the link's count of connections: the core tells them apart by it
        self.sock = sock
        self.name = name  # "host:port"
        self.host = name.rpartition(":")[0]
        self.since = time.monotonic()
        self.last_frame = self.since
        self.satellite = False  # it sent run-satellite: Home Assistant's satellite connection
        self.running = False  # ... and no pause-satellite since, on this connection
        self.run: str | None = None  # the request id of the last upload it carried
        self.told = False  # the core has heard of it (it sent a frame for the core)
        self.describes = 0
        self.reason: str | None = None  # why it ended, once it has
        self.written_audio = 0  # bytes of audio-chunk payload written to the peer
        self._on_written = on_written  # counts frames by type, for `guardd status`
        self._out: deque[tuple[bytes, str, int]] = deque()  # (frame, type, audio bytes)
        self._out_bytes = 0
        self._changed = threading.Condition()
        self._writer = threading.Thread(target=self._write, name=f"guardd-wyoming-out-{number}", daemon=True)

    def start(self) -> None:
        self._writer.start()

    @property
    def open(self) -> bool:
        return self.reason is None

    # -- frames out ----------------------------------------------------------------------------

    def push(self, event: Event, wait_s: float = 0.0) -> bool:
        """Queue a frame for the peer. With `wait_s` (an upload) wait that long at most for room;
        without, a frame that finds no room within OUT_BYTES + OUT_SLACK means the peer has
        stopped reading: the connection is shut. False when the frame will not be written."""
        data = encode(event)
        audio = len(event.payload or b"") if event.type == "audio-chunk" else 0
        deadline = time.monotonic() + wait_s
        with self._changed:
            limit = OUT_BYTES if wait_s else OUT_BYTES + OUT_SLACK
            while self.open and self._out_bytes and self._out_bytes + len(data) > limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            if not self.open:
                return False
            if self._out_bytes and self._out_bytes + len(data) > limit:
                full = True
            else:
                full = False
                self._out.append((data, event.type, audio))
                self._out_bytes += len(data)
                self._changed.notify_all()
        if full:
            if not wait_s:
                self.shut(f"the peer does not take what guardd writes ({self._out_bytes} bytes wait)")
            return False
        return True

    def flushed(self, deadline: float) -> bool:
        """Wait until every queued frame is written (True), the connection ended or the
        deadline passed (False)."""
        with self._changed:
            while self.open and self._out:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return self.open and not self._out

    def _write(self) -> None:
        while True:
            with self._changed:
                while self.open and not self._out:
                    self._changed.wait()
                if not self.open:
                    return
                data, kind, audio = self._out[0]
            try:
                self.sock.sendall(data)  # at most the socket's timeout for each piece the kernel takes
            except OSError as exc:
                self.shut(f"cannot write to the peer: {exc}")
                return
            self._on_written(kind)  # it was written, whatever happens to the connection next
            with self._changed:
                if not self.open:  # shut while it was written: the queue is gone already
                    return
                self._out.popleft()
                self._out_bytes -= len(data)
                self.written_audio += audio
                self._changed.notify_all()

    # -- the end -------------------------------------------------------------------------------

    def shut(self, reason: str) -> bool:
        """End the connection (both threads wake); True for the call that ended it."""
        with self._changed:
            if self.reason is not None:
                return False
            self.reason = reason
            self._out.clear()
            self._out_bytes = 0
            self._changed.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def finish(self) -> None:
        """The reader has finished: let the writer go, then close the socket."""
        self.shut("the connection ended")
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(2.0)
        self.sock.close()
