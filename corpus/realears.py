"""The ears' evaluation on real audio (issue 29): the wake words in the most natural voices this
machine has (the neural ones, corpus/neural.py, and espeak-ng, flite and festival), clean, over
real household noise and over other people's speech (babble made from real recordings of the
same half) at 20, 10 and 5 dB, and across simulated rooms (corpus/rooms.py); near misses in the
same voices; all split into a tuning part and a held-out part by speaker, noise file, room and
babble source. Negatives (false wakes an hour) are the real recordings themselves
(corpus/realaudio.py), split by source.

`make(cache)` writes every take's WAV and manifest.json once per machine (and per VERSION).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from corpus import neural, realaudio, rooms
from corpus.ears import REQUESTS, halves
from corpus.speech import SAMPLE_RATE, write_wav
from corpus.voices import Voice, all_voices

VERSION = "realears-1"
SEED = 20261206
PHRASES = {"alexa": "alexa", "hey_jarvis": "hey jarvis"}
CONDITIONS = ("clean", "noise20", "noise10", "noise5", "babble20", "babble10", "babble5", "room",
              "room_babble10")
NEAR_CONDITIONS = ("clean", "babble10")
NEAR_MISSES = {  # said where the model's wake word might be heard
    "alexa": ("Alex.", "Alex, can you pass the salt?", "Alexander is coming over after school.",
              "The election results are out.", "Alaska is cold this time of year.", "Alexis called this morning.",
              "I'd like a Lexus one day."),
    "hey_jarvis": ("Jarvis.", "Jarvis, can you hear me?", "Hey Travis, did you see the election results?",
                   "Hey Mavis, how are you keeping?", "Hey chatterbox, be quiet for a minute.",
                   "Hey Marvin, the taxi is here.", "Jarvis is coming for dinner."),
}
# Kokoro's speakers by half; a blend of one of each is left out (it would be on both sides).
KOKORO_HELD_OUT = frozenset({"jf_nezumi", "jm_kumo"})
REQUESTS_PER_NEURAL = 3
# espeak-ng's variants heard here (of corpus/voices.py's ten, for every English base voice):
# the synthetic voices come second to the neural ones, and every take costs scoring time.
ESPEAK_VARIANTS = ("", "f2", "m3", "klatt")


def classic_voices() -> list[Voice]:
    return [v for v in all_voices()
            if v.engine != "espeak-ng" or (v.name.split("+")[1] if "+" in v.name else "") in ESPEAK_VARIANTS]


@dataclass(frozen=True)
class Take:
    file: str
    kind: str  # "positive" or "near_miss"
    model: str  # the wake model this take is for (its wake word, or its near miss)
    voice: str
    engine: str  # "piper", "kokoro", "espeak-ng", "flite", "festival"
    half: str
    condition: str
    text: str


def neural_half(voice: neural.NeuralVoice) -> str | None:
    if voice.engine == "piper":
        return "held-out"  # the one native English neural voice: the headline figure, never chosen on
    held = voice.bases & KOKORO_HELD_OUT
    return "held-out" if held == voice.bases else "tune" if not held else None


def plan(neural_voices: list[neural.NeuralVoice], classic: list[Voice]) -> list[tuple[Take, Any]]:
    """Every take with its voice; deterministic. Neural voices say each wake phrase into
    REQUESTS_PER_NEURAL requests of their half, a classic voice into one; every voice says
    every near miss of each model."""
    split = halves(classic)
    speakers: list[tuple[str, str, str, Any]] = []  # (name, engine, half, voice)
    for v in neural_voices:
        half = neural_half(v)
        if half is not None:
            speakers.append((f"{v.name}@{v.speed:g}", v.engine, half, v))
    speakers += [(v.name, v.engine, split[v.speaker], v) for v in classic]
    takes = []
    for i, (name, engine, half, voice) in enumerate(speakers):
        requests = REQUESTS[: len(REQUESTS) // 2] if half == "tune" else REQUESTS[len(REQUESTS) // 2:]
        count = REQUESTS_PER_NEURAL if engine in ("piper", "kokoro") else 1
        safe = name.replace(":", "_").replace("+", "-").replace("/", "_").replace("@", "_")
        for m, (model, phrase) in enumerate(PHRASES.items()):
            for j in range(count):
                text = f"{phrase}, {requests[(i * 3 + m * 5 + j) % len(requests)]}"
                for c in CONDITIONS:
                    takes.append((Take(f"{safe}_{model}_{j}_{c}.wav", "positive", model, name, engine, half, c,
                                       text), voice))
            for j, text in enumerate(NEAR_MISSES[model]):
                for c in NEAR_CONDITIONS if engine in ("piper", "kokoro") else NEAR_CONDITIONS[:1]:
                    takes.append((Take(f"{safe}_{model}_near{j}_{c}.wav", "near_miss", model, name, engine, half,
                                       c, text), voice))
    return takes


# -- mixing ---------------------------------------------------------------------------------------


def active_power(x: np.ndarray) -> float:
    """Mean power over the 10 ms frames within 30 dB of the loudest: speech's level, not its
    pauses' (what "SNR" means here, as ITU-T P.56's active level roughly does)."""
    n = len(x) // 160
    energy = np.mean(x[: n * 160].reshape(n, 160) ** 2, axis=1)
    active = energy[energy >= energy.max() * 10 ** (-30 / 10)]
    return float(active.mean()) if len(active) else 0.0


def mix_at(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`speech` plus `noise` (as long) scaled so that speech's active power over the noise's
    mean power is `snr_db`."""
    noise_power = float(np.mean(noise**2)) or 1e-12
    return speech + noise * np.sqrt(active_power(speech) / noise_power / 10 ** (snr_db / 10))


