"""Audio that guardd plays besides its own tones and words: an upload's WAV, read back for
`announce.upload: playback`, as mono samples at the speaker's rate."""

from __future__ import annotations

import hashlib
import io
import wave
from pathlib import Path

import numpy as np

from guardd.speak.earcons import SPEAKER_RATE


def _open(data: bytes) -> wave.Wave_read | None:
    try:
        w = wave.open(io.BytesIO(data), "rb")
    except (wave.Error, EOFError):
        return None
    if w.getsampwidth() != 2 or w.getnchannels() < 1 or w.getframerate() < 1000:
        return None
    return w


def wav_seconds(data: bytes) -> float | None:
    """How long a 16-bit PCM WAV plays, or None when `data` is not one."""
    w = _open(data)
    return None if w is None else w.getnframes() / w.getframerate()


def resampled(x: np.ndarray, rate: int) -> np.ndarray:
    """`x` (float) at `rate`, linearly interpolated to SPEAKER_RATE: for a voice to be heard by
    a person, not for analysis."""
    if rate == SPEAKER_RATE or len(x) == 0:
        return x
    n = int(round(len(x) * SPEAKER_RATE / rate))
    return np.interp(np.arange(n) * rate / SPEAKER_RATE, np.arange(len(x)), x)


def load_upload(path: Path, sha256: str) -> np.ndarray | None:
    """The spooled upload's audio, int16 at SPEAKER_RATE, if it is still the approved bytes
    (its SHA-256) and a 16-bit WAV; else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None  # decided and discarded meanwhile
    if hashlib.sha256(data).hexdigest() != sha256:
        return None
    w = _open(data)
    if w is None:
        return None
    x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    mono = x[: len(x) - len(x) % w.getnchannels()].reshape(-1, w.getnchannels()).mean(axis=1)
    return np.round(resampled(mono, w.getframerate())).astype(np.int16)
