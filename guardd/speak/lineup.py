"""What waits to be played, by rank. The core's thread adds sounds and hushes requests (never
waiting, never on a queue the player drains); the player's thread takes the next sound, and asks
between chunks whether the one playing must stop.

The rule: the announcement of the armed request outranks every other sound, and while a request
asks (from announce() until its hush(), when it is decided) nothing else plays:
- the sound playing when a request is announced (a tone, a reply, a sound Home Assistant pushed)
  is cut, within a chunk;
- tones that wait, or come meanwhile, are let go: the ending of the request before is stale once
  the next one asks, and a request that ends while it waits (a client hanging up) has no tone;
- a streamed sound that waits, or comes meanwhile, is not played, and is answered at once as
  played (not whole), so Home Assistant gets its `played` and goes on (its Wyoming satellite
  entity, homeassistant/components/wyoming/assist_satellite.py in 2026.11, clears its "played"
  flag as it starts a sound and waits for it only after `audio-stop`, so an early `played` ends
  that wait at once). A peer's voice never speaks in the asking window, where it could pass
  for guardd's.
The announcement has a slot of its own (one request asks at a time), so no number of other
sounds can crowd it out. Other sounds wait in one line, in order: at most TONES_WAITING tones
(the same tone twice in a row is one; past that, the oldest goes) and STREAMS_WAITING streamed
sounds (past that, the newcomer is answered unplayed). A timer's ring ranks last: one burst
of it waits at most (in a slot of its own: another while one waits is one), it plays only when
nothing else waits, it is let go while a request asks (and cut by the announcement like any
sound), and end_ring() lets go of the burst that waits and cuts the one playing.
`let_go` counts what was not played.

To add a kind of sound (as the timer's ring was): give Sound what it needs (a flag, its
samples), add a method here that lines it up under the rule above (while a request asks: held
back or let go), and give it a rank in next(); the player plays whatever next() hands it and
stops it when cut() says so.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from guardd.speak.feed import Feed
from guardd.speak.sentence import Announcement

TONES_WAITING = 2
STREAMS_WAITING = 2


@dataclass(frozen=True)
class Sound:
    """One thing to play: a request's announcement (`said`), one of guardd's tones (`chime`),
    or a sound from Home Assistant, whole (`samples`) or arriving (`feed`)."""

    sound_id: str | None  # the request id of an announcement, a streamed sound's id; None: a tone
    chime: str = ""
    said: Announcement | None = None
    samples: np.ndarray | None = None  # audio to play as it is (at SPEAKER_RATE), at the volume
    feed: Feed | None = None  # audio that arrives while it plays
    ring: bool = False  # a burst of a timer's ring (its `chime` is the tone)

    @property
    def streamed(self) -> bool:
        """A sound from Home Assistant, which is answered when it ends, played or not."""
        return self.said is None and not self.chime


class Lineup:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._announcement: Sound | None = None  # the armed request's, not yet begun
        self._others: deque[Sound] = deque()  # tones and streamed sounds, in order
        self._ring: Sound | None = None  # a burst of a timer's ring, waiting
        self._unplayed: deque[str] = deque()  # streamed sounds let go: to answer as played
        self.asking: str | None = None  # the request whose asking window is open
        self._playing: Sound | None = None
        self._cut = False  # the sound playing must stop
        self._closed = False
        self.let_go = 0  # sounds not played: outranked, coalesced, or past the line's bounds

    # -- the core's side (never waits but for the lock, which no one holds for long) -----------

    def announce(self, sound: Sound) -> None:
        with self._cond:
            self.asking, self._announcement = sound.sound_id, sound  # (one asks at a time)
            while self._others:
                self._let_go(self._others.popleft())
            self._end_ring_waiting()
            if self._playing is not None:
                self._cut = True
            self._cond.notify_all()

    def hush(self, request_id: str) -> None:
        """The request was decided: its announcement stops (or never starts), and its asking
        window closes, so what comes next may play."""
        with self._cond:
            if self.asking == request_id:
                self.asking = None
            if self._announcement is not None and self._announcement.sound_id == request_id:
                self._announcement = None
            playing = self._playing
            if playing is not None and playing.said is not None and playing.sound_id == request_id:
                self._cut = True
            self._cond.notify_all()

    def tone(self, sound: Sound) -> None:
        with self._cond:
            waiting = [s for s in self._others if s.chime]
            if self.asking is not None or self._closed or (waiting and self._others[-1].chime == sound.chime):
                self.let_go += 1
                return
            if len(waiting) >= TONES_WAITING:
                self._others.remove(waiting[0])
                self.let_go += 1
            self._others.append(sound)
            self._cond.notify_all()

    def stream(self, sound: Sound) -> None:
        with self._cond:
            waiting = sum(1 for s in self._others if s.streamed)
            if self.asking is not None or self._closed or waiting >= STREAMS_WAITING:
                self._let_go(sound)
            else:
                self._others.append(sound)
            self._cond.notify_all()

    def ring(self, sound: Sound) -> None:
        """A burst of a timer's ring: last in rank, never while a request asks."""
        with self._cond:
            if self.asking is not None or self._closed or self._ring is not None:
                self.let_go += 1
                return
            self._ring = sound
            self._cond.notify_all()

    def end_ring(self) -> None:
        """The ring was silenced: the burst that waits is let go, the one playing stops."""
        with self._cond:
            self._end_ring_waiting()
            if self._playing is not None and self._playing.ring:
                self._cut = True
            self._cond.notify_all()

    def close(self) -> None:
        """Nothing more plays: what waits is let go, and the sound playing stops."""
        with self._cond:
            self._closed = True
            self._announcement = None
            while self._others:
                self._let_go(self._others.popleft())
            self._end_ring_waiting()
            self._cut = True
            self._cond.notify_all()

    def _end_ring_waiting(self) -> None:
        if self._ring is not None:
            self._ring = None
            self.let_go += 1

    def _let_go(self, sound: Sound) -> None:
        self.let_go += 1
        if sound.feed is not None:
            sound.feed.drop()
        if sound.streamed and sound.sound_id is not None:
            self._unplayed.append(sound.sound_id)

    # -- the player's side -----------------------------------------------------------------------

    def next(self, wait: bool = True) -> Sound | str | None:
        """What the player does next: a streamed sound's id to answer unplayed, or the sound to
        play (the announcement first). None when closed, or, with wait=False, when nothing may
        play now."""
        with self._cond:
            while True:
                if self._unplayed:
                    return self._unplayed.popleft()
                if self._closed:
                    return None
                if self._announcement is not None:
                    sound, self._announcement = self._announcement, None
                elif self.asking is None and self._others:
                    sound = self._others.popleft()
                elif self.asking is None and self._ring is not None:
                    sound, self._ring = self._ring, None
                elif wait:
                    self._cond.wait()
                    continue
                else:
                    return None
                self._playing, self._cut = sound, False
                return sound

    def cut(self) -> bool:
        """Whether the sound playing must stop now (outranked, hushed, or the player stops)."""
        with self._cond:
            return self._cut

    def pause(self, seconds: float) -> bool:
        """Wait up to `seconds` (the player pacing its writes), or until the sound playing must
        stop; whether it must."""
        with self._cond:
            return self._cond.wait_for(lambda: self._cut, timeout=seconds)

    def unplayed(self) -> list[str]:
        """Streamed sounds let go since last asked, to answer now (between chunks)."""
        with self._cond:
            ids = list(self._unplayed)
            self._unplayed.clear()
            return ids

    def done(self) -> None:
        with self._cond:
            self._playing, self._cut = None, False
