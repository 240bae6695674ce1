"""Audio that Home Assistant sends the satellite to play (a reply's speech, or an
announcement): `audio-start`, `audio-chunk`s in the same format, `audio-stop`. Taken only in
a format guardd plays (16-bit, mono or stereo, 8 to 48 kHz) and up to MAX_S; anything else is
a BadSound, and the caller drops the connection. Made mono at the speaker's rate to play."""

from __future__ import annotations

import hashlib

import numpy as np
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import Event

from guardd.speak.clips import resampled
from guardd.speak.earcons import SPEAKER_RATE

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
        self._pieces: list[bytes] = []
        self._bytes = 0
        self._limit = int(MAX_S * self.format[0]) * self.format[1] * self.format[2]

    def add(self, chunk: Event) -> None:
        if _format(chunk) != self.format:
            raise BadSound("an audio-chunk in another format than its audio-start")
        audio = AudioChunk.from_event(chunk).audio
        self._bytes += len(audio)
        if self._bytes > self._limit:
            raise BadSound(f"audio longer than {MAX_S:g} s")
        self._pieces.append(audio)

    def finish(self) -> tuple[np.ndarray, str, int]:
        """(int16 mono samples at SPEAKER_RATE, SHA-256 of the bytes received, milliseconds)."""
        data = b"".join(self._pieces)
        rate, width, channels = self.format
        frame = width * channels
        if len(data) % frame:
            raise BadSound(f"audio that is not a whole number of {frame}-byte frames")
        x = np.frombuffer(data, dtype="<i2").reshape(-1, channels).mean(axis=1)
        samples = np.round(resampled(x, rate)).astype(np.int16)
        return samples, hashlib.sha256(data).hexdigest(), len(data) // frame * 1000 // rate
