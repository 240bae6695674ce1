"""Audio that guardd vouches for: an upload is said to be "N seconds of audio", or played back
(`announce.upload: playback`), only when its length comes from the very bytes that will leave.
That is a WAV in guardd's own format (16 kHz, mono, 16-bit PCM) made of exactly two chunks,
`fmt ` and `data`, with the data running to the end of the file and every size adding up; or
guardd's own kept utterance as bare samples (for Home Assistant). Anything else (another rate,
width or channel count, a LIST or any other chunk, sizes that do not add up, a client's bytes
typed audio/L16) is no audio guardd can vouch for, and is described by its size. The parse is
guardd's own and strict: `wave` tolerates what a describer must not (it skips unknown chunks
and believes any rate a header claims).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guardd.audioformat import PCM_TYPE, SAMPLE_BYTES, SAMPLE_RATE
from guardd.speak.earcons import SPEAKER_RATE

WAV_HEADER = 44  # RIFF, WAVE, a 16-byte fmt chunk and the data chunk's header
PCM_FORMAT = (1, 1, SAMPLE_RATE, SAMPLE_RATE * SAMPLE_BYTES, SAMPLE_BYTES, 8 * SAMPLE_BYTES)  # PCM, mono, ...


def wav_samples(data: bytes) -> memoryview | None:
    """The samples of `data` when it is exactly a WAV of guardd's format with only `fmt ` and
    `data`, the data to the end of the file; else None."""
    if len(data) < WAV_HEADER or (len(data) - WAV_HEADER) % SAMPLE_BYTES:
        return None
    riff, riff_size, wave_id, fmt_id, fmt_size = struct.unpack_from("<4sI4s4sI", data, 0)
    fmt = struct.unpack_from("<HHIIHH", data, 20)
    data_id, data_size = struct.unpack_from("<4sI", data, 36)
    if (riff, wave_id, fmt_id, data_id) != (b"RIFF", b"WAVE", b"fmt ", b"data"):
        return None
    if (riff_size, fmt_size, data_size, fmt) != (len(data) - 8, 16, len(data) - WAV_HEADER, PCM_FORMAT):
        return None
    return memoryview(data)[WAV_HEADER:]


def vouched_samples(data: bytes, content_type: str, kept: bool) -> memoryview | None:
    """The 16 kHz mono 16-bit samples of an upload guardd vouches for as audio, or None. `kept`:
    the upload is guardd's own kept utterance (after a wake word), not a client's bytes; only
    then are bare samples (PCM_TYPE) audio."""
    if kept and content_type == PCM_TYPE:
        return memoryview(data) if len(data) % SAMPLE_BYTES == 0 else None
    return wav_samples(data)


def audio_seconds(data: bytes, content_type: str, kept: bool) -> float | None:
    """How long the upload plays, if guardd vouches for it as audio (vouched_samples)."""
    samples = vouched_samples(data, content_type, kept)
    return None if samples is None else len(samples) / (SAMPLE_RATE * SAMPLE_BYTES)


@dataclass(frozen=True)
class Clip:
    """A spooled upload to play back before its sentence, if it is still the approved bytes."""

    path: Path
    sha256: str
    content_type: str
    kept: bool


def resampled(x: np.ndarray, rate: int) -> np.ndarray:
    """`x` (float) at `rate`, linearly interpolated to SPEAKER_RATE: for a voice to be heard by
    a person, not for analysis."""
    if rate == SPEAKER_RATE or len(x) == 0:
        return x
    n = int(round(len(x) * SPEAKER_RATE / rate))
    return np.interp(np.arange(n) * rate / SPEAKER_RATE, np.arange(len(x)), x)


def load_clip(clip: Clip) -> np.ndarray | None:
    """The clip's audio, int16 at SPEAKER_RATE, if the spooled file still holds the approved
    bytes (its SHA-256) and they are audio guardd vouches for; else None."""
    try:
        data = clip.path.read_bytes()
    except OSError:
        return None  # decided and discarded meanwhile
    if hashlib.sha256(data).hexdigest() != clip.sha256:
        return None
    samples = vouched_samples(data, clip.content_type, clip.kept)
    if samples is None:
        return None
    x = np.frombuffer(samples, dtype="<i2").astype(np.float64)
    return np.round(resampled(x, SAMPLE_RATE)).astype(np.int16)
