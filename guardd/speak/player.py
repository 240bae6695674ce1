"""Audio out: guardd's own tones and announcements, and the audio Home Assistant sends to be
played (stream(): played as its pieces arrive), on the speaker, through sounddevice and
PortAudio, from a thread of its own. The core's side only lines sounds up (lineup.py: the
armed request's announcement outranks everything, and while a request asks nothing else plays):
chime(), announce(), stream() and its Feed's add() and end(), ring(), end_ring() and hush()
never block.

An announcement is the asking tone, the upload's own audio (for `announce.upload: playback`)
and the spoken sentence, lead then rest, as one sound. Each sound opens the output stream,
writes the samples in CHUNK_S pieces no more than LEAD_S ahead of their time (so a hush or an
announcement stops it within a chunk, even on an output that takes samples as fast as they
come), and closes it. What happened goes back to the core as inputs through `report` (news.py):
  Playing(id, started, ends, asks_at)  its first sample reaches the speaker at `started` (write
                              time plus the stream's latency); it will end at `ends`; an
                              announcement's first part will have played at `asks_at`
  Said(id, at)                the announcement's first part has been written whole; its last
                              sample plays at `at` (a press counts only after it)
  Played(id, ended, whole)    it ended at `ended`, whole, or cut short, failed, or not played
  SpeakerReport(failure)      the speaker failed (why), or plays again (None), once per change
A speaker that is missing or fails is a fault of the speaker alone: listening goes on, and an
announcement that could not play still ends (Played), so its request is asked for by the LED.

With `threaded=False` (replay, the benchmark, tests) a sound plays on the caller's thread, on
the injected clock: its news is dated on it, as if the sound took its own length of that
clock, and the output gets every sample at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterator

import numpy as np

from guardd.speak.earcons import SPEAKER_RATE, render
from guardd.speak.feed import Feed, FeedStalled
from guardd.speak.lineup import Lineup, Sound
from guardd.speak.news import NEWS, Played, Playing, Said, SpeakerNews, SpeakerReport
from guardd.speak.outputs import DeviceOutput, NoOutput
from guardd.speak.sentence import Announcement
from guardd.speak.sounds import announcement_samples, scaled
from guardd.speak.voice import Espeak

__all__ = ["NEWS", "DeviceOutput", "NoOutput", "Played", "Player", "Playing", "Said", "SpeakerNews", "SpeakerReport"]

log = logging.getLogger(__name__)

CHUNK_S = 0.05
LEAD_S = 0.1  # how far ahead of the speaker the writes may run
SPEAKER_FIX = "check the speaker and `aplay -l`; set audio.output_device (`guardd devices` lists them) or announce.output: none"


class Player:
    def __init__(self, output: DeviceOutput | NoOutput, volume: float, voice: Espeak | None,
                 report: Callable[[SpeakerNews], None], *, clock: Callable[[], float] = time.monotonic,
                 threaded: bool = True) -> None:
        self._output = output
        self._volume = volume
        self.voice = voice
        self._report = report
        self._clock = clock
        self._threaded = threaded
        self._lineup = Lineup()
        self._thread = threading.Thread(target=self._run, name="guardd-speaker", daemon=True)
        self._failing: str | None = None
        self.played = 0

    @property
    def dropped(self) -> int:
        """Sounds not played: outranked by an announcement, coalesced, or past the line's bounds."""
        return self._lineup.let_go

    def start(self) -> None:
        if self._threaded:
            self._thread.start()

    def chime(self, name: str) -> None:
        """An earcon by name (how a request ended)."""
        self._lineup.tone(Sound(None, chime=name))
        self._inline()

    def announce(self, said: Announcement) -> None:
        """The armed request's announcement: it cuts what plays, and until hush() nothing else plays."""
        self._lineup.announce(Sound(said.request_id, said=said))
        self._inline()

    def stream(self, sound_id: str) -> Feed:
        """A sound `sound_id` (from Home Assistant) played as its pieces come, unless a request
        asks (then it is answered as played at once); inline, played whole once it has ended."""
        if not self._threaded:
            def ended(feed: Feed) -> None:
                whole = np.concatenate(feed.pieces_so_far or [np.zeros(0, np.int16)])
                self._lineup.stream(Sound(sound_id, samples=whole))
                self._inline()

            return Feed(ended)
        feed = Feed()
        self._lineup.stream(Sound(sound_id, feed=feed))
        return feed

    def ring(self) -> None:
        """One burst of a timer's ring (the core says when), after everything else that waits."""
        self._lineup.ring(Sound(None, chime="ring", ring=True))
        self._inline()

    def end_ring(self) -> None:
        """The ring was silenced: a burst waiting is let go, one playing stops within a chunk."""
        self._lineup.end_ring()
        self._inline()

    def hush(self, request_id: str) -> None:
        """The request was decided: its announcement stops, or never starts, and other sounds
        may play again."""
        self._lineup.hush(request_id)
        self._inline()

    def stop(self) -> None:
        """Let go of what waits, stop what plays within a chunk, and end the thread: a stop must
        not wait on a line of sounds (the daemon stops within 2 s)."""
        self._lineup.close()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def _inline(self) -> None:
        if not self._threaded:
            while (item := self._lineup.next(wait=False)) is not None:
                self._take(item)

    def _run(self) -> None:
        while (item := self._lineup.next()) is not None:
            self._take(item)

    def _take(self, item: Sound | str) -> None:
        if isinstance(item, str):  # a streamed sound that was not played: answered
            self._report(Played(item, self._clock(), False))
            return
        try:
            self._play(item)
        finally:
            self._lineup.done()

    # -- one sound -----------------------------------------------------------------------------

    def _parts(self, sound: Sound) -> tuple[Iterator[np.ndarray | None], int | None, int | None]:
        """What to write of a sound, how many samples (None: streamed, known when it has ended),
        and for an announcement how many make its first part."""
        if sound.feed is not None:
            return self._fed(sound.feed, self._volume), None, None
        first = None
        if sound.said is not None:
            samples, first = announcement_samples(sound.said, self.voice, self._volume)
        elif sound.samples is not None:
            samples = scaled(sound.samples, self._volume)
        else:
            samples = render(sound.chime, self._volume)
        return iter([samples]), len(samples), first

    def _play(self, sound: Sound) -> None:
        started: float | None = None
        total: int | None = None
        written = 0
        whole = True
        try:
            parts, total, first = self._parts(sound)
            with self._output.open() as stream:
                for piece in self._paced(parts):
                    self._answer_unplayed()
                    if self._lineup.cut():
                        stream.abort()
                        whole = False
                        break
                    if piece is None:
                        continue  # a streamed sound waiting for its next piece
                    before = self._clock()
                    stream.write(piece.tobytes())
                    latency = stream.latency if self._threaded else 0.0
                    if started is None:
                        started = before + latency
                        ends = float("inf") if total is None else started + total / SPEAKER_RATE
                        asks = None if first is None else started + first / SPEAKER_RATE
                        self._report(Playing(sound.sound_id, started, ends, asks))
                    if first is not None and written + len(piece) >= first and sound.sound_id is not None:
                        # When its last sample plays: on time, or later if the output ran dry
                        # meanwhile (a starved thread) and this piece plays only from its write.
                        at = max(started + first / SPEAKER_RATE, before + latency + (first - written) / SPEAKER_RATE)
                        self._report(Said(sound.sound_id, at))
                        first = None
                    written += len(piece)
        except FeedStalled:
            whole = False
        except Exception as exc:  # noqa: BLE001 - any failure is a fault of the speaker alone
            # The fault first: an announcement that ends unsaid lets the LED ask alone, and only
            # once the speaker's fault is logged.
            self._changed(f"the speaker cannot play: {exc}; {SPEAKER_FIX}")
            self._ended(sound, started, written, whole=False)
            return
        self._ended(sound, started, written, whole=whole and (total is None or written == total))
        self.played += 1
        self._changed(None)

    @staticmethod
    def _fed(feed: Feed, volume: float) -> Iterator[np.ndarray | None]:
        """A streamed sound's pieces as they come, at the volume; None each CHUNK_S none comes,
        so the player can stop it while it waits."""
        while not feed.finished:
            piece = feed.take(CHUNK_S)
            yield None if piece is None else scaled(piece, volume)

    def _paced(self, parts: Iterator[np.ndarray | None]) -> Iterator[np.ndarray | None]:
        """The parts in CHUNK_S pieces; from a thread, each no more than LEAD_S ahead of its
        time, counted from the first (inline, each part at once). None passes through."""
        if not self._threaded:
            yield from parts
            return
        n = int(CHUNK_S * SPEAKER_RATE)
        begun: float | None = None
        at = 0
        for part in parts:
            if part is None:
                yield None
                continue
            for i in range(0, len(part), n):
                if begun is None:
                    begun = time.monotonic()
                wait = begun + at / SPEAKER_RATE - LEAD_S - time.monotonic()
                if wait > 0 and self._lineup.pause(wait):
                    yield None  # it must stop: at once, not a chunk later
                    return
                piece = part[i : i + n]
                at += len(piece)
                yield piece

    def _answer_unplayed(self) -> None:
        for sound_id in self._lineup.unplayed():
            self._report(Played(sound_id, self._clock(), False))

    def _ended(self, sound: Sound, started: float | None, written: int, *, whole: bool) -> None:
        if sound.feed is not None and not whole:
            sound.feed.drop()  # what is still to come of it is let go
        if started is None:
            ended = self._clock()
        elif self._threaded:
            ended = max(self._clock(), started + written / SPEAKER_RATE) if whole else self._clock()
        else:
            ended = started + written / SPEAKER_RATE
        self._report(Played(sound.sound_id, ended, whole))

    def _changed(self, failure: str | None) -> None:
        if failure == self._failing:
            return
        self._failing = failure
        if failure is not None:
            log.warning("%s", failure)
        self._report(SpeakerReport(failure))
