"""Where the corpus lives: one cache that the tests, the benchmark and the demo share.

The generated speech (corpus/generate.py) and the real recordings (corpus/realspeech.py) are made
once per machine under the cache directory, `$GUARDD_CORPUS` or `~/.cache/guardd/corpus`, and
found there by every later run, so a fresh clone of the repository reuses them. Making them takes
a lock, so parallel test workers wait for one another instead of writing the same files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from corpus import generate, realspeech


def cache_dir() -> Path:
    if os.environ.get("GUARDD_CORPUS"):
        return Path(os.environ["GUARDD_CORPUS"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "guardd" / "corpus"


def speech_dir() -> Path:
    """The generated speech: positives, negatives, the demo and manifest.json."""
    return cache_dir() / f"speech-{generate.VERSION}"


def make_speech() -> Path:
    """speech_dir(), generated first if it is missing or out of date."""
    directory = speech_dir()
    with _locked(directory):
        if not generate.up_to_date(directory) and generate.main([str(directory)]) != 0:
            raise RuntimeError(f"could not generate the speech fixtures into {directory}")
    return directory


def make_real() -> Path:
    """cache_dir(), with the real recordings fetched into it first if they are missing: what
    realspeech.variants() and the benchmark's --cache take."""
    directory = cache_dir()
    with _locked(directory / "real"):
        realspeech.fetch(directory)
    return directory


class _locked:
    """An exclusive lock beside `directory` for as long as the block runs."""

    def __init__(self, directory: Path) -> None:
        self.path = directory.with_name(directory.name + ".lock")

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
