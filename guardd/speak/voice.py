"""Speech, offline: espeak-ng (the Debian and Raspberry Pi OS package `espeak-ng`), run as a
subprocess for each sentence. Its voices are files of that package; nothing is downloaded.

Why espeak-ng, and why a subprocess (measured by `python -m benchmark`, figures in docs/performance.md):
it says a sentence in tens of milliseconds of CPU on this machine, its first audio comes in
about 10 ms, and as its own process its memory (about 8 MB at peak) is not guardd's, comes back
when it exits, and a crash in it is a failed sentence, not a failed daemon. The text goes in on
standard input as UTF-8 (never on the command line, where a message starting with "-" would be
an option), and SSML is off, so a message is only ever read, never obeyed.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from guardd.speak.clips import resampled
from guardd.speak.earcons import SPEAKER_RATE

ENGINE = "espeak-ng"
INSTALL = "sudo apt install espeak-ng"
VOICE = "en-us"
WORDS_PER_MINUTE = 160
SAY_TIMEOUT_S = 10.0


class VoiceError(Exception):
    """The engine could not say a sentence (it failed, or took too long)."""


class Espeak:
    name = ENGINE

    def __init__(self, program: str) -> None:
        self.program = program

    def say(self, text: str) -> np.ndarray:
        """The sentence spoken, as int16 samples at the speaker's rate."""
        try:
            done = subprocess.run(
                [self.program, "--stdout", "-b", "1", "-v", VOICE, "-s", str(WORDS_PER_MINUTE)],
                input=text.encode("utf-8"), capture_output=True, timeout=SAY_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VoiceError(f"{ENGINE} could not run: {exc}") from None
        if done.returncode != 0:
            raise VoiceError(f"{ENGINE} failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()[:200]}")
        return samples_of_wav(done.stdout)


def samples_of_wav(data: bytes) -> np.ndarray:
    """espeak-ng's WAV on standard output, whose sizes are left unset when it streams: the rate
    from the fmt chunk, the samples from the data chunk to the end."""
    at = data.find(b"fmt ")
    body = data.find(b"data")
    if data[:4] != b"RIFF" or at < 0 or body < 0 or len(data) < at + 16:
        raise VoiceError(f"{ENGINE} wrote no WAV ({len(data)} bytes)")
    channels = int.from_bytes(data[at + 10 : at + 12], "little")
    rate = int.from_bytes(data[at + 12 : at + 16], "little")
    pcm = data[body + 8 :]
    x = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * channels)], dtype="<i2")
    if channels == 1 and rate == SPEAKER_RATE:  # what espeak-ng writes: taken as it is
        return x.copy()
    mono = x.reshape(-1, channels).mean(axis=1)
    return np.round(resampled(mono, rate)).astype(np.int16)


def find_voice() -> Espeak | None:
    """The installed engine, or None: then requests are asked for with the LED and a tone."""
    program = shutil.which(ENGINE)
    return Espeak(program) if program else None
