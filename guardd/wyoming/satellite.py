"""The Wyoming adapter of the Home Assistant rules (guardd/homeassistant/satellite.py): what each
Wyoming event from Home Assistant means (said.py), and `played` back on the connection a sound
came from. The rules themselves are not here; only the protocol's words are.

- `pause-satellite` is Home Assistant's pause; its `run-satellite` lifts it.
- `run-pipeline`, `detect` and `detection` would start a pipeline from the other side.
- `transcript`, `synthesize` and `error` answer a run; `audio-start`, `audio-chunk` and
  `audio-stop` are a sound (a reply, or an announcement it pushes).
- Timers (`timer-*`) become TimerChange, which the core rings (guardd/timers.py).
"""

from __future__ import annotations

from typing import Callable, Protocol

from guardd.homeassistant.inputs import PeerFrame, PeerNews, Uploading
from guardd.homeassistant.said import (
    TIMER_KINDS, BadAudio, Counted, FromAfar, Heard, Hold, Meaning, ReplyText, RunFailed, SoundChunk, SoundEnd,
    SoundStart, TimerChange,
)
from guardd.homeassistant.satellite import REPLY_WAIT_S, UNANSWERED, Satellite as Rules, Told
from guardd.journal import Recorder
from guardd.speak.feed import Feed
from guardd.wyoming.frames import Event

__all__ = ["REPLY_WAIT_S", "UNANSWERED", "Peer", "Satellite", "Told", "meanings"]

STARTS_FROM_AFAR = frozenset({"run-pipeline", "detect", "detection"})
AUDIO_FORMAT = ("rate", "width", "channels")  # what audio-start and audio-chunk must carry (the package's AudioFormat)
PLAYED = Event("played")  # a sound from the peer finished playing, as the package's snd.Played()


class Peer(Protocol):
    """The Wyoming link, as its adapter uses it: a frame to a connection, a connection dropped."""

    def send(self, connection: int, event: Event) -> bool: ...

    def drop(self, connection: int, reason: str) -> None: ...


def meanings(event: Event) -> list[Meaning]:
    """What one Wyoming event from Home Assistant means to guardd."""
    kind, data = event.type, event.data or {}
    if kind in ("pause-satellite", "run-satellite"):
        return [Hold(kind == "pause-satellite", kind)]
    if kind in STARTS_FROM_AFAR:
        return [FromAfar(kind)]
    if kind == "transcript":
        return [Heard(str(data.get("text") or ""))]
    if kind == "synthesize":
        return [ReplyText(str(data.get("text") or ""))]
    if kind == "error":
        return [RunFailed(str(data.get("code") or "error"))]
    if kind in ("audio-start", "audio-chunk"):
        missing = [key for key in AUDIO_FORMAT if key not in data]
        if missing:
            return [BadAudio(f"{kind}: no {', '.join(missing)}")]
        if kind == "audio-start":
            return [SoundStart(data["rate"], data["width"], data["channels"])]
        return [SoundChunk(event.payload or b"", (data["rate"], data["width"], data["channels"]))]
    if kind == "audio-stop":
        return [SoundEnd("audio-stop")]
    if kind in TIMER_KINDS:
        return [timer_change(event)]
    return [Counted(kind)]


def timer_change(event: Event) -> TimerChange:
    """A timer frame (the `wyoming` package's timer.py: `id`, `total_seconds`, `is_active`,
    `name`) as the core takes it: only the name's length, and a field of the wrong type passed
    on as missing, for the core to refuse."""
    data = event.data or {}
    timer_id, seconds, name = data.get("id"), data.get("total_seconds"), data.get("name")
    whole = isinstance(seconds, int) and not isinstance(seconds, bool)
    return TimerChange(event.type, timer_id if isinstance(timer_id, str) else "", seconds if whole else None,
                       data.get("is_active") is not False, len(name) if isinstance(name, str) else 0)


class _PlayedBack:
    """The rules' Peer over the Wyoming link: a sound played is `played` on its connection."""

    def __init__(self, link: Peer) -> None:
        self._link = link

    def played(self, connection: int, whole: bool) -> None:
        self._link.send(connection, PLAYED)

    def drop(self, connection: int, reason: str) -> None:
        self._link.drop(connection, reason)


class Satellite(Rules):
    """The rules, taking Wyoming frames."""

    def __init__(self, peer: Peer, *, record: Recorder, stream: Callable[[str], Feed]) -> None:
        super().__init__(_PlayedBack(peer), record=record, stream=stream)

    def take(self, item: PeerNews | PeerFrame | Uploading, now: float, said: tuple[Meaning, ...] = (),
             what: str = "") -> Told:
        if isinstance(item, PeerFrame):
            return super().take(item, now, meanings(item.event), item.event.type)
        return super().take(item, now)
