"""Every offline English voice this machine has, from every engine Debian ships with its voices
inside: espeak-ng (each English voice, alone and with each of its variants), flite (its
built-in voices) and festival (the festvox voices installed). Each renders text as trimmed,
peak-normalised 16 kHz speech. An engine that is not installed contributes no voices; the
evaluation says which engines it had (`sudo apt install flite festival festvox-kallpc16k
festvox-us-slt-hts` adds the others).

A voice's `speaker` is its base voice (the espeak-ng language voice, or the flite or festival
voice): the unit the evaluation splits on, so that no accent of the held-out half is ever heard
while choosing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.speech import resample, trim_silence

# espeak-ng's variants (espeak-ng --voices=variant), by file name: each changes pitch, formants
# and voice quality. A sample across them, so every base voice comes as men, women and others.
ESPEAK_VARIANTS = ("", "f2", "m3", "klatt", "Annie", "m7", "f4", "quincy", "croak", "whisper")
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak-ng", "flite" or "festival"
    name: str  # what the engine takes: "en-gb-scotland+m3", "slt", "voice_kal_diphone"

    @property
    def speaker(self) -> str:
        """The base voice: what the tuning and held-out halves are split on."""
        return f"{self.engine}:{self.name.split('+')[0]}"

    @property
    def family(self) -> str:
        """What the report groups recall by: the engine, and for espeak-ng its accent."""
        return self.speaker if self.engine == "espeak-ng" else self.engine

    def render(self, text: str, speed: float = 1.0, pitch: int = 50) -> np.ndarray:
        """`text` spoken at `speed` (1.0: the engine's own) as 16 kHz speech, peak 1.0;
        `pitch` (0..99, 50 the engine's own) only for espeak-ng."""
        with tempfile.TemporaryDirectory(prefix="guardd-voice-") as tmp:
            out = Path(tmp) / "said.wav"
            subprocess.run(self._command(text, speed, pitch, out), check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, input=text.encode() if self.engine == "festival" else None)
            with wave.open(str(out), "rb") as w:
                rate, data = w.getframerate(), w.readframes(w.getnframes())
                channels = w.getnchannels()
        x = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
        x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
        speech = trim_silence(resample(x, rate))
        return speech / (np.abs(speech).max() or 1.0)

    def _command(self, text: str, speed: float, pitch: int, out: Path) -> list[str]:
        if self.engine == "espeak-ng":
            return ["espeak-ng", "-w", str(out), "-v", self.name, "-s", str(round(165 * speed)), "-p", str(pitch), text]
        if self.engine == "flite":
            return ["flite", "-voice", self.name, "--setf", f"duration_stretch={1 / speed:.3f}", "-t", text,
                    "-o", str(out)]
        stretch = f"(Parameter.set 'Duration_Stretch {1 / speed:.3f})"
        return ["text2wave", "-eval", f"({self.name})", "-eval", stretch, "-o", str(out)]


def espeak_voices() -> list[Voice]:
    if shutil.which("espeak-ng") is None:
        return []
    listed = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True, check=True).stdout
    bases = sorted({m.group(1) for m in re.finditer(r"^\s*\d+\s+(en[\w-]*)\s+\S+\s+\S+\s+gmw/", listed, re.M)})
    return [Voice("espeak-ng", f"{base}+{v}" if v else base) for base in bases for v in ESPEAK_VARIANTS]


def flite_voices() -> list[Voice]:
    return [Voice("flite", v) for v in FLITE_VOICES] if shutil.which("flite") else []


def festival_voices() -> list[Voice]:
    if shutil.which("text2wave") is None:
        return []
    found = sorted(p.name for p in Path("/usr/share/festival/voices").glob("*/*") if p.is_dir())
    return [Voice("festival", f"voice_{name}") for name in found]


def all_voices() -> list[Voice]:
    return espeak_voices() + flite_voices() + festival_voices()
