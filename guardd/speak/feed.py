"""A sound that arrives in pieces while it plays: a reply Home Assistant streams as its
text-to-speech makes it. The core adds pieces and ends it; the player's thread takes them, in
short waits, so that it can stop a sound that is waiting for its next piece at once.
`waiting_bytes` says how much has come and not yet been taken, so whoever feeds it can bound
what it holds (homeassistant/playing.py)."""

from __future__ import annotations

import queue
import threading
from typing import Callable

import numpy as np

FEED_WAIT_S = 5.0  # the longest a streamed sound waits for its next piece


class FeedStalled(Exception):
    """A sound's next piece did not come in time."""


class Feed:
    """A sound that arrives in pieces (int16 mono at SPEAKER_RATE): played from its first piece,
    ended by end(). A feed whose next piece does not come within FEED_WAIT_S ends, cut short.
    A feed the player dropped (not played, or cut short) lets every later piece go."""

    def __init__(self, on_end: Callable[["Feed"], None] | None = None) -> None:
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._on_end = on_end  # inline (replay, tests): play it all when it has ended
        self.pieces_so_far: list[np.ndarray] = []
        self.dropped = False
        self.finished = False  # the player took its end
        self._quiet_s = 0.0  # waited since the last piece
        self._waiting = 0  # bytes added and not yet taken
        self._count = threading.Lock()

    @property
    def waiting_bytes(self) -> int:
        return self._waiting

    def _counted(self, n: int | None) -> None:
        """Add `n` bytes to what waits (None: nothing waits any more)."""
        with self._count:
            self._waiting = 0 if n is None else self._waiting + n

    def add(self, samples: np.ndarray) -> None:
        if self.dropped:
            return
        self._counted(samples.nbytes)
        if self._on_end is not None:
            self.pieces_so_far.append(samples)
        else:
            self._queue.put(samples)

    def end(self) -> None:
        if self._on_end is not None:
            on_end, self._on_end = self._on_end, None
            on_end(self)  # (what it held counts until its sound has Played: satellite's bookkeeping)
        else:
            self._queue.put(None)

    def drop(self) -> None:
        """It will not be played (any further): what waits is let go, and so is what comes."""
        self.dropped = True
        self.pieces_so_far = []
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._counted(None)

    def take(self, wait_s: float) -> np.ndarray | None:
        """The next piece; None when none came within `wait_s` or the sound has ended
        (`finished`). Raises FeedStalled once FEED_WAIT_S have passed without a piece."""
        try:
            piece = self._queue.get(timeout=wait_s)
        except queue.Empty:
            self._quiet_s += wait_s
            if self._quiet_s >= FEED_WAIT_S:
                raise FeedStalled(f"no audio for {FEED_WAIT_S:g} s") from None
            return None
        self._quiet_s = 0.0
        if piece is None:
            self.finished = True
        else:
            self._counted(-piece.nbytes)
        return piece
