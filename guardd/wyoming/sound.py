"""Audio that Home Assistant sends the satellite to play (a reply's speech, or an
announcement): `audio-start`, `audio-chunk`s in the same format, `audio-stop`. Taken only in
a format guardd plays (16-bit, mono or stereo, 8 to 48 kHz, whole frames) and up to MAX_S;
anything else is a BadSound, and the caller drops the connection. Each chunk is made mono at
the speaker's rate as it comes, so it can play while the rest is still on its way."""

from __future__ import annotations

import hashlib

import numpy as np
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import Event

from guardd.speak.clips import resampled

MAX_S = 60.0  # seconds of one sound from Home Assistant
RATES = (8000, 48000)  # hertz, lowest and highest


class BadSound(Exception):
    """Audio from the peer that guardd will not play; the message says what was wrong."""


def _format(event: Event) -> tuple[int, int, int]:
    data = event.data or {}
    rate, width, channels = data.get("rate"), data.get("width"), data.get("channels")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (rate, width, channels)):
        raise BadSound(f"{event.type} without a whole-number rate, width and channels")
    if width != 2 or channels not in (1, 2) or not RATES[0] <= rate <= RATES[1]:
        raise BadSound(f"audio of {rate} Hz, {width} bytes, {channels} channels: guardd plays "
                       f"16-bit mono or stereo at {RATES[0]} to {RATES[1]} Hz")
    return rate, width, channels


class IncomingSound:
    """One sound being received, from its audio-start."""

    def __init__(self, start: Event, began: float) -> None:
        AudioStart.from_event(start)
        self.format = _format(start)
        self.began = began
        self._digest = hashlib.sha256()
        self._bytes = 0
        self._limit = int(MAX_S * self.format[0]) * self.format[1] * self.format[2]

    def add(self, chunk: Event, convert: bool = True) -> np.ndarray:
        """The chunk's samples, int16 mono at SPEAKER_RATE (`convert=False`: checked and hashed
        only, for a sound that is not played; an empty array)."""
        if _format(chunk) != self.format:
            raise BadSound("an audio-chunk in another format than its audio-start")
        audio = AudioChunk.from_event(chunk).audio
        rate, width, channels = self.format
        if len(audio) % (width * channels):
            raise BadSound(f"an audio-chunk that is not a whole number of {width * channels}-byte frames")
        self._bytes += len(audio)
        if self._bytes > self._limit:
            raise BadSound(f"audio longer than {MAX_S:g} s")
        self._digest.update(audio)
        if not convert:
            return np.zeros(0, np.int16)
        x = np.frombuffer(audio, dtype="<i2").reshape(-1, channels).mean(axis=1)
        return np.round(resampled(x, rate)).astype(np.int16)

    def finish(self) -> tuple[str, int]:
        """(SHA-256 of the bytes received, milliseconds)."""
        rate, width, channels = self.format
        return self._digest.hexdigest(), self._bytes // (width * channels) * 1000 // rate
