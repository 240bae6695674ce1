"""What the ESPHome link hands the core: plain values, never a socket or a protobuf message.

PeerNews says a connection came, was refused (it did not prove the key, or broke a bound before
it did) or ended. PeerFrame carries what an authenticated peer's message means (`said`), marked
with the upload it may answer. Uploading comes before an approved upload's first message.
Messages the session answers itself (hello, device info, entities, ping, configuration) never
reach the core.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeerNews:
    """`connected`, `refused` or `closed`; `more` counts the refusals not reported on their own
    since the last one (the link rations them)."""

    what: str
    peer: str
    reason: str = ""
    more: int = 0


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


@dataclass(frozen=True)
class Ignored:
    """Something Home Assistant asked that guardd does not do (the reason says why)."""

    what: str
    reason: str


Said = SatelliteOn | MuteAsked | RunAnswered | RunEvent | ReplyAudio | Announce | TimerNews | Ignored


@dataclass(frozen=True)
class PeerFrame:
    """What an authenticated peer's message meant; `run` is the request id of the last upload
    on this connection (what the message may be an answer to), None before any."""

    peer: str
    said: Said
    run: str | None = None


@dataclass(frozen=True)
class Uploading:
    """An approved upload is about to be written: the messages that follow may answer it."""

    request_id: str
