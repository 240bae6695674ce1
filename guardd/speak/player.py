"""Audio out: guardd's own tones and announcements, and the audio Home Assistant sends to be
played (stream(): played as its pieces arrive), on the speaker, through sounddevice and
PortAudio, from a thread of its own. The core's side only enqueues: chime(), announce(),
stream() and its Feed's add() and end(), and hush() never block, and when PLAY_QUEUE sounds
already wait a new one is dropped (counted).

An announcement is the asking tone, the upload's own audio (for `announce.upload: playback`)
and the spoken sentence, in that order, as one sound. Each sound opens the output stream,
writes the samples in CHUNK_S pieces no more than LEAD_S ahead of their time (so a hush stops
it within a chunk, even on an output that takes samples as fast as they come), and closes it.
What happened goes back to the core as inputs through `report`:
  Playing(id, started, ends)  its first sample reaches the speaker at `started` (write time
                              plus the stream's latency); it will end at `ends`
  Played(id, ended, whole)    it ended at `ended`, whole, hushed, or failed
  SpeakerReport(failure)      the speaker failed (why), or plays again (None), once per change
A speaker that is missing or fails is a fault of the speaker alone: listening goes on, and an
announcement that could not play still ends (Played), so its request is asked for by the LED.

With `threaded=False` (replay, the benchmark, tests) a sound plays on the caller's thread, on
the injected clock: Playing and Played are dated on it, as if the sound took its own length
of that clock, and the output gets every sample at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from guardd.sounddevices import import_sounddevice, resolve_device
from guardd.speak.feed import Feed, FeedStalled
from guardd.speak.earcons import SPEAKER_RATE, render
from guardd.speak.sentence import Announcement
from guardd.speak.sounds import announcement_samples, scaled
from guardd.speak.voice import Espeak

log = logging.getLogger(__name__)

PLAY_QUEUE = 8
CHUNK_S = 0.05
LEAD_S = 0.1  # how far ahead of the speaker the writes may run
SPEAKER_FIX = "check the speaker and `aplay -l`; set audio.output_device (`guardd devices` lists them) or announce.output: none"


@dataclass(frozen=True)
class Playing:
    request_id: str | None  # None: one of guardd's tones for how a request ended
    started: float
    ends: float


@dataclass(frozen=True)
class Played:
    request_id: str | None
    ended: float
    whole: bool


@dataclass(frozen=True)
class SpeakerReport:
    """The speaker failed (why), or plays again (None): an input for the core."""

    failure: str | None


SpeakerNews = Playing | Played | SpeakerReport


class DeviceOutput:
    """The speaker, by name or index as `guardd devices` lists it (None: the default)."""

    def __init__(self, device: str | int | None) -> None:
        self.device = device

    def open(self) -> Any:
        sd: Any = import_sounddevice()
        device = resolve_device(sd, self.device, "output")
        return sd.RawOutputStream(samplerate=SPEAKER_RATE, channels=1, dtype="int16", device=device)


class _Nowhere:
    latency = 0.0

    def __enter__(self) -> "_Nowhere":
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def write(self, samples: bytes) -> None:
        return None

    def abort(self) -> None:
        return None


class NoOutput:
    """`announce.output: none`: sounds take their time, and are written nowhere."""

    def open(self) -> _Nowhere:
        return _Nowhere()


@dataclass(frozen=True)
class _Sound:
    request_id: str | None
    chime: str = ""
    said: Announcement | None = None
    samples: np.ndarray | None = None  # audio to play as it is (at SPEAKER_RATE), at the volume
    feed: Feed | None = None  # audio that arrives while it plays


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
        self._queue: queue.Queue[_Sound | None] = queue.Queue(maxsize=PLAY_QUEUE)
        self._thread = threading.Thread(target=self._run, name="guardd-speaker", daemon=True)
        self._hushed: set[str] = set()
        self._failing: str | None = None
        self.dropped = 0  # sounds not played because PLAY_QUEUE were already waiting
        self.played = 0

    def start(self) -> None:
        if self._threaded:
            self._thread.start()

    def chime(self, name: str) -> None:
        """An earcon by name (how a request ended)."""
        self._put(_Sound(None, chime=name))

    def announce(self, said: Announcement) -> None:
        self._put(_Sound(said.request_id, said=said))

    def stream(self, sound_id: str) -> Feed:
        """A sound `sound_id` (a reply from Home Assistant) played as its pieces come; inline,
        played whole once it has ended."""
        if not self._threaded:
            return Feed(lambda feed: self._play(_Sound(sound_id, samples=np.concatenate(
                feed.pieces_so_far or [np.zeros(0, np.int16)]))))
        feed = Feed()
        self._put(_Sound(sound_id, feed=feed))
        return feed

    def hush(self, request_id: str) -> None:
        """The request was decided: its announcement stops, or never starts."""
        self._hushed.add(request_id)

    def _put(self, sound: _Sound) -> None:
        if not self._threaded:
            self._play(sound)
            return
        try:
            self._queue.put_nowait(sound)
        except queue.Full:
            self.dropped += 1
            if sound.request_id is not None:  # its request must still be asked for, by the LED
                self._report(Played(sound.request_id, self._clock(), False))

    def stop(self) -> None:
        """Drop what waits, let the chunk playing now finish, and end the thread: a stop must
        not wait on a queue of sounds (the daemon stops within 2 s)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._hushed.add("*")
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(2.0)

    def _run(self) -> None:
        while (sound := self._queue.get()) is not None:
            self._play(sound)

    # -- one sound -----------------------------------------------------------------------------

    def _stopped(self, sound: _Sound) -> bool:
        return "*" in self._hushed or (sound.request_id is not None and sound.request_id in self._hushed)

    def _play(self, sound: _Sound) -> None:
        if self._stopped(sound):
            self._hushed.discard(sound.request_id or "")
            return
        if sound.request_id is not None:  # one request asks at a time: other hushes are stale
            self._hushed.intersection_update({"*", sound.request_id})
        if sound.feed is not None:  # streamed: its length is known only when it has ended
            parts: Iterator[np.ndarray] = (scaled(piece, self._volume) for piece in sound.feed.pieces())
            total: int | None = None
        else:
            samples = self._samples(sound)
            parts, total = iter([samples]), len(samples)
        started: float | None = None
        written = 0
        whole = True
        try:
            with self._output.open() as stream:
                for piece in self._paced(parts):
                    if self._stopped(sound):
                        stream.abort()
                        whole = False
                        break
                    before = self._clock()
                    stream.write(piece.tobytes())
                    if started is None:
                        started = before + (stream.latency if self._threaded else 0.0)
                        ends = float("inf") if total is None else started + total / SPEAKER_RATE
                        self._report(Playing(sound.request_id, started, ends))
                    written += len(piece)
        except FeedStalled:
            whole = False
        except Exception as exc:  # noqa: BLE001 - any failure is a fault of the speaker alone
            self._ended(sound, started, written, whole=False)
            self._changed(f"the speaker cannot play: {exc}; {SPEAKER_FIX}")
            return
        self._ended(sound, started, written, whole=whole and (total is None or written == total))
        self.played += 1
        self._changed(None)

    def _paced(self, parts: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The parts in CHUNK_S pieces; from a thread, each no more than LEAD_S ahead of its
        time, counted from the first (inline, each part at once)."""
        if not self._threaded:
            yield from parts
            return
        n = int(CHUNK_S * SPEAKER_RATE)
        begun: float | None = None
        at = 0
        for part in parts:
            for i in range(0, len(part), n):
                if begun is None:
                    begun = time.monotonic()
                wait = begun + at / SPEAKER_RATE - LEAD_S - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                piece = part[i : i + n]
                at += len(piece)
                yield piece

    def _ended(self, sound: _Sound, started: float | None, written: int, *, whole: bool) -> None:
        self._hushed.discard(sound.request_id or "")
        if started is None:
            ended = self._clock()
        elif self._threaded:
            ended = max(self._clock(), started + written / SPEAKER_RATE) if whole else self._clock()
        else:
            ended = started + written / SPEAKER_RATE
        self._report(Played(sound.request_id, ended, whole))

    def _samples(self, sound: _Sound) -> np.ndarray:
        if sound.samples is not None:
            return scaled(sound.samples, self._volume)
        if sound.said is None:
            return render(sound.chime, self._volume)
        return announcement_samples(sound.said, self.voice, self._volume)

    def _changed(self, failure: str | None) -> None:
        if failure == self._failing:
            return
        self._failing = failure
        if failure is not None:
            log.warning("%s", failure)
        self._report(SpeakerReport(failure))
