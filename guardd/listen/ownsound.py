"""guardd never listens to itself. While the speaker plays one of guardd's own sounds, and for
TAIL_S after (the room's echo, and the input's own latency), the microphone's frames are
replaced by silence before the wake detector, the rolling history or the recorder see them. So
an announcement that says a wake word ("Send to Alexa: ...") can neither wake the detector nor
become part of a kept utterance; a person who speaks over it is not heard either, and says the
wake word again once it has ended.

Times are the core's clock: for `run`, when the PortAudio callback took each block
(time.monotonic, the clock the speaker's reports use), so a loop running behind still masks
the right blocks; for `replay`, audio time.
"""

from __future__ import annotations

from collections import deque

from guardd.speak.player import Played, Playing

TAIL_S = 0.5


class OwnSound:
    def __init__(self) -> None:
        self._spans: deque[list[float]] = deque(maxlen=8)  # [first sample, last sample]
        self._open = False  # the last span's sound has not yet ended
        self.masked = 0  # frames replaced by silence

    def follow(self, news: Playing | Played) -> None:
        if isinstance(news, Playing):
            self.playing(news.started, news.ends)
        else:
            self.played(news.ended)

    def playing(self, started: float, ends: float) -> None:
        self._spans.append([started, ends])
        self._open = True

    def played(self, ended: float) -> None:
        """The sound playing now ended (a sound that never began ends no span)."""
        if self._open:
            self._spans[-1][1] = ended
            self._open = False

    def covers(self, captured: float, frame_s: float) -> bool:
        """Whether the frame whose last sample was taken at `captured` may hold our own sound."""
        hit = any(start <= captured and captured - frame_s <= end + TAIL_S for start, end in self._spans)
        self.masked += hit
        return hit
