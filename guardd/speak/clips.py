"""Audio that guardd plays besides its own tones and words: an upload's audio (a WAV, or a kept
utterance's bare samples for Home Assistant), read back for `announce.upload: playback`, as
mono samples at the speaker's rate."""

from __future__ import annotations

import hashlib
import io
import wave
from pathlib import Path

import numpy as np

from guardd.audioformat import PCM_TYPE, SAMPLE_BYTES, SAMPLE_RATE
from guardd.speak.earcons import SPEAKER_RATE


def _open(data: bytes) -> wave.Wave_read | None:
    try:
        w = wave.open(io.BytesIO(data), "rb")
    except (wave.Error, EOFError):
        return None
    if w.getsampwidth() != 2 or w.getnchannels() < 1 or w.getframerate() < 1000:
        return None
    return w


def audio_seconds(data: bytes, content_type: str) -> float | None:
    """How long an upload plays (a 16-bit WAV, or guardd's own bare samples), or None when
    `data` is neither."""
    if content_type == PCM_TYPE:
        return len(data) / (SAMPLE_RATE * SAMPLE_BYTES)
    w = _open(data)
    return None if w is None else w.getnframes() / w.getframerate()


def resampled(x: np.ndarray, rate: int) -> np.ndarray:
    """`x` (float) at `rate`, linearly interpolated to SPEAKER_RATE: for a voice to be heard by
    a person, not for analysis."""
    if rate == SPEAKER_RATE or len(x) == 0:
        return x
    n = int(round(len(x) * SPEAKER_RATE / rate))
    return np.interp(np.arange(n) * rate / SPEAKER_RATE, np.arange(len(x)), x)


def load_upload(path: Path, sha256: str, content_type: str) -> np.ndarray | None:
    """The spooled upload's audio, int16 at SPEAKER_RATE, if it is still the approved bytes
    (its SHA-256) and 16-bit audio (audio_seconds); else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None  # decided and discarded meanwhile
    if hashlib.sha256(data).hexdigest() != sha256:
        return None
    if content_type == PCM_TYPE:
        x = np.frombuffer(data[: len(data) - len(data) % SAMPLE_BYTES], dtype="<i2")
        return np.round(resampled(x.astype(np.float64), SAMPLE_RATE)).astype(np.int16)
    w = _open(data)
    if w is None:
        return None
    x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    mono = x[: len(x) - len(x) % w.getnchannels()].reshape(-1, w.getnchannels()).mean(axis=1)
    return np.round(resampled(mono, w.getframerate())).astype(np.int16)
