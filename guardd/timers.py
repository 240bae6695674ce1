"""Home Assistant's voice timers as guardd holds them, on the core's thread and clock: what a
link said of each (TimerChange), bounded, and the ring of a finished one. The core plays the
ring (a burst of the `ring` tone every RING_EVERY_S) and shows it (the LED's double flash).

Home Assistant owns its timers; guardd holds only what it was told:
- at most MAX_TIMERS (the one told least recently goes first), each an id of at most ID_CHARS
  letters, digits or `._:-` (Home Assistant's are 26-character ULIDs) and whole seconds from 0
  to MAX_SECONDS; a change that breaks these is refused (counted, and logged as rationed).
  A timer's name is never held, logged or spoken: only its length passes the link's adapter
  (a peer's words said in guardd's voice could pass for guardd's own).
- It rings on `timer-finished`, whatever the id (a guardd restarted since the timer began
  still rings), and on its own clock LATE_S after a running timer it holds should have ended
  without a word from Home Assistant, which drops timer events while its link is down
  (assist_satellite.py `_handle_timer`), and its link is down while its mute switch is on.
  One ring at a time: a timer that finishes while one rings joins it.
- The ring stops at the first of: a press that began while it rang, with no request asking
  then or since (the gate's `held_idle_since`, the press that also mutes when held); Home
  Assistant cancelling (or running again) every timer that rings; RING_S after the last one
  joined it; guardd stopping.
- While a request asks, or audio after a wake word is kept, the core plays no burst (the
  announcement outranks the ring, and the microphone must hear the person); the ring goes on
  afterwards, until one of the above.

Why no press can both silence a ring and approve a request: the press that silences began
when no request was armed, and none was armed or decided since (held_idle_since). A request
armed later finds the button already down, so the gate makes it be released first (`_must_release`),
and a press counts for a request only if it began after that request armed and its
announcement said where and how much. So that press approves nothing, before or after.

What a peer can make guardd log here is rationed (homeassistant/ration.py), kind by kind; a finish
that cannot be logged does not ring; a ring's stop is done, logged or not (the safe direction).
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from guardd.journal import Recorder
from guardd.homeassistant.ration import Ration
from guardd.homeassistant.said import TIMER_KINDS, TimerChange

MAX_TIMERS = 16  # held at once (a kitchen has a few)
ID_CHARS = 64
MAX_SECONDS = 31 * 24 * 3600  # a month: no kitchen timer runs longer
LATE_S = 5.0  # after a held running timer's end with no word from Home Assistant, it rings anyway
RING_S = 300.0  # how long a ring lasts without a press (from the last timer that joined it)
RING_EVERY_S = 2.0  # a burst of the ring tone this often
TIMER_ID = re.compile(r"[A-Za-z0-9._:-]{1,%d}" % ID_CHARS)

Event = dict[str, Any]


@dataclass
class Held:
    seconds: int  # left at `at`
    at: float  # on the core's clock, when Home Assistant last said
    active: bool

    def left(self, now: float) -> float:
        return max(0.0, self.seconds - (now - self.at)) if self.active else float(self.seconds)


@dataclass
class Ring:
    timers: list[str]  # the timers that ring, oldest first
    began: float
    until: float
    next_burst: float


@dataclass(frozen=True)
class Rung:
    """What a call did: events for the core to tell (each one logged), and whether the ring
    began or ended."""

    events: tuple[Event, ...] = ()
    changed: bool = False


class Timers:
    def __init__(self, record: Recorder) -> None:
        self._record = record
        self.held: dict[str, Held] = {}  # in the order they were last told of
        self.ring: Ring | None = None
        self.refused: Counter[str] = Counter()  # changes refused, by reason
        self.dropped = 0  # timers let go to make room
        self._rung: deque[str] = deque(maxlen=MAX_TIMERS)  # rang, then silenced: never again
        self._ration = Ration()
        self._events: list[Event] = []
        self._now = 0.0

    @property
    def ringing(self) -> bool:
        return self.ring is not None

    # -- inputs ----------------------------------------------------------------------------------

    def take(self, change: TimerChange, now: float) -> Rung:
        """A link's word on a timer."""
        was, self._now = self.ringing, now
        why = refusal(change)
        if why is not None:
            self.refused[why] += 1
            self._note("refused", "", kind=change.kind[:40], reason=why)
        elif change.kind == "timer-finished":
            self.held.pop(change.timer_id, None)
            self._finish(change.timer_id, "home_assistant")
        elif change.kind == "timer-cancelled":
            self.held.pop(change.timer_id, None)
            self._note("cancelled", change.timer_id)
            self._unring(change.timer_id, "cancelled")
        else:
            assert change.seconds is not None
            started = change.kind == "timer-started"
            active = True if started else change.active
            self._hold(change.timer_id, Held(change.seconds, now, active))
            fields = {"name_chars": max(0, change.name_chars)} if started else {"active": int(active)}
            self._note("started" if started else "updated", change.timer_id, seconds=change.seconds, **fields)
            self._unring(change.timer_id, "running again")  # Home Assistant counts it down again,
            if change.timer_id in self._rung:  # so its next end rings again
                self._rung.remove(change.timer_id)
        return self._rung_since(was)

    def tick(self, now: float) -> Rung:
        """Timers whose end passed LATE_S ago with no word ring; a ring past RING_S stops."""
        was, self._now = self.ringing, now
        for timer_id, held in list(self.held.items()):
            if held.active and now >= held.at + held.seconds + LATE_S:
                del self.held[timer_id]
                self._finish(timer_id, "clock")
        if self.ring is not None and now >= self.ring.until:
            self._stop("timeout")
        return self._rung_since(was)

    def pressed(self, since: float | None, now: float) -> Rung:
        """The press now held began at `since` with no request asking then or since (None:
        there is no such press): it silences a ring that began before it."""
        was, self._now = self.ringing, now
        if self.ring is not None and since is not None and since >= self.ring.began:
            self._stop("press", pressed_ms=round(since * 1000))
        return self._rung_since(was)

    def end(self, reason: str, now: float) -> Rung:
        """guardd stops (or reloads): a ring ends with it."""
        was, self._now = self.ringing, now
        if self.ring is not None:
            self._stop(reason)
        return self._rung_since(was)

    def burst_due(self, now: float, *, quiet: bool) -> bool:
        """Whether a burst of the ring is to play now; never while `quiet` (a request asks, or
        a wake word's audio is kept), and the first one as soon as it is not."""
        ring = self.ring
        if ring is None or quiet or now < ring.next_burst:
            return False
        ring.next_burst = now + RING_EVERY_S
        return True

    def status(self, now: float) -> dict[str, Any]:
        ring = self.ring
        return {
            "held": [{"timer": t, "left_s": round(h.left(now)), "active": h.active} for t, h in self.held.items()],
            "ringing": list(ring.timers) if ring else [],
            "ring_left_s": round(ring.until - now) if ring else None,
            "refused": dict(self.refused), "dropped": self.dropped,
        }

    # -- the rules -------------------------------------------------------------------------------

    def _hold(self, timer_id: str, held: Held) -> None:
        self.held.pop(timer_id, None)
        if len(self.held) >= MAX_TIMERS:
            del self.held[next(iter(self.held))]  # the one told least recently
            self.dropped += 1
        self.held[timer_id] = held

    def _finish(self, timer_id: str, by: str) -> None:
        ring = self.ring
        if (ring is not None and timer_id in ring.timers) or timer_id in self._rung:
            self._note("finished", timer_id, by=by, rings=0)  # it rang already: once is enough
            return
        if not self._note("finished", timer_id, by=by, rings=1):
            return  # past its ration, or the log failed: what cannot be logged does not ring
        if ring is None:
            self.ring = Ring([timer_id], self._now, self._now + RING_S, self._now)
            return
        if len(ring.timers) >= MAX_TIMERS:
            self._rung.append(ring.timers.pop(0))
        ring.timers.append(timer_id)
        ring.until = self._now + RING_S

    def _unring(self, timer_id: str, reason: str) -> None:
        ring = self.ring
        if ring is None or timer_id not in ring.timers:
            return
        if ring.timers == [timer_id]:
            self._stop(reason)  # the last one that rang
            return
        ring.timers.remove(timer_id)
        self._rung.append(timer_id)

    def _stop(self, reason: str, **fields: int) -> None:
        ring = self.ring
        assert ring is not None
        self.ring = None
        self._rung.extend(ring.timers)
        self._note("silenced", "", reason=reason, timers=len(ring.timers),
                   rang_ms=round((self._now - ring.began) * 1000), **fields)

    def _note(self, what: str, timer_id: str, **fields: int | str) -> bool:
        """The `timer` record (rationed by what it says) and its event; False when not logged."""
        held = self._ration.take(f"timer {what}", self._now, str(fields.get("reason", "")))
        if held is None:
            return False
        said: dict[str, int | str] = {**({"timer": timer_id} if timer_id else {}), **fields}
        if self._record("timer", event=what, **said, **held) is None:
            return False
        self._events.append({"event": "timer", "what": what, **said})
        return True

    def _rung_since(self, was: bool) -> Rung:
        events, self._events = tuple(self._events), []
        return Rung(events, was != self.ringing)


def refusal(change: TimerChange) -> str | None:
    """Why guardd does not take a change (a bound it breaks), or None."""
    if change.kind not in TIMER_KINDS:
        return "not a timer event"
    if not isinstance(change.timer_id, str) or not TIMER_ID.fullmatch(change.timer_id):
        return f"an id that is not 1 to {ID_CHARS} letters, digits or ._:-"
    if change.kind in ("timer-started", "timer-updated"):
        seconds = change.seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= MAX_SECONDS:
            return f"seconds that are not a whole number from 0 to {MAX_SECONDS}"
    return None
