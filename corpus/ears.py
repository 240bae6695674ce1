"""The ears' evaluation (issue 17): the wake words in every voice this machine has
(corpus/voices.py), under the conditions a kitchen has, split into a tuning half and a
held-out half by speaker and by sentence, so that a rule chosen on one half is judged on
voices, accents and requests it was never chosen on.

Each voice says each wake phrase into a request (a sentence of its half) as said, and under a
rotating share of the conditions: slower and faster, lower and higher (espeak-ng), quiet and
loud, across an echoing room, over noise at 20, 10 and 5 dB SNR, run straight into the request
with no pause, and after other words. Each voice also says near misses and household talk:
negatives in the same voices. Nothing here was chosen by how the models score it.

`make(cache)` writes the files and `manifest.json` once per machine (and per VERSION).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from corpus.speech import SAMPLE_RATE, write_wav
from corpus.texts import HOUSEHOLD_SENTENCES, NEAR_MISS_SENTENCES, WAKE_PHRASES
from corpus.voices import Voice, all_voices

VERSION = "ears-2"
SEED = 20261204

# Requests none of the fixtures use; the first half are the tuning half's, the rest held out.
REQUESTS = (
    "what's on my calendar on friday", "dim the bedroom lights to half",
    "how long will it take to drive to the airport", "add eggs and butter to the shopping list",
    "turn the heating up two degrees", "read me the headlines", "show me the doorbell camera",
    "when does the pharmacy close today", "pause the podcast", "what's nine times seventeen",
    "lock the front door", "remind me to water the plants on sunday",
    "how do you spell necessary", "start the robot vacuum in the hallway",
    "what's the score in the football", "set an alarm for half past six",
    "tell me a joke about penguins", "is the garage door open",
    "convert three cups to millilitres", "play the radio a bit quieter",
)
CONDITIONS = ("slow", "fast", "low", "high", "quiet", "loud", "echo", "snr20", "snr10", "snr5", "no_pause",
              "after_words")
PER_VOICE = 4  # conditions each voice says each wake phrase under, besides "as_said"
LEAD_IN = "so anyway i was telling her about the weekend and"  # before the wake word, for after_words


@dataclass(frozen=True)
class Take:
    file: str
    kind: str  # "positive" or "negative"
    model: str  # the wake model that should wake ("" for a negative)
    voice: str
    engine: str
    speaker: str
    family: str
    half: str
    condition: str
    text: str


def halves(voices: list[Voice]) -> dict[str, str]:
    """Speaker -> "tune" or "held-out": within each engine, speakers in the order of their
    names' SHA-256, alternately, so each half has about as many of every engine."""
    import hashlib

    split: dict[str, str] = {}
    for engine in sorted({v.engine for v in voices}):
        speakers = sorted({v.speaker for v in voices if v.engine == engine},
                          key=lambda s: hashlib.sha256(s.encode()).hexdigest())
        split.update({s: ("tune", "held-out")[i % 2] for i, s in enumerate(speakers)})
    return split


