"""Home Assistant's sounds on guardd's speaker, on the core's thread: one sound at a time from
each connection (`audio-start`, `audio-chunk`s, `audio-stop`), checked (sound.py), hashed, and
played as its chunks come, through a Feed the speaker takes from.

What the peer can make guardd hold for the speaker is bounded in bytes (AUDIO_BYTES, all its
sounds together: what has come and has not yet been played). A sound that would go past it is
cut: what came of it plays, the rest is received, hashed and not kept, and its `sound_end`
record says so. The bound lets one sound of the longest length (sound.MAX_S) through whole when
nothing else waits: Home Assistant sends its audio as fast as the connection takes it
(assist_satellite.py `_stream_tts`, `async_announce`), not in real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from wyoming.event import Event

from guardd.speak.earcons import SPEAKER_RATE
from guardd.speak.feed import Feed
from guardd.wyoming.sound import MAX_S, BadSound, IncomingSound

AUDIO_BYTES = int(MAX_S * SPEAKER_RATE) * 2  # int16 mono at the speaker's rate: about 2.6 MB


@dataclass
class Arriving:
    sound: IncomingSound
    sound_id: str | None  # None: not played (it could not be logged)
    feed: Feed | None
    cut: str = ""  # why the rest of it was not kept for the speaker


@dataclass(frozen=True)
class Ended:
    sound_id: str | None
    sha256: str
    ms: int
    cut: str


class Sounds:
    def __init__(self, stream: Callable[[str], Feed], budget_bytes: int = AUDIO_BYTES) -> None:
        self._stream = stream
        self.budget_bytes = budget_bytes
        self._arriving: dict[int, Arriving] = {}  # connection -> the sound it is sending
        self._feeds: dict[str, tuple[Feed, int]] = {}  # sound id -> its feed, its connection (until it has played)

    def arriving(self, connection: int) -> bool:
        return connection in self._arriving

    def begin(self, connection: int, start: Event, now: float, sound_id: str | None) -> None:
        """A sound's audio-start; played as `sound_id` (None: only received)."""
        if connection in self._arriving:
            raise BadSound("audio-start inside another sound")
        sound = IncomingSound(start, now)
        feed = None
        if sound_id is not None:
            feed = self._stream(sound_id)
            self._feeds[sound_id] = (feed, connection)
        self._arriving[connection] = Arriving(sound, sound_id, feed)

    def chunk(self, connection: int, event: Event) -> None:
        arriving = self._arriving.get(connection)
        if arriving is None:
            raise BadSound(f"{event.type} without an audio-start")
        samples = arriving.sound.add(event, convert=arriving.feed is not None)
        if arriving.feed is None:
            return
        if self.waiting_bytes() + samples.nbytes > self.budget_bytes:
            arriving.cut = f"over the {self.budget_bytes} bytes the speaker may hold for Home Assistant"
            arriving.feed.end()  # what came plays; the rest is not kept
            arriving.feed = None
            return
        arriving.feed.add(samples)

    def end(self, connection: int, kind: str = "audio-stop") -> Ended:
        arriving = self._arriving.pop(connection, None)
        if arriving is None:
            raise BadSound(f"{kind} without an audio-start")
        if arriving.feed is not None:
            arriving.feed.end()
        sha256, ms = arriving.sound.finish()
        return Ended(arriving.sound_id, sha256, ms, arriving.cut)

    def cut(self, connection: int) -> None:
        """The sound from `connection` ends where it got to (bad audio, or the connection closed)."""
        arriving = self._arriving.pop(connection, None)
        if arriving is not None and arriving.feed is not None:
            arriving.feed.end()

    def stale(self, now: float, wait_s: float) -> list[int]:
        """Connections whose sound began more than MAX_S + `wait_s` ago and has not ended."""
        return [c for c, a in self._arriving.items() if now - a.sound.began > MAX_S + wait_s]

    def played(self, sound_id: str | None) -> int | None:
        """A sound has ended on the speaker: the connection it came from (for `played`), or
        None when it is none of Home Assistant's."""
        if sound_id is None or sound_id not in self._feeds:
            return None
        connection = self._feeds.pop(sound_id)[1]
        arriving = self._arriving.get(connection)
        if arriving is not None and arriving.sound_id == sound_id and arriving.feed is not None:
            arriving.feed = None  # it ended before all of it came (dropped, hushed): feed it no more
            arriving.cut = "the speaker ended it before all of it came"
        return connection

    def waiting_bytes(self) -> int:
        return sum(feed.waiting_bytes for feed, _ in self._feeds.values())
