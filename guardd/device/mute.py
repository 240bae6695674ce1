"""The mute state on disk. Promise 5: software can mute, never unmute; only a physical long press
unmutes. The file says `unmuted` only after such a press; anything else (missing, unreadable,
damaged) reads as muted, so a lost or corrupted state can never turn the microphone on.
"""

from __future__ import annotations

from pathlib import Path

from guardd.durable import read_regular, write_atomically

UNMUTED = "unmuted"
MUTED = "muted"


def mute_path(state_dir: Path) -> Path:
    return state_dir / "mute"


def read_muted(state_dir: Path) -> bool:
    try:
        return read_regular(mute_path(state_dir)).decode("ascii").strip() != UNMUTED
    except (OSError, UnicodeDecodeError):
        return True


def write_muted(state_dir: Path, muted: bool) -> None:
    """Durably (see guardd.durable). Raises OSError."""
    write_atomically(mute_path(state_dir), ((MUTED if muted else UNMUTED) + "\n").encode("ascii"))
