"""What an authenticated ESPHome peer's message says, as the session reads it (session.py): plain
values, never a protobuf message. They travel to the core as the `event` of the shared PeerFrame
(homeassistant/inputs.py), where the adapter (satellite.py) turns them into the shared meanings.
Messages the session answers itself (hello, device info, entities, ping, configuration) never
reach the core.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardd.homeassistant.said import Ignored


@dataclass(frozen=True)
class SatelliteOn:
    """Home Assistant subscribed to the voice assistant (True) or unsubscribed (False)."""

    on: bool


@dataclass(frozen=True)
class MuteAsked:
    """Home Assistant turned the mute switch on or off. The switch shows only what the core
    says (Link.set_muted); asking is all Home Assistant can do."""

    on: bool


@dataclass(frozen=True)
class RunAnswered:
    """Home Assistant's answer to a run guardd started: it runs the pipeline, or it cannot."""

    error: bool


@dataclass(frozen=True)
class RunEvent:
    """A pipeline event (`run-start`, `stt-end`, `tts-end`, `error`, `run-end`, ...) and its
    data, as Home Assistant sent them (text in it is the peer's: log its hash, never it)."""

    kind: str
    data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ReplyAudio:
    """A piece of the reply's speech: 16 kHz, mono, 16-bit little-endian samples."""

    pcm: bytes


@dataclass(frozen=True)
class Announce:
    """An announcement to play from a URL on Home Assistant (and, after it, a conversation
    Home Assistant would like guardd to start: it needs a wake word and a press)."""

    url: str
    text: str
    preannounce_url: str
    start_conversation: bool


@dataclass(frozen=True)
class TimerNews:
    """`timer-started`, `timer-updated`, `timer-cancelled` or `timer-finished`."""

    event: str
    timer_id: str
    name: str
    total_s: int
    left_s: int
    active: bool


Said = SatelliteOn | MuteAsked | RunAnswered | RunEvent | ReplyAudio | Announce | TimerNews | Ignored
