"""Kept utterances on the device: WAV files readable by the daemon's user alone, and the
retention rule (maximum age, maximum total size) that deletes them.

Files are named by the log seq of the record that announced them, so the log and the directory
can be matched one to one and the oldest file is the one with the smallest number.
"""

from __future__ import annotations

import hashlib
import io
import re
import wave
from dataclasses import dataclass
from pathlib import Path

from guardd.audioformat import SAMPLE_RATE
from guardd.config.settings import RetentionConfig
from guardd.durable import write_atomically

_NAME = re.compile(r"^utterance-(\d{8})\.wav$")


def wav_bytes(pcm: bytes) -> bytes:
    """16 kHz mono 16-bit WAV around raw PCM, built in memory so it can be hashed before it is kept."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return buf.getvalue()


@dataclass(frozen=True)
class Recording:
    path: Path
    size: int  # bytes
    mtime: float  # wall seconds


class Recordings:
    def __init__(self, directory: Path, retention: RetentionConfig) -> None:
        self.directory = directory
        self.retention = retention

    def path_for(self, seq: int) -> Path:
        return self.directory / f"utterance-{seq:08d}.wav"

    def keep(self, seq: int, data: bytes) -> Path:
        """Write a WAV atomically with mode 0600 (see guardd.durable)."""
        final = self.path_for(seq)
        write_atomically(final, data)
        return final

    def listing(self) -> list[Recording]:
        """Kept recordings, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            if _NAME.match(p.name):
                st = p.stat()
                found.append(Recording(p, st.st_size, st.st_mtime))
        return sorted(found, key=lambda r: r.path.name)

    def due_for_deletion(self, now_wall: float) -> list[tuple[Recording, str]]:
        """What the retention rule removes now, oldest first, each with its reason."""
        max_age_s = self.retention.max_age_h * 3600
        max_bytes = int(self.retention.max_total_mb * 1_000_000)
        listing = self.listing()
        due: list[tuple[Recording, str]] = []
        total = sum(r.size for r in listing)
        for rec in listing:
            if now_wall - rec.mtime > max_age_s:
                due.append((rec, "max_age"))
                total -= rec.size
            elif total > max_bytes:
                due.append((rec, "max_total"))
                total -= rec.size
        return due

    def stray_temp_files(self) -> list[Path]:
        """Half-written files left by a crash between write and rename; never announced as kept."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("utterance-*.tmp"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
