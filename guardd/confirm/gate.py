"""The confirmation gate: decides whether a person approved the one armed request.

Rules (from FIDO authenticators and hardware wallets), each an invariant of this class:
- One armed request at a time. The caller arms the next only after this one is decided.
- Only a press that *starts after arming* counts. A level ("is the button down?") never
  approves: a button held down at arming must first be released, and one held past `stuck_s`
  from arming denies the request as stuck.
- A press approves when it is released before `long_press_s`; held that long it denies (a
  fresh press denies so even before the announcement lets one approve: denying is never unsafe).
- Debouncing is done here, on the injected clock, because gpiozero's bounce_time differs by
  pin backend and its MockPin ignores it. The raw line must be stable for `debounce_s` before a
  change counts; the press is dated from the first edge of that stable run.
- Timeout: a press must start strictly before armed_at + timeout_s (an exclusive bound on a
  monotonic clock). A press that started in time may finish after the deadline.
- One press approves one request: presence is never cached, and a press that started before a
  request was armed cannot approve it.
- With an announcement (arm(..., announced=True)), a press counts only if it starts strictly
  after the announcement's first part (where the request goes, and how much) has played:
  `said(at)`, `at` being when its last sample reached the speaker. The timeout runs from when
  the announcement ends (`announcing(started, ends)` plans it, `announced(ended)` gives the true
  end). Until it begins no press counts and no timeout runs. One that ends before its first part
  was said (the speaker failed) leaves the LED asking alone from its end. One that has not begun
  ANNOUNCE_START_S after arming never will (a speaker stuck in its driver: a busy one is cut
  for it at once): the LED alone asks from then, and `fell_back` is set, for the broker to log
  the speaker's fault.
The gate alone holds the armed request and the button's state. It never looks inside the
request it was armed with (the broker's), so it never sees payloads. Time only moves forward
through `advance(now)`, which the broker calls after every input and on every tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from guardd.config.settings import ConfirmConfig

R = TypeVar("R")  # what is being asked about: the broker's Request

ANNOUNCE_START_S = 5.0  # an announcement not begun this long after arming: the LED alone asks


@dataclass(frozen=True)
class Decision(Generic[R]):
    request: R
    approved: bool
    reason: str  # "pressed", "timeout", "long press", "stuck", "cancelled", ...
    t: float


class Gate(Generic[R]):
    def __init__(self, cfg: ConfirmConfig, *, button_down: bool = False, now: float = 0.0) -> None:
        self.cfg = cfg
        # Raw line state and the time of its last change (for debouncing).
        self._raw_down = button_down
        self._raw_since = now
        # The debounced state, and when its current run started (raw edge time).
        self._down = button_down
        self._down_since = now
        self.armed: R | None = None
        self.armed_at = 0.0
        self.last_activity = float("-inf")  # when a request was last armed or decided
        self._must_release = False  # the button was down at arming
        self._press_started: float | None = None  # a fresh press after arming, in progress
        self._listen_from: float | None = None  # a press must start after this to count
        self._timeout_from: float | None = None  # the timeout runs from here
        self._began = False  # the armed request's announcement began playing
        self.fell_back: R | None = None  # a request whose announcement never began (the broker takes it)

    # -- inputs --------------------------------------------------------------------------------

    def edge(self, pressed: bool, t: float) -> Decision[R] | None:
        """A raw edge from the button. Bounces are absorbed by the debouncer."""
        decision = self.advance(t)  # settle the state as of just before this edge
        if pressed != self._raw_down:
            self._raw_down = pressed
            self._raw_since = t
        return decision

    def arm(self, request: R, now: float, *, announced: bool = False) -> None:
        if self.armed is not None:
            raise RuntimeError(f"request {self.armed} is still armed; one at a time")
        self.advance(now)
        self.armed = request
        self.armed_at = self.last_activity = now
        # Whatever the line is doing right now began before arming: it must end first.
        self._must_release = self._down or self._raw_down
        self._press_started = None
        self._listen_from = self._timeout_from = None if announced else now
        self._began = not announced

    def announcing(self, started: float, ends: float) -> None:
        """The armed request's announcement began playing at `started` and will end at `ends`."""
        if self.armed is not None and not self._began:
            self._began = True
            if self._listen_from is None:
                self._timeout_from = ends

    def said(self, at: float) -> None:
        """Its first part (where to, and how much) has played: its last sample at `at`."""
        if self.armed is not None and self._listen_from is None:
            self._listen_from = at

    def announced(self, ended: float) -> None:
        """It ended at `ended` (whole, cut short or failed): the timeout runs from then."""
        if self.armed is not None:
            self._began = True
            if self._listen_from is None:  # its first part was never said: the LED alone asks from now
                self._listen_from = ended
            self._timeout_from = ended

    @property
    def deadline(self) -> float | None:
        """When the armed request times out; None while its announcement has not begun."""
        return None if self._timeout_from is None else self._timeout_from + self.cfg.timeout_s

    def cancel(self, now: float, reason: str = "cancelled") -> Decision[R] | None:
        if self.armed is None:
            return None
        return self._decided(self._decide(False, reason, now), now)

    def advance(self, now: float) -> Decision[R] | None:
        """Let time pass to `now`: debounced changes, long presses, stuck buttons, timeouts."""
        decision = None
        if self._raw_down != self._down and now - self._raw_since >= self.cfg.debounce_s:
            decision = self._debounced(self._raw_down, self._raw_since)
        elif self._must_release and not self._raw_down and not self._down and now - self._raw_since >= self.cfg.debounce_s:
            # The line was down at arming only for a glitch shorter than debounce_s, and has been
            # stably up since: there is nothing left to release, so the next press may count.
            self._must_release = False
        if decision is None and self.armed is not None:
            decision = self._deadlines(now)
        return self._decided(decision, now)

    def held_idle_since(self) -> float | None:
        """When the press now held began, if no request was armed then or has been since (the
        long press that mutes or unmutes); None when the button is up or a request had a say."""
        if self._down and self.armed is None and self._down_since > self.last_activity:
            return self._down_since
        return None

    # -- the rules -----------------------------------------------------------------------------

    def _debounced(self, down: bool, since: float) -> Decision[R] | None:
        self._down = down
        self._down_since = since
        if self.armed is None:
            return None
        if down:
            if not self._must_release and since > self.armed_at:
                self._press_started = since  # whether it counts is asked when it matters
            return None
        # Released.
        if self._must_release:
            self._must_release = False
            return None
        if self._press_started is not None:
            started, self._press_started = self._press_started, None
            if since - started >= self.cfg.long_press_s and self._may_deny(started):
                return self._decide(False, "long press", since)
            if not self._counts(started):
                return None
            return self._decide(True, "pressed", since)
        return None

    def _counts(self, started: float) -> bool:
        """A press that started then may approve: after the asking began, before the deadline."""
        return self._listen_from is not None and started > self._listen_from and self._may_deny(started)

    def _may_deny(self, started: float) -> bool:
        """A fresh press that started then may deny by being held long: before the deadline,
        whether or not the announcement has said its first part yet (denying needs no words)."""
        deadline = self.deadline
        return deadline is None or started < deadline

    def _deadlines(self, now: float) -> Decision[R] | None:
        held = self._press_started
        if held is not None and self._may_deny(held) and now - held >= self.cfg.long_press_s:
            return self._decide(False, "long press", now)
        counting = held is not None and self._counts(held)
        if self._must_release and self._down and now - self.armed_at >= self.cfg.stuck_s:
            return self._decide(False, "stuck", now)
        if not self._began and self._listen_from is None and now - self.armed_at >= ANNOUNCE_START_S:
            self._listen_from = self._timeout_from = now  # it never began: the LED alone asks
            self._began, self.fell_back = True, self.armed
        deadline = self.deadline
        if deadline is None:
            return None  # the announcement has not begun: no timeout runs yet
        settling = (self._raw_down and not self._down and self._listen_from is not None
                    and self._listen_from < self._raw_since < deadline)
        if not counting and now >= deadline and not settling:
            # (A press that began before the deadline and is still being debounced is let finish.)
            return self._decide(False, "timeout", now)
        return None

    def _decide(self, approved: bool, reason: str, t: float) -> Decision[R]:
        assert self.armed is not None
        decision = Decision(self.armed, approved, reason, t)
        self.armed = None
        self._press_started = None
        self._must_release = False
        return decision

    def _decided(self, decision: Decision[R] | None, now: float) -> Decision[R] | None:
        if decision is not None:
            self.last_activity = max(self.last_activity, decision.t, now)
        return decision

    @property
    def settles_at(self) -> float | None:
        """When the line's latest change will have been stable for debounce_s, while that has
        not yet counted (the loop looks again then, so a press is decided when it ends)."""
        return self._raw_since + self.cfg.debounce_s if self._raw_down != self._down else None

    @property
    def button_down(self) -> bool:
        """The debounced button state."""
        return self._down

    @property
    def down_since(self) -> float:
        """When the debounced state's current run began (the first edge of its stable run)."""
        return self._down_since
