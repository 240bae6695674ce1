"""espeak-ng speech as 16 kHz audio: one Utterance synthesised, resampled from espeak's 22050 Hz
by a Kaiser-windowed sinc written in numpy (no scipy, no sox), and trimmed of its silence by
energy; and the noise floor and WAV writing every fixture shares.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000  # hertz, what guardd and openWakeWord consume
ESPEAK_RATE = 22050  # hertz, what espeak-ng writes
NOISE_DBFS = -60.0  # RMS of the gaussian noise floor under every file
TRIM_FRAME = 160  # samples (10 ms) per energy frame when trimming
TRIM_BELOW_PEAK_DB = 45.0  # frames this far below the segment's loudest frame are silence


@dataclass(frozen=True)
class Utterance:
    """One thing espeak-ng says: the unit that is synthesised, resampled and trimmed."""

    text: str
    voice: str
    speed: int  # words per minute


def synthesize(utt: Utterance, workdir: Path) -> np.ndarray:
    """espeak-ng -> float64 samples at ESPEAK_RATE, full scale 1.0."""
    fd, name = tempfile.mkstemp(suffix=".wav", dir=workdir)
    os.close(fd)
    path = Path(name)
    subprocess.run(
        ["espeak-ng", "-w", str(path), "-v", utt.voice, "-s", str(utt.speed), utt.text],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != ESPEAK_RATE:
                raise RuntimeError(f"espeak-ng wrote an unexpected format: {w.getparams()}")
            data = w.readframes(w.getnframes())
    finally:
        path.unlink()
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0


def _resampling_filters(up: int, down: int, half_taps: int, beta: float) -> np.ndarray:
    """Polyphase bank of Kaiser-windowed sinc filters, one row per output phase.

    Row p holds the weights for input samples k-half_taps+1 .. k+half_taps around an output that
    falls p/up of an input sample after input sample k. The cutoff sits at 90% of the lower
    Nyquist frequency (7.2 kHz for 16 kHz output) so the Kaiser transition band ends before 8 kHz.
    """
    cutoff = 0.9 * min(1.0, up / down)  # as a fraction of the input Nyquist frequency
    taps = np.arange(-half_taps + 1, half_taps + 1, dtype=np.float64)
    phases = np.arange(up, dtype=np.float64) / up
    u = taps[None, :] - phases[:, None]  # distance in input samples from the output instant
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (u / half_taps) ** 2, 0.0, None))) / np.i0(beta)
    bank = cutoff * np.sinc(cutoff * u) * window
    return bank / bank.sum(axis=1, keepdims=True)  # unity gain at DC for every phase


_HALF_TAPS = 32
_BANKS: dict[tuple[int, int], np.ndarray] = {}


def resample(x: np.ndarray, rate: int) -> np.ndarray:
    """Resample `rate` audio to SAMPLE_RATE with a polyphase windowed-sinc bank (one per ratio)."""
    if rate == SAMPLE_RATE:
        return x
    g = math.gcd(SAMPLE_RATE, rate)
    up, down = SAMPLE_RATE // g, rate // g
    if (up, down) not in _BANKS:
        _BANKS[(up, down)] = _resampling_filters(up, down, _HALF_TAPS, beta=8.6)
    bank = _BANKS[(up, down)]
    n_out = (len(x) - 1) * up // down + 1
    padded = np.concatenate([np.zeros(_HALF_TAPS), x, np.zeros(_HALF_TAPS + 1)])
    offsets = np.arange(-_HALF_TAPS + 1, _HALF_TAPS + 1) + _HALF_TAPS
    out = np.empty(n_out)
    chunk = 16384
    for first in range(0, n_out, chunk):
        n = np.arange(first, min(first + chunk, n_out), dtype=np.int64)
        k = n * down // up
        phase = n * down % up
        out[n] = np.einsum("ij,ij->i", padded[k[:, None] + offsets[None, :]], bank[phase])
    return out


def resample_to_16k(x: np.ndarray) -> np.ndarray:
    """Resample ESPEAK_RATE audio to SAMPLE_RATE."""
    return resample(x, ESPEAK_RATE)


def trim_silence(x: np.ndarray) -> np.ndarray:
    """Cut leading and trailing 10 ms frames more than TRIM_BELOW_PEAK_DB below the loudest."""
    frames = len(x) // TRIM_FRAME
    if frames == 0:
        raise RuntimeError("espeak-ng produced no audio")
    rms = np.sqrt(np.mean(x[: frames * TRIM_FRAME].reshape(frames, TRIM_FRAME) ** 2, axis=1))
    loud = np.nonzero(rms > rms.max() * 10.0 ** (-TRIM_BELOW_PEAK_DB / 20.0))[0]
    return x[loud[0] * TRIM_FRAME : (loud[-1] + 1) * TRIM_FRAME]


def render(utt: Utterance, workdir: Path) -> np.ndarray:
    """One utterance as trimmed 16 kHz speech, peak-normalised to 1.0."""
    speech = trim_silence(resample_to_16k(synthesize(utt, workdir)))
    return speech / np.abs(speech).max()


def render_all(utts: set[Utterance]) -> dict[Utterance, np.ndarray]:
    """Run espeak-ng for every distinct utterance, a few processes at a time."""
    ordered = sorted(utts, key=lambda u: (u.text, u.voice, u.speed))
    with tempfile.TemporaryDirectory(prefix="guardd-fixtures-") as tmp:
        workers = min(4, os.cpu_count() or 2)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rendered = list(pool.map(lambda u: render(u, Path(tmp)), ordered))
    return dict(zip(ordered, rendered, strict=True))


def noise(rng: np.random.Generator, samples: int) -> np.ndarray:
    return rng.standard_normal(samples) * 10.0 ** (NOISE_DBFS / 20.0)


def seconds_to_samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def write_wav(path: Path, x: np.ndarray) -> None:
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def seconds(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 6)  # exact to the sample


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True)
    return out.stdout.strip()
