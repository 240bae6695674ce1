"""The mute state on disk. Promise 5: software can mute, never unmute; only a physical long press
unmutes. The file says `unmuted` only after such a press; anything else (missing, unreadable,
damaged) reads as muted, so a lost or corrupted state can never turn the microphone on.
"""

from __future__ import annotations

import os
from pathlib import Path

UNMUTED = "unmuted"
MUTED = "muted"


def mute_path(state_dir: Path) -> Path:
    return state_dir / "mute"


def read_muted(state_dir: Path) -> bool:
    try:
        return mute_path(state_dir).read_text(encoding="ascii").strip() != UNMUTED
    except (OSError, UnicodeDecodeError):
        return True


def write_muted(state_dir: Path, muted: bool) -> None:
    """Atomically: temp file, fsync, rename, fsync the directory. Raises OSError."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = mute_path(state_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, ((MUTED if muted else UNMUTED) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
