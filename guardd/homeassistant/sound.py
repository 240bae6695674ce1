"""Audio that Home Assistant sends guardd to play (a reply's speech, or an announcement), as its
start (the format), its pieces and its end, whichever protocol carried them. Taken only in a
format guardd plays (16-bit, mono or stereo, 8 to 48 kHz, whole frames) and up to MAX_S;
anything else is a BadSound, and the caller drops the connection. Each piece is made mono at the
speaker's rate as it comes, so it can play while the rest is still on its way."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from guardd.homeassistant.said import SoundChunk, SoundStart
from guardd.speak.clips import resampled

MAX_S = 60.0  # seconds of one sound from Home Assistant
RATES = (8000, 48000)  # hertz, lowest and highest


class BadSound(Exception):
    """Audio from the peer that guardd will not play; the message says what was wrong."""


def checked_format(rate: Any, width: Any, channels: Any) -> tuple[int, int, int]:
    """(rate, width, channels) when guardd plays that format; BadSound otherwise."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (rate, width, channels)):
        raise BadSound("a sound without a whole-number rate, width and channels")
    if width != 2 or channels not in (1, 2) or not RATES[0] <= rate <= RATES[1]:
        raise BadSound(f"audio of {rate} Hz, {width} bytes, {channels} channels: guardd plays "
                       f"16-bit mono or stereo at {RATES[0]} to {RATES[1]} Hz")
    return rate, width, channels


class IncomingSound:
    """One sound being received, from its start."""

    def __init__(self, start: SoundStart, began: float) -> None:
        self.format = checked_format(start.rate, start.width, start.channels)
        self.began = began
        self._digest = hashlib.sha256()
        self._bytes = 0
        self._limit = int(MAX_S * self.format[0]) * self.format[1] * self.format[2]

    def add(self, chunk: SoundChunk, convert: bool = True) -> np.ndarray:
        """The piece's samples, int16 mono at SPEAKER_RATE (`convert=False`: checked and hashed
        only, for a sound that is not played; an empty array)."""
        if chunk.format is not None and checked_format(*chunk.format) != self.format:
            raise BadSound("a piece of a sound in another format than its start")
        audio = chunk.audio
        rate, width, channels = self.format
        if len(audio) % (width * channels):
            raise BadSound(f"a piece of a sound that is not a whole number of {width * channels}-byte frames")
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