def plan(voices: list[Voice]) -> list[tuple[Take, Voice, dict[str, Any]]]:
    """Every take, with the voice and what to do to it; deterministic."""
    split = halves(voices)
    takes = []
    for i, voice in enumerate(voices):
        half = split[voice.speaker]
        requests = REQUESTS[: len(REQUESTS) // 2] if half == "tune" else REQUESTS[len(REQUESTS) // 2 :]
        chosen = [CONDITIONS[(i * PER_VOICE + k) % len(CONDITIONS)] for k in range(PER_VOICE)]
        if voice.engine != "espeak-ng":  # pitch is espeak-ng's alone
            chosen = [c if c not in ("low", "high") else "echo" if c == "low" else "snr10" for c in chosen]
        for m, (model, phrase) in enumerate(WAKE_PHRASES.items()):
            for j, condition in enumerate(["as_said", *dict.fromkeys(chosen)]):
                request = requests[(i * 3 + m * 5 + j) % len(requests)]
                name = f"{voice.speaker.replace(':', '_')}_{voice.name.split('+')[-1]}_{model}_{condition}.wav"
                take = Take(name.replace("/", "_"), "positive", model, voice.name, voice.engine, voice.speaker,
                            voice.family, half, condition, f"{phrase}, {request}")
                takes.append((take, voice, {"phrase": phrase, "request": request}))
        for k, sentence in enumerate((NEAR_MISS_SENTENCES[i % len(NEAR_MISS_SENTENCES)],
                                      HOUSEHOLD_SENTENCES[(i * 7) % len(HOUSEHOLD_SENTENCES)])):
            name = f"{voice.speaker.replace(':', '_')}_{voice.name.split('+')[-1]}_neg{k}.wav".replace("/", "_")
            take = Take(name, "negative", "", voice.name, voice.engine, voice.speaker, voice.family, half,
                        "as_said", sentence)
            takes.append((take, voice, {"sentence": sentence}))
    return takes


# -- the conditions ------------------------------------------------------------------------------


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise with power falling 3 dB an octave, as a kitchen's fans and traffic."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(f), n)
    return x / (np.sqrt(np.mean(x**2)) or 1.0)


def with_snr(speech: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`speech` over pink noise `snr_db` below the speech's power (measured where it is loud)."""
    loud = speech[np.abs(speech) > 0.05 * np.abs(speech).max()]
    power = float(np.mean(loud**2)) if len(loud) else float(np.mean(speech**2))
    return speech + pink_noise(rng, len(speech)) * np.sqrt(power / 10 ** (snr_db / 10))


def echoed(x: np.ndarray, rng: np.random.Generator, rt60_s: float = 0.5, drr_db: float = 0.0) -> np.ndarray:
    from corpus.realspeech import _room

    return _room(x, rng, rt60_s, drr_db)


def spoken(take: Take, voice: Voice, said: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """The take's audio at 16 kHz, full scale 1.0, with half a second of quiet around it."""
    c = take.condition
    speed = {"slow": 0.8, "fast": 1.25}.get(c, 1.0)
    pitch = {"low": 25, "high": 75}.get(c, 50)
    if take.kind == "negative":
        x = voice.render(said["sentence"], speed, pitch)
    elif c == "no_pause":
        x = voice.render(f"{said['phrase']} {said['request']}", speed, pitch)
    elif c == "after_words":
        x = voice.render(f"{LEAD_IN} {said['phrase']} {said['request']}", speed, pitch)
    else:
        pause = np.zeros(int(0.5 * SAMPLE_RATE))
        x = np.concatenate([voice.render(said["phrase"], speed, pitch), pause,
                            voice.render(said["request"], speed, pitch)])
    peak_db = {"quiet": -30.0, "loud": -3.0}.get(c, -12.0)
    x = x / (np.abs(x).max() or 1.0) * 10 ** (peak_db / 20)
    quiet = np.zeros(int(0.5 * SAMPLE_RATE))
    x = np.concatenate([quiet, x, quiet, quiet])
    if c == "echo":
        x = echoed(x, rng)
    if c.startswith("snr"):
        x = with_snr(x, float(c[3:]), rng)
    x = x + rng.standard_normal(len(x)) * 10 ** (-60 / 20)  # the floor every fixture has
    return np.clip(x, -1.0, 1.0)


def make(cache: Path, voices: list[Voice] | None = None, say: Callable[[str], None] = lambda m: None) -> Path:
    """The evaluation's directory, made once: every take's WAV and manifest.json."""
    voices = all_voices() if voices is None else voices
    engines = sorted({v.engine for v in voices})
    directory = cache / f"{VERSION}-{'-'.join(engines)}-{len(voices)}"
    manifest = directory / "manifest.json"
    if manifest.is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    takes = plan(voices)
    say(f"ears: {len(takes)} takes in {len(voices)} voices ({', '.join(engines)}) into {directory}")

    def write(item: tuple[int, tuple[Take, Voice, dict[str, Any]]]) -> None:
        i, (take, voice, said) = item
        path = directory / take.file
        if not path.is_file():
            write_wav(path, spoken(take, voice, said, np.random.default_rng([SEED, i])))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, enumerate(takes)))
    body = {"version": VERSION, "engines": engines, "takes": [asdict(t) for t, _, _ in takes]}
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(manifest)
    return directory
