"""A sound that arrives in pieces while it plays: a reply Home Assistant streams as its
text-to-speech makes it. The core adds pieces and ends it; the player's thread takes them.
`waiting_bytes` says how much has come and not yet been taken, so whoever feeds it can bound
what it holds (wyoming/playing.py)."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import numpy as np

FEED_WAIT_S = 5.0  # the longest a streamed sound waits for its next piece


class FeedStalled(Exception):
    """A sound's next piece did not come in time."""


class Feed:
    """A sound that arrives in pieces (int16 mono at SPEAKER_RATE): played from its first piece,
    ended by end(). A feed whose next piece does not come within FEED_WAIT_S ends, cut short."""

    def __init__(self, on_end: Callable[["Feed"], None] | None = None) -> None:
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._on_end = on_end  # inline (replay, tests): play it all when it has ended
        self.pieces_so_far: list[np.ndarray] = []
        self._waiting = 0  # bytes added and not yet taken
        self._count = threading.Lock()

    @property
    def waiting_bytes(self) -> int:
        return self._waiting

    def _counted(self, n: int) -> None:
        with self._count:
            self._waiting += n

    def add(self, samples: np.ndarray) -> None:
        self._counted(samples.nbytes)
        if self._on_end is not None:
            self.pieces_so_far.append(samples)
        else:
            self._queue.put(samples)

    def end(self) -> None:
        if self._on_end is not None:
            self._on_end(self)
        else:
            self._queue.put(None)

    def pieces(self) -> Iterator[np.ndarray]:
        while True:
            try:
                piece = self._queue.get(timeout=FEED_WAIT_S)
            except queue.Empty:
                raise FeedStalled(f"no audio for {FEED_WAIT_S:g} s") from None
            if piece is None:
                return
            self._counted(-piece.nbytes)
            yield piece
