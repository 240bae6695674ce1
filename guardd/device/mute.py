"""The microphone's two holds, and their state on disk. Promise 5: software can mute, never
unmute; only a physical long press unmutes.

- The owner's mute: the long press, `guardd mute`, any local program. The file `mute` says
  `unmuted` only after a long press; anything else (missing, unreadable, damaged) reads as
  muted, so a lost or corrupted state can never turn the microphone on (a fresh install starts
  muted).
- Home Assistant's pause: `pause-satellite` (its mute switch turned on, or Home Assistant
  shutting down, restarting or reloading the satellite), lifted by its own `run-satellite`
  when it runs the satellite again. It never lifts the owner's mute. The file `ha-pause` says
  `paused` while it holds; missing means no pause, anything else present means paused.

The microphone is closed while either holds. The long press lifts both: the owner at the device
overrules everything software did (and a Home Assistant that paused guardd and was then removed
could otherwise never lift its pause).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from guardd.durable import fsync_dir, read_regular, write_atomically
from guardd.journal import Recorder

UNMUTED = "unmuted"
MUTED = "muted"
PAUSED = "paused"
OWNER = "owner"  # the `hold` field of mute and unmute records
HOME_ASSISTANT = "home_assistant"


def mute_path(state_dir: Path) -> Path:
    return state_dir / "mute"


def pause_path(state_dir: Path) -> Path:
    return state_dir / "ha-pause"


def read_muted(state_dir: Path) -> bool:
    try:
        return read_regular(mute_path(state_dir)).decode("ascii").strip() != UNMUTED
    except (OSError, UnicodeDecodeError):
        return True


def write_muted(state_dir: Path, muted: bool) -> None:
    """Durably (see guardd.durable). Raises OSError."""
    write_atomically(mute_path(state_dir), ((MUTED if muted else UNMUTED) + "\n").encode("ascii"))


def read_paused(state_dir: Path) -> bool:
    """Whether Home Assistant's pause holds: the file is there, whatever it says (unreadable or
    damaged, it fails closed; Home Assistant lifts it when it runs the satellite again)."""
    try:
        read_regular(pause_path(state_dir))
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def write_paused(state_dir: Path, paused: bool) -> None:
    """Durably: written, or deleted and the deletion synced. Raises OSError."""
    path = pause_path(state_dir)
    if paused:
        write_atomically(path, (PAUSED + "\n").encode("ascii"))
    elif path.exists() or path.is_symlink():
        path.unlink()
        fsync_dir(state_dir)


class MuteSwitch:
    """Whether the microphone is closed (the daemon closes its stream while it is), and who
    holds it closed: the owner's mute and Home Assistant's pause (see the module's doc). A
    press that began with no request asking and is held `hold_s` toggles once, however long
    it is then held. Closing drops the audio being kept and the pre-roll, and holds even when
    it cannot be logged or saved; lifting fails closed: unlogged or unsaved, the hold stays."""

    def __init__(self, muted: bool, persist: Callable[[bool], None] | None, hold_s: float, *,
                 record: Recorder, drop_audio: Callable[[], object], paused: bool = False,
                 persist_pause: Callable[[bool], None] | None = None) -> None:
        self.owner = muted  # the owner's mute holds
        self.paused = paused  # Home Assistant's pause holds
        self._persist = {OWNER: persist, HOME_ASSISTANT: persist_pause}  # keep a hold across restarts (None: replay)
        self._hold_s = hold_s
        self._record = record
        self._drop_audio = drop_audio
        self._toggled = float("-inf")  # the start time of the press that last toggled

    @property
    def muted(self) -> bool:
        return self.owner or self.paused

    def toggle_due(self, held_since: float | None, now: float) -> bool:
        if held_since is None or held_since <= self._toggled or now - held_since < self._hold_s:
            return False
        self._toggled = held_since
        return True

    def mute(self, source: str) -> str | None:
        """The owner's mute. Why the state could not be saved, or None."""
        return self._hold(OWNER, source)

    def pause(self, source: str) -> str | None:
        """Home Assistant's pause. Why the state could not be saved, or None."""
        return self._hold(HOME_ASSISTANT, source)

    def unmute(self, source: str) -> str | None:
        """The physical long press: lifts the owner's mute and Home Assistant's pause."""
        failures = [self._lift(hold, source) for hold in (OWNER, HOME_ASSISTANT) if self._holds(hold)]
        return next((f for f in failures if f is not None), None)

    def resume(self, source: str) -> str | None:
        """Home Assistant runs the satellite again: its own pause is lifted, nothing else."""
        return self._lift(HOME_ASSISTANT, source) if self.paused else None

    def _holds(self, hold: str) -> bool:
        return self.owner if hold == OWNER else self.paused

    def _set(self, hold: str, on: bool) -> None:
        if hold == OWNER:
            self.owner = on
        else:
            self.paused = on

    def _hold(self, hold: str, source: str) -> str | None:
        if self._holds(hold):
            return None
        self._record("mute", source=source, hold=hold)  # logged or not, closing is the safe direction
        self._set(hold, True)
        self._drop_audio()
        return self._save(hold, True)

    def _lift(self, hold: str, source: str) -> str | None:
        if self._record("unmute", source=source, hold=hold) is None:
            return None
        failure = self._save(hold, False)
        self._set(hold, failure is not None)
        return failure

    def _save(self, hold: str, on: bool) -> str | None:
        persist = self._persist[hold]
        try:
            if persist is not None:
                persist(on)
        except OSError as exc:
            return f"cannot save the {'mute' if hold == OWNER else 'pause'} state: {exc.strerror}"
        return None
