"""The mute state on disk. Promise 5: software can mute, never unmute; only a physical long press
unmutes. The file says `unmuted` only after such a press; anything else (missing, unreadable,
damaged) reads as muted, so a lost or corrupted state can never turn the microphone on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from guardd.durable import read_regular, write_atomically
from guardd.journal import Recorder

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


class MuteSwitch:
    """Whether the microphone is closed (the daemon closes its stream while it is). Anyone may
    mute; only the physical long press unmutes: a press that began with no request asking and
    is held `hold_s` toggles once, however long it is then held. Muting drops the audio being
    kept and the pre-roll; it holds even when it cannot be logged or saved, and unmuting fails
    closed: unlogged or unsaved, the microphone stays muted."""

    def __init__(self, muted: bool, persist: Callable[[bool], None] | None, hold_s: float, *,
                 record: Recorder, drop_audio: Callable[[], object]) -> None:
        self.muted = muted
        self._persist = persist  # keeps the state across restarts (None in replay)
        self._hold_s = hold_s
        self._record = record
        self._drop_audio = drop_audio
        self._toggled = float("-inf")  # the start time of the press that last toggled

    def toggle_due(self, held_since: float | None, now: float) -> bool:
        if held_since is None or held_since <= self._toggled or now - held_since < self._hold_s:
            return False
        self._toggled = held_since
        return True

    def mute(self, source: str) -> str | None:
        """Why the state could not be saved, or None."""
        self._record("mute", source=source)  # logged or not, muting is the safe direction
        self.muted = True
        self._drop_audio()
        return self._save(True)

    def unmute(self, source: str) -> str | None:
        """Why the state could not be saved, or None (and still muted if it was not logged)."""
        if self._record("unmute", source=source) is None:
            return None
        failure = self._save(False)
        self.muted = failure is not None
        return failure

    def _save(self, muted: bool) -> str | None:
        try:
            if self._persist is not None:
                self._persist(muted)
        except OSError as exc:
            return f"cannot save the mute state: {exc.strerror}"
        return None
