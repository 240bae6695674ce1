"""The LED's pattern, worked out from a clock instead of left to a timer thread of gpiozero's.

A pattern is (on seconds, off seconds): (1, 0) is solid, (0, 1) dark, anything else a blink
that starts lit the moment it is shown and repeats; a longer one (on, off, on, off, ...) is a
rhythm (a timer's double flash), repeated the same way. `Blinker.update()` sets the LED for the
clock's now and says how long until it next changes, so the pattern is exact on any clock:
the tests move an injected clock and read the pin; the daemon runs a BlinkThread that sleeps
until the next change (or until another pattern is shown) on the monotonic clock.
"""

from __future__ import annotations

import math
import threading
from typing import Callable

STEADY = math.inf  # update()'s answer when the LED holds until the next show()


def lit_at(steps: tuple[float, ...], elapsed: float) -> tuple[bool, float]:
    """Whether the pattern (lit, dark, lit, dark, ... seconds) is lit `elapsed` seconds after
    it began, and for how much longer."""
    if not any(steps[1::2]):
        return True, STEADY
    if not any(steps[0::2]):
        return False, STEADY
    phase = elapsed % sum(steps)
    last = len(steps) - 1
    for i, step in enumerate(steps):
        if phase < step or i == last:  # (the last takes what rounding left past the sum)
            return i % 2 == 0, max(step - phase, 0.0)
        phase -= step
    raise AssertionError("unreachable: the last step returns")


class Blinker:
    def __init__(self, set_lit: Callable[[bool], None], clock: Callable[[], float]) -> None:
        self._set_lit = set_lit
        self._clock = clock
        self._lock = threading.Lock()
        self._pattern: tuple[float, ...] = (0.0, 1.0)
        self._since = clock()
        self._lit: bool | None = None
        self.changed = threading.Event()  # set by show(), for a thread waiting on the old pattern

    def show(self, *steps: float) -> None:
        """Show a pattern: (on seconds, off seconds), or a rhythm of more of them."""
        with self._lock:
            self._pattern, self._since = steps, self._clock()
        self.changed.set()
        self.update()

    def update(self) -> float:
        """Set the LED for now; the seconds until it next changes (STEADY: not before a show)."""
        with self._lock:
            lit, left = lit_at(self._pattern, self._clock() - self._since)
            if lit is not self._lit:
                self._lit = lit
                self._set_lit(lit)
        return left


class BlinkThread:
    """Runs a Blinker on real time: wakes at each change of the LED, or when another pattern is
    shown, and never decides anything else."""

    def __init__(self, blinker: Blinker) -> None:
        self._blinker = blinker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="guardd-led", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        changed = self._blinker.changed
        while not self._stop.is_set():
            left = self._blinker.update()
            changed.wait(None if left == STEADY else left)
            changed.clear()

    def stop(self) -> None:
        self._stop.set()
        self._blinker.changed.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
