"""The daemon's inbox: everything other threads hand the core, in lanes that cannot crowd each
other out, taken by the core in the order it came. No thread that the core may be waiting for
ever waits on it, and the core never waits on anything here.

- button edges and client calls: lanes bounded by count; past the bound a new one is dropped
  (counted, and warned of), never waited for. A client's hang-up (ClientGone) and the news of
  guardd's own parts (a send's result, the speaker's news) are never dropped: each comes from a
  part that has at most a few in flight (one send at a time, a few sounds queued), so they need
  no bound of their own.
- Home Assistant's link (PeerLane): bounded in BYTES (PEER_BYTES, what a frame's payload and
  data weigh plus FRAME_COST). The link's reader of a connection waits there, for a bounded
  time, for room: a peer that sends faster than the core takes its frames is slowed at its own
  socket, and one that outruns the wait is dropped (wyoming/link.py). The link's own bookkeeping
  (an upload beginning, a connection's end) always goes in: there are at most a few per
  connection, and connections are bounded.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter, deque
from typing import Any, Callable

from guardd.control.server import ClientCall
from guardd.device.panel import ButtonEdge

log = logging.getLogger(__name__)

BUTTON_EDGES = 256  # a real button makes a few a second; a flood of them is a fault, not presses
CLIENT_CALLS = 256  # calls waiting (the control server bounds its clients and their frames)
PEER_BYTES = 256 * 1024  # bytes of the peer's frames waiting for the core
FRAME_COST = 256  # bytes counted for a frame besides its payload and data: its objects

_order = itertools.count()  # one order across the lanes (next() on a count is atomic in CPython)


class PeerLane:
    """Home Assistant's frames and the link's news, bounded in bytes. `offer` may wait (on the
    link's reader thread, never the core's) until there is room; `put` never waits."""

    def __init__(self, limit_bytes: int = PEER_BYTES, wake: Callable[[], None] = lambda: None) -> None:
        self.limit = limit_bytes
        self._wake = wake
        self._items: deque[tuple[int, Any, int]] = deque()  # (order, item, cost)
        self._bytes = 0
        self._room = threading.Condition()
        self._closed = False
        self.peak_bytes = 0  # the most that ever waited (for tests and `status`)

    def offer(self, item: Any, cost: int, wait_s: float = 0.0) -> bool:
        """Add `item` when `cost` more bytes fit (an item alone always fits), waiting at most
        `wait_s` for the core to make room; False when there was none, or the lane is closed."""
        deadline = time.monotonic() + wait_s
        with self._room:
            while self._bytes and self._bytes + cost > self.limit and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
            if self._closed:
                return False
            self._add(item, cost)
        self._wake()
        return True

    def put(self, item: Any) -> None:
        """Add a piece of the link's own bookkeeping, whatever the lane holds (few and small)."""
        with self._room:
            self._add(item, FRAME_COST)
        self._wake()

    def _add(self, item: Any, cost: int) -> None:
        self._items.append((next(_order), item, cost))
        self._bytes += cost
        self.peak_bytes = max(self.peak_bytes, self._bytes)

    def take(self) -> list[tuple[int, Any]]:
        """Everything waiting, in order; the room it took is free again."""
        with self._room:
            items = [(order, item) for order, item, _ in self._items]
            self._items.clear()
            self._bytes = 0
            self._room.notify_all()
        return items

    def close(self) -> None:
        """Wake every waiting offer, and refuse the rest (the daemon stops)."""
        with self._room:
            self._closed = True
            self._room.notify_all()

    @property
    def waiting_bytes(self) -> int:
        return self._bytes


class Inbox:
    """What the core takes from other threads (see the module's doc). `deliver` never waits."""

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._edges: deque[tuple[int, Any]] = deque()
        self._calls: deque[tuple[int, Any]] = deque()
        self._news: deque[tuple[int, Any]] = deque()
        self.peer = PeerLane(PEER_BYTES, self._woken)
        self.dropped: Counter[str] = Counter()

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Who to wake when something arrives (the microphone's read, once it exists)."""
        self._wake = wake

    def _woken(self) -> None:
        self._wake()

    def deliver(self, item: Any) -> None:
        """From any thread: hand `item` to the core. Never waits; a button edge or a client call
        past its lane's bound is dropped and counted."""
        if isinstance(item, ButtonEdge):
            lane, limit = self._edges, BUTTON_EDGES
        elif isinstance(item, ClientCall):
            lane, limit = self._calls, CLIENT_CALLS
        else:
            lane, limit = self._news, 0
        with self._lock:
            full = limit and len(lane) >= limit
            if full:
                self.dropped[type(item).__name__] += 1
            else:
                lane.append((next(_order), item))
        if full:
            log.warning("inbox: %s lane full; %s dropped (%d so far)", type(item).__name__,
                        type(item).__name__, self.dropped[type(item).__name__])
        self._wake()

    def take(self) -> list[Any]:
        """Everything waiting in every lane, in the order it was delivered."""
        with self._lock:
            items = [*self._edges, *self._calls, *self._news]
            self._edges.clear()
            self._calls.clear()
            self._news.clear()
        items += self.peer.take()
        items.sort(key=lambda pair: pair[0])
        return [item for _, item in items]

    def waiting(self) -> int:
        """How many items wait in all (for tests and a pacing client)."""
        with self._lock:
            return len(self._edges) + len(self._calls) + len(self._news) + len(self.peer._items)

    def close(self) -> None:
        self.peer.close()
