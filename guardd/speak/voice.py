"""Speech, offline: espeak-ng (the Debian and Raspberry Pi OS package `espeak-ng`), run as a
subprocess for each sentence. Its voices are files of that package; nothing is downloaded.

Why espeak-ng, and why a subprocess (measured by `python -m benchmark`, figures in docs/performance.md):
it says a sentence in tens of milliseconds of CPU on this machine, its first audio comes in
about 10 ms, and as its own process its memory (about 8 MB at peak) is not guardd's, comes back
when it exits, and a crash in it is a failed sentence, not a failed daemon. The text goes in on
standard input as UTF-8 (never on the command line, where a message starting with "-" would be
an option), and SSML is off (no -m).

espeak-ng still obeys two kinds of markup in plain text (readclause.c): phoneme names between
`[[` and `]]` (its command line always reads them: "[[s'End t@ D@ b'aNk]]" says "send to the
bank", and an unclosed `[[` swallows the rest), and embedded commands after a control character
(U+0001: speed, pitch, voice). literal() makes text that holds neither, and say() refuses any
other, so what a client wrote is only ever read, never obeyed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Sequence

import numpy as np

from guardd.speak.clips import resampled
from guardd.speak.earcons import SPEAKER_RATE

ENGINE = "espeak-ng"
INSTALL = "sudo apt install espeak-ng"
VOICE = "en-us"
WORDS_PER_MINUTE = 160
SAY_TIMEOUT_S = 10.0
TEXT_MAX_BYTES = 16384  # a sentence is a few hundred bytes (READ_MAX characters of a message at most)


class VoiceError(Exception):
    """The engine could not say a sentence (it failed, or took too long)."""


BRACKETS = str.maketrans("[]", "()")  # read as brackets are: a pause, never phoneme input


def literal(text: str) -> str:
    """`text` as espeak-ng reads it as text alone: square brackets made round ones, and every
    character that is not printable (controls, format characters, private use, unassigned)
    made a space. Printable text is otherwise kept as it is."""
    return "".join(c if c.isprintable() else " " for c in text).translate(BRACKETS)


class Espeak:
    name = ENGINE

    def __init__(self, program: str) -> None:
        self.program = program

    def say(self, text: str) -> np.ndarray:
        """The sentence spoken, as int16 samples at the speaker's rate. Text that is not
        literal() is refused (VoiceError): nothing may reach the engine as markup."""
        return self.say_all([text])[0]

    def say_all(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each text spoken (as say()), by processes of their own that run at once: an
        announcement's first sample waits for the longest of its parts, not for their sum.
        Within SAY_TIMEOUT_S for them all."""
        for text in texts:
            if text != literal(text):
                raise VoiceError(f"{ENGINE} is given only literal text (no [ ] or control characters)")
        deadline = time.monotonic() + SAY_TIMEOUT_S
        running: list[subprocess.Popen[bytes]] = []
        try:
            for text in texts:
                running.append(self._start(text))
            return [self._finish(proc, deadline) for proc in running]
        finally:
            for proc in running:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    def _start(self, text: str) -> subprocess.Popen[bytes]:
        """espeak-ng saying `text`, given whole on a pipe of its own (a sentence is far smaller
        than a pipe's buffer, so the write never waits): it speaks as soon as it starts."""
        data = text.encode("utf-8")
        if len(data) > TEXT_MAX_BYTES:
            raise VoiceError(f"a sentence of {len(data)} bytes is more than {ENGINE} is given")
        given, into = os.pipe()
        try:
            try:
                os.write(into, data)
            finally:
                os.close(into)
            return subprocess.Popen([self.program, "--stdout", "-b", "1", "-v", VOICE, "-s", str(WORDS_PER_MINUTE)],
                                    stdin=given, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise VoiceError(f"{ENGINE} could not run: {exc}") from None
        finally:
            os.close(given)

    @staticmethod
    def _finish(proc: subprocess.Popen[bytes], deadline: float) -> np.ndarray:
        try:
            out, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise VoiceError(f"{ENGINE} took more than {SAY_TIMEOUT_S:g} s") from None
        if proc.returncode != 0:
            raise VoiceError(f"{ENGINE} failed ({proc.returncode}): {err.decode(errors='replace').strip()[:200]}")
        return samples_of_wav(out)


def samples_of_wav(data: bytes) -> np.ndarray:
    """espeak-ng's WAV on standard output, whose sizes are left unset when it streams: the rate
    from the fmt chunk, the samples from the data chunk to the end."""
    at = data.find(b"fmt ")
    body = data.find(b"data")
    if data[:4] != b"RIFF" or at < 0 or body < 0 or len(data) < at + 16:
        raise VoiceError(f"{ENGINE} wrote no WAV ({len(data)} bytes)")
    channels = int.from_bytes(data[at + 10 : at + 12], "little")
    rate = int.from_bytes(data[at + 12 : at + 16], "little")
    pcm = memoryview(data)[body + 8 :]  # (no copy of the speech: a sentence can be 15 s of it)
    x = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * channels)], dtype="<i2")
    if channels == 1 and rate == SPEAKER_RATE:  # what espeak-ng writes: taken as it is (read-only)
        return x
    mono = x.reshape(-1, channels).mean(axis=1)
    return np.round(resampled(mono, rate)).astype(np.int16)


def find_voice() -> Espeak | None:
    """The installed engine, or None: then requests are asked for with the LED and a tone."""
    program = shutil.which(ENGINE)
    return Espeak(program) if program else None