def stretch(rng: np.random.Generator, pool: list[np.ndarray], n: int) -> np.ndarray:
    """`n` samples of recordings from `pool` one after another from a random start, each at
    unit RMS (a person talking on, or a noise going on)."""
    parts: list[np.ndarray] = []
    length = start = 0
    while length - start < n:
        x = pool[int(rng.integers(len(pool)))]
        parts.append(x / (np.sqrt(np.mean(x**2)) or 1.0))
        length += len(x)
        if len(parts) == 1:
            start = int(rng.integers(0, len(x)))  # into the first: streams of one pool never line up
    return np.concatenate(parts)[start:start + n]


def babble(rng: np.random.Generator, speech: list[np.ndarray], n: int, talkers: int = 3) -> np.ndarray:
    """Other people talking at once: `talkers` streams of real speech, summed."""
    return sum((stretch(rng, speech, n) for _ in range(talkers)), np.zeros(n))


@dataclass
class Backgrounds:
    speech: list[np.ndarray]  # real speech of the half, float
    noise: list[np.ndarray]  # household noise of the half
    rooms: np.ndarray  # impulse responses of the half


def condition(x: np.ndarray, c: str, bg: Backgrounds, rng: np.random.Generator) -> np.ndarray:
    """The take `x` (peak -12 dBFS with quiet around it) under condition `c`."""
    if c.startswith("room"):
        x = rooms.in_room(x, bg.rooms[int(rng.integers(len(bg.rooms)))])
        x = x / (np.abs(x).max() or 1.0) * 10 ** (-12 / 20)
        c = c.removeprefix("room").lstrip("_") or "clean"
    if c.startswith("noise"):
        x = mix_at(x, stretch(rng, bg.noise, len(x)), float(c[5:]))
    elif c.startswith("babble"):
        x = mix_at(x, babble(rng, bg.speech, len(x)), float(c[6:]))
    return x + rng.standard_normal(len(x)) * 10 ** (-60 / 20)


def spoken(audio: np.ndarray) -> np.ndarray:
    quiet = np.zeros(int(0.7 * SAMPLE_RATE))
    return np.concatenate([quiet, audio / (np.abs(audio).max() or 1.0) * 10 ** (-12 / 20), quiet, quiet])


def backgrounds(cache: Path, recs: list[realaudio.Recording], half: str) -> Backgrounds:
    rng = np.random.default_rng([SEED, half == "tune"])
    speech = [r for r in recs if r.kind == "speech" and r.half == half]
    chosen = [speech[i] for i in sorted(rng.choice(len(speech), size=min(600, len(speech)), replace=False))]
    as_float = lambda r: realaudio.read(r.path).astype(np.float64) / 32768.0  # noqa: E731
    irs = rooms.impulse_responses(cache, lambda: neural.venv(cache))
    return Backgrounds([as_float(r) for r in chosen], [as_float(r) for r in recs if r.kind == "noise" and r.half == half],
                       irs[0::2] if half == "tune" else irs[1::2])


def make(cache: Path, say: Callable[[str], None] = lambda m: None) -> Path:
    """The evaluation's directory, made once: every take's WAV and manifest.json."""
    classic = classic_voices()
    engines = sorted({v.engine for v in classic})
    directory = cache / f"{VERSION}-{'-'.join(engines)}-{len(classic)}"
    manifest = directory / "manifest.json"
    if manifest.is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    recs = realaudio.recordings(realaudio.fetch(cache, say))
    takes = plan(neural.voices(), classic)
    say(f"ears: {len(takes)} takes into {directory}")
    neural_wanted = sorted({(t.text, v) for t, v in takes if isinstance(v, neural.NeuralVoice)},
                           key=lambda tv: (tv[1].name, tv[1].speed, tv[0]))
    rendered: dict[Any, np.ndarray] = dict(neural.render_all(cache, neural_wanted, say))
    for half in ("tune", "held-out"):
        bg = backgrounds(cache, recs, half)
        for i, (take, voice) in enumerate(takes):
            if take.half != half or (directory / take.file).is_file():
                continue
            key = (take.text, voice)
            if key not in rendered:
                rendered[key] = voice.render(take.text)
            seed = int(hashlib.sha256(take.file.encode()).hexdigest()[:8], 16)
            x = condition(spoken(rendered[key]), take.condition, bg, np.random.default_rng([SEED, seed]))
            write_wav(directory / take.file, np.clip(x, -1.0, 1.0))
    body = {"version": VERSION, "engines": engines, "takes": [asdict(t) for t, _ in takes]}
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(manifest)
    return directory
