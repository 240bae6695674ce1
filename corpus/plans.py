"""What each fixture file holds, and its assembly. Every random choice is made in a plan, before
any audio exists; assembly then lays the rendered speech into noise, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corpus.speech import SAMPLE_RATE, Utterance, noise, seconds, seconds_to_samples
from corpus.texts import (
    COMMA_EVERY, COMMANDS, DEMO_COMMAND, DEMO_SPEED, DEMO_VOICE, HOUSEHOLD_SENTENCES, NEAR_MISS_SENTENCES,
    NEGATIVE_FILE_SECONDS, NEGATIVE_PAUSE_SECONDS, NEGATIVE_SPEEDS, NEGATIVE_TARGET_SECONDS, NEGATIVE_VOICES,
    POSITIVE_COUNT, POSITIVE_SPEEDS, POSITIVE_VOICES, WAKE_PHRASES,
)

TAIL_SECONDS = 1.5  # noise after the command of every positive
SEED = 20261125  # with a per-file number, the noise under each file


@dataclass(frozen=True)
class WakeCommandPlan:
    """A wake phrase, a pause and a command, spoken by one voice at one speed."""

    file: str
    model: str
    wake: Utterance
    command: Utterance
    lead_seconds: float
    pause_seconds: float
    tail_seconds: float
    peak_dbfs: float
    style: str  # "pause" or "comma"


def plan_positives(rng: np.random.Generator) -> list[WakeCommandPlan]:
    plans = []
    models = list(WAKE_PHRASES)
    for i in range(POSITIVE_COUNT):
        model, j = models[i % 2], i // 2  # alternate models; j counts files per model
        voices = POSITIVE_VOICES[model]
        voice = voices[j % len(voices)]
        # Speeds step by 3 of 6 per file and shift each round of voices, so a voice that
        # comes back does so at another speed.
        speed = POSITIVE_SPEEDS[(3 * j + j // len(voices) + i % 2) % len(POSITIVE_SPEEDS)]
        command = COMMANDS[(i * 7) % len(COMMANDS)]
        comma = j % COMMA_EVERY == COMMA_EVERY // 2
        plans.append(
            WakeCommandPlan(
                file=f"pos_{i:03d}.wav",
                model=model,
                wake=Utterance(WAKE_PHRASES[model], voice, speed),
                command=Utterance(command, voice, speed),
                lead_seconds=float(rng.uniform(0.5, 1.0)),
                pause_seconds=float(rng.uniform(0.15, 0.3) if comma else rng.uniform(0.6, 1.0)),
                tail_seconds=TAIL_SECONDS,
                peak_dbfs=float(rng.uniform(-12.0, -3.0)),
                style="comma" if comma else "pause",
            )
        )
    return plans


def plan_demo() -> WakeCommandPlan:
    return WakeCommandPlan(
        file="demo.wav",
        model="alexa",
        wake=Utterance(WAKE_PHRASES["alexa"], DEMO_VOICE, DEMO_SPEED),
        command=Utterance(DEMO_COMMAND, DEMO_VOICE, DEMO_SPEED),
        lead_seconds=1.0,
        pause_seconds=0.8,
        tail_seconds=2.0,
        peak_dbfs=-6.0,
        style="pause",
    )


@dataclass(frozen=True)
class SentencePlan:
    utt: Utterance
    pause_seconds: float  # silence before this sentence
    gain_db: float
    near_miss: bool


def plan_sentence_stream(rng: np.random.Generator, count: int) -> list[SentencePlan]:
    """A long stream of sentences; files are cut from its front until the target is reached.

    Near misses are spread evenly through the stream so every negative file holds some.
    """
    ordinary = list(HOUSEHOLD_SENTENCES)
    near = list(NEAR_MISS_SENTENCES)
    stream: list[SentencePlan] = []
    oi = ni = 0
    for i in range(count):
        if i % len(ordinary) == 0:
            rng.shuffle(ordinary)
        if i % 4 == 3:  # one sentence in four is a near miss
            if ni % len(near) == 0:
                rng.shuffle(near)
            text, is_near = near[ni % len(near)], True
            ni += 1
        else:
            text, is_near = ordinary[oi % len(ordinary)], False
            oi += 1
        voice = NEGATIVE_VOICES[int(rng.integers(len(NEGATIVE_VOICES)))]
        speed = NEGATIVE_SPEEDS[int(rng.integers(len(NEGATIVE_SPEEDS)))]
        stream.append(
            SentencePlan(
                utt=Utterance(text, voice, speed),
                pause_seconds=float(rng.uniform(*NEGATIVE_PAUSE_SECONDS)),
                gain_db=float(rng.uniform(-12.0, -3.0)),
                near_miss=is_near,
            )
        )
    return stream


# ---------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------


def assemble_wake_command(
    plan: WakeCommandPlan, audio: dict[Utterance, np.ndarray], seed: int
) -> tuple[np.ndarray, dict[str, object]]:
    gain = 10.0 ** (plan.peak_dbfs / 20.0)
    wake = audio[plan.wake] * gain
    command = audio[plan.command] * gain
    wake_start = seconds_to_samples(plan.lead_seconds)
    wake_end = wake_start + len(wake)
    command_start = wake_end + seconds_to_samples(plan.pause_seconds)
    command_end = command_start + len(command)
    total = command_end + seconds_to_samples(plan.tail_seconds)
    x = noise(np.random.default_rng([SEED, seed]), total)
    x[wake_start:wake_end] += wake
    x[command_start:command_end] += command
    entry: dict[str, object] = {
        "file": plan.file,
        "wake_phrase": plan.wake.text,
        "model": plan.model,
        "voice": plan.wake.voice,
        "speed": plan.wake.speed,
        "style": plan.style,
        "command": plan.command.text,
        "wake_start": seconds(wake_start),
        "wake_end": seconds(wake_end),
        "command_start": seconds(command_start),
        "command_end": seconds(command_end),
        "duration": seconds(total),
    }
    return x, entry


def pack_negatives(
    stream: list[SentencePlan], audio: dict[Utterance, np.ndarray], rng: np.random.Generator
) -> list[list[SentencePlan]]:
    """Cut the stream into files of NEGATIVE_FILE_SECONDS until NEGATIVE_TARGET_SECONDS."""
    low, high = NEGATIVE_FILE_SECONDS
    files: list[list[SentencePlan]] = []
    total = 0.0
    pos = 0
    while total < NEGATIVE_TARGET_SECONDS:
        target = float(rng.uniform(low + 6.0, high - 6.0))
        current: list[SentencePlan] = []
        length = 0.0
        while length < target:
            if pos >= len(stream):
                raise RuntimeError("sentence stream too short for the negative target")
            item = stream[pos]
            step = item.pause_seconds + len(audio[item.utt]) / SAMPLE_RATE
            if length + step + 1.0 > high:  # +1.0: the closing pause
                break
            current.append(item)
            length += step
            pos += 1
        if length < low:
            raise RuntimeError("a negative file came out shorter than its lower bound")
        files.append(current)
        total += length + 1.0
    return files


def assemble_negative(
    name: str, items: list[SentencePlan], audio: dict[Utterance, np.ndarray], seed: int
) -> tuple[np.ndarray, dict[str, object]]:
    spans: list[tuple[int, int]] = []
    cursor = 0
    for item in items:
        start = cursor + seconds_to_samples(item.pause_seconds)
        spans.append((start, start + len(audio[item.utt])))
        cursor = spans[-1][1]
    total = cursor + SAMPLE_RATE  # one second of noise after the last sentence
    x = noise(np.random.default_rng([SEED, seed]), total)
    for item, (start, end) in zip(items, spans, strict=True):
        x[start:end] += audio[item.utt] * 10.0 ** (item.gain_db / 20.0)
    entry: dict[str, object] = {
        "file": name,
        "duration": seconds(total),
        "voices": sorted({item.utt.voice for item in items}),
        "sentences": len(items),
        "near_misses": [item.utt.text for item in items if item.near_miss],
        "speech": [[seconds(s), seconds(e)] for s, e in spans],
    }
    return x, entry
