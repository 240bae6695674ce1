"""Audio made from the corpus for the benchmark: the speech fixtures joined into one recording, a
stretch of room noise and silence, and hours of negative speech made with espeak-ng on demand
and cached.

The speech comes from corpus/generate.py, so negative hours beyond the fixtures' twelve minutes
need the espeak-ng binary. Everything here is deterministic: the same seed gives the same
samples.
"""

from __future__ import annotations

import hashlib
import json
import re
import wave
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from corpus.generate import VERSION as SPEECH_VERSION
from corpus.speech import NOISE_DBFS, Utterance, render_all
from corpus.texts import HOUSEHOLD_SENTENCES, NEAR_MISS_SENTENCES, NEGATIVE_PAUSE_SECONDS, NEGATIVE_SPEEDS, NEGATIVE_VOICES
from guardd.audioformat import SAMPLE_RATE


CHUNK_S = 600.0  # seconds of generated negative speech per cached file
NEGATIVES_VERSION = "guardd-bench-negatives-1"
SEED = 20261126


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: not 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def write_wav(path: Path, x: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.asarray(x, dtype="<i2").tobytes())
    tmp.replace(path)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def load_manifest(fixtures: Path) -> dict[str, Any]:
    path = fixtures / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; make the fixtures with: python -m corpus.generate {fixtures}"
        )
    manifest = json.loads(path.read_text())
    if "positives" not in manifest:
        raise ValueError(f"{path} holds only the demo; run python -m corpus.generate {fixtures}")
    return manifest


def speech_set(fixtures: Path, manifest: dict[str, Any]) -> np.ndarray:
    """Every positive and negative fixture, one after another: the CPU benchmark's audio."""
    entries = manifest["positives"] + manifest["negatives"]
    return np.concatenate([read_wav(fixtures / e["file"]) for e in entries])


def room_noise(seconds: float, seed: int = SEED) -> np.ndarray:
    """A quiet room: a -60 dBFS noise floor, a -58 dBFS brownish rumble, 50 Hz mains hum with
    harmonics at -62 dBFS, one minute in four of digital silence (a device that gates its own
    input), and every 2 minutes a knock or a clatter (-20 dBFS, 0.1 s). Made a minute at a time."""
    minute = 60 * SAMPLE_RATE
    n = int(seconds * SAMPLE_RATE)
    out = np.empty(n, np.int16)
    for m, start in enumerate(range(0, n, minute)):
        rng = np.random.default_rng([seed, 1, m])
        length = min(minute, n - start)
        t = np.arange(start, start + length) / SAMPLE_RATE
        x = rng.standard_normal(length) * 10 ** (-60 / 20)
        brown = np.cumsum(rng.standard_normal(length + 800))
        c = np.cumsum(np.concatenate(([0.0], brown)))
        brown = brown[400:-400] - (c[801:] - c[:-801]) / 801  # no drift below ~20 Hz
        x += brown * 10 ** (-58 / 20) / (brown.std() or 1.0)
        x += sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((50, 100, 150), 1)) * 10 ** (-62 / 20)
        if m % 4 == 3:
            x[:] = 0.0
        if m % 2 == 0 and length > 30 * SAMPLE_RATE:
            knock = int(30 * SAMPLE_RATE)
            k = min(1600, length - knock)
            x[knock : knock + k] += rng.standard_normal(k) * np.exp(-np.arange(k) / 300.0) * 10 ** (-20 / 20)
        out[start : start + length] = to_int16(x)
    return out


def _vocabulary() -> list[str]:
    words = {w for s in (*HOUSEHOLD_SENTENCES, *NEAR_MISS_SENTENCES) for w in re.findall(r"[a-z']+", s.lower())}
    return sorted(w for w in words if "alexa" != w and "jarvis" != w)


def _plan_chunk(index: int) -> list[tuple[Any, float, float]]:
    """(utterance, pause before it, gain dB) for one CHUNK_S file of household talk. Half the
    sentences are the fixtures' own (near misses among them), half are new word orders from
    their vocabulary, so the phonetic contexts go beyond the fixture sentences."""
    rng = np.random.default_rng([SEED, 2, index])
    vocab = _vocabulary()
    sentences = [*HOUSEHOLD_SENTENCES, *NEAR_MISS_SENTENCES]
    plan: list[tuple[Any, float, float]] = []
    length = 0.0
    while length < CHUNK_S - 8.0:
        if rng.random() < 0.5:
            text = sentences[int(rng.integers(len(sentences)))]
        else:
            text = " ".join(vocab[int(i)] for i in rng.integers(len(vocab), size=int(rng.integers(4, 13))))
        voice = NEGATIVE_VOICES[int(rng.integers(len(NEGATIVE_VOICES)))]
        speed = NEGATIVE_SPEEDS[int(rng.integers(len(NEGATIVE_SPEEDS)))]
        pause = float(rng.uniform(*NEGATIVE_PAUSE_SECONDS))
        plan.append((Utterance(text, voice, speed), pause, float(rng.uniform(-12.0, -3.0))))
        length += pause + 0.35 * len(text.split())  # a rough guess; assembly stops at CHUNK_S
    return plan


def _render_chunk(index: int) -> np.ndarray:
    plan = _plan_chunk(index)
    audio = render_all({utt for utt, _, _ in plan})
    rng = np.random.default_rng([SEED, 3, index])
    total = int(CHUNK_S * SAMPLE_RATE)
    x = rng.standard_normal(total) * 10 ** (NOISE_DBFS / 20)
    cursor = 0
    for utt, pause, gain_db in plan:
        start = cursor + int(pause * SAMPLE_RATE)
        speech = audio[utt] * 10 ** (gain_db / 20)
        if start + len(speech) > total - SAMPLE_RATE:
            break
        x[start : start + len(speech)] += speech
        cursor = start + len(speech)
    return to_int16(x)


def _lists_digest() -> str:
    """A short hash of what the generated speech is made of, so a change to the generator's
    sentences or voices makes a new cache rather than mixing old and new files."""
    lists = (HOUSEHOLD_SENTENCES, NEAR_MISS_SENTENCES, NEGATIVE_VOICES,
             NEGATIVE_SPEEDS, NEGATIVE_PAUSE_SECONDS, NOISE_DBFS, SPEECH_VERSION)
    return hashlib.sha256(repr(lists).encode()).hexdigest()[:12]


def negative_speech(cache: Path, hours: float, progress: Any = None) -> Iterator[Path]:
    """Paths of cached CHUNK_S files of generated negative speech, enough for `hours`; files
    missing from the cache are made first (espeak-ng, about a minute of CPU per hour here)."""
    chunks = int(np.ceil(hours * 3600 / CHUNK_S))
    directory = cache / f"{NEGATIVES_VERSION}-{_lists_digest()}"
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(chunks):
        path = directory / f"neg_{i:04d}.wav"
        if not path.is_file():
            if progress:
                progress(f"making negative speech {i + 1}/{chunks} into {directory}")
            write_wav(path, _render_chunk(i))
        yield path
