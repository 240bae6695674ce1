"""What a Home Assistant frame means to guardd, whichever protocol carried it: each adapter
(wyoming/satellite.py, esphome/satellite.py) turns its peer's frames into these, and the rules
(satellite.py) act on them alone. Text in them is the peer's: it is logged as a hash and a
length, never as it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hold:
    """Home Assistant's pause (True: its mute switch on, or it shutting down) or its lifting
    (False). Never the owner's mute: only the long press on the device lifts that. `by` names
    how it came, for the log ("pause-satellite", "its mute switch")."""

    on: bool
    by: str = ""


@dataclass(frozen=True)
class FromAfar:
    """Home Assistant would start a pipeline run (or a conversation) itself: refused, since a run
    starts only with a wake word and a press on the device."""

    what: str


@dataclass(frozen=True)
class Heard:
    """What Home Assistant's speech-to-text heard in the upload."""

    text: str


@dataclass(frozen=True)
class ReplyText:
    """The text its reply's speech says."""

    text: str


@dataclass(frozen=True)
class RunFailed:
    """Home Assistant ended the run with an error (its code; its text is not logged)."""

    code: str


@dataclass(frozen=True)
class SoundStart:
    """A sound begins: its format as the peer said it (checked by sound.py)."""

    rate: Any
    width: Any
    channels: Any


@dataclass(frozen=True)
class SoundChunk:
    """A piece of the sound, in the format of its start (`format`, when the protocol repeats it
    in each piece, must match it)."""

    audio: bytes
    format: tuple[Any, Any, Any] | None = None


@dataclass(frozen=True)
class SoundEnd:
    """The sound has all come (`what`: the protocol's name for its end, for messages)."""

    what: str = "the sound's end"


@dataclass(frozen=True)
class BadAudio:
    """Audio the protocol itself could not read: the sound is cut and its connection dropped."""

    reason: str


@dataclass(frozen=True)
class Unplayable:
    """A sound Home Assistant offered that guardd will not play (a format it does not play, a
    URL it does not fetch): logged, and the peer told at once that it did not play."""

    what: str
    reason: str


@dataclass(frozen=True)
class Ignored:
    """Something Home Assistant asked that guardd does not do (the reason says why)."""

    what: str
    reason: str


TIMER_KINDS = ("timer-started", "timer-updated", "timer-cancelled", "timer-finished")


@dataclass(frozen=True)
class TimerChange:
    """What a link said of one of Home Assistant's timers (Wyoming's timer frames, ESPHome's
    VoiceAssistantTimerEventResponse): `kind` is one of TIMER_KINDS; `seconds` (started,
    updated) the seconds left when it was said, None when the peer sent no whole number;
    `active` False while Home Assistant has it paused; `name_chars` the length of its name."""

    kind: str
    timer_id: str
    seconds: int | None = None
    active: bool = True
    name_chars: int = 0


@dataclass(frozen=True)
class Counted:
    """A frame that needs nothing of the core (counted by the link)."""

    what: str


Meaning = (Hold | FromAfar | Heard | ReplyText | RunFailed | SoundStart | SoundChunk | SoundEnd | BadAudio
           | Unplayable | Ignored | TimerChange | Counted)
MEANINGS = (Hold, FromAfar, Heard, ReplyText, RunFailed, SoundStart, SoundChunk, SoundEnd, BadAudio, Unplayable,
            Ignored, TimerChange, Counted)
