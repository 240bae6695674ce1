"""The ESPHome adapter of the Home Assistant rules (guardd/homeassistant/satellite.py): what each
voice assistant message from Home Assistant means (said.py), and the API's answers back. The
rules themselves are not here; only the API's words are. Read from what Home Assistant sends
(homeassistant/components/esphome/assist_satellite.py, `on_pipeline_event`, `_do_announce`,
`_stream_tts_audio`):

- the mute switch (MuteAsked) is Home Assistant's pause: on holds the microphone closed, off lifts
  that hold, never the owner's mute; the switch shows whether the microphone is closed at all;
- a run's events: `stt-end` (what it heard), `tts-start` (the reply's text), `error` (its code),
  `tts-stream-start`, the reply's audio (16 kHz mono 16-bit, as guardd's SPEAKER flag asks) and
  `tts-stream-end` (the reply, played as it comes); when it has played, VoiceAssistantAnnounceFinished
  goes back (Home Assistant waits for it to end the run's state, "also sent for TTS");
- `intent-end` with `continue_conversation` would have the device listen again: refused, as any
  run Home Assistant would start itself (a follow-up needs a new wake word and a new press);
- an announcement (a URL on Home Assistant) is fetched from the peer's own address, one at a time
  (homeassistant/fetch.py: WAV as it comes, MP3 or FLAC decoded), and played; its end
  answered as a reply's is. Its preannounce chime is not fetched (one sound per announcement).
  A conversation to start after it is refused.
- timers are counted by the link and need nothing here.
"""

from __future__ import annotations

from typing import Callable, Protocol

from guardd.esphome.inputs import Announce, MuteAsked, ReplyAudio, RunAnswered, RunEvent, SatelliteOn, TimerNews
from guardd.homeassistant.inputs import PeerFrame, PeerNews, Uploading
from guardd.homeassistant.said import (
    MEANINGS, Counted, FromAfar, Heard, Hold, Ignored, Meaning, ReplyText, RunFailed, SoundChunk, SoundEnd, SoundStart,
    TimerChange, Unplayable,
)
from guardd.homeassistant.satellite import Satellite as Rules, Told
from guardd.journal import Recorder
from guardd.speak.feed import Feed

REPLY_FORMAT = (16000, 2, 1)  # what Home Assistant streams a SPEAKER satellite (tts options it sets)
SWITCH = "its mute switch"


class Peer(Protocol):
    """The ESPHome link, as its adapter uses it."""

    def announce_finished(self, success: bool) -> bool: ...

    def drop(self, connection: int, reason: str) -> None: ...

    def fetch(self, connection: int, url: str) -> int | None: ...


class _Finished:
    """The rules' Peer over the ESPHome link: a sound played (a reply, an announcement) is
    VoiceAssistantAnnounceFinished on the satellite's connection."""

    def __init__(self, link: Peer) -> None:
        self._link = link

    def played(self, connection: int, whole: bool) -> None:
        self._link.announce_finished(whole)

    def drop(self, connection: int, reason: str) -> None:
        self._link.drop(connection, reason)


def _event(event: RunEvent) -> list[Meaning]:
    data = dict(event.data)
    if event.kind == "stt-end":
        return [Heard(data.get("text", ""))]
    if event.kind == "tts-start":
        return [ReplyText(data.get("text", ""))]
    if event.kind == "error":
        return [RunFailed(data.get("code") or "error")]
    if event.kind == "tts-stream-start":
        return [SoundStart(*REPLY_FORMAT)]
    if event.kind == "tts-stream-end":
        return [SoundEnd("tts-stream-end")]
    if event.kind == "intent-end" and data.get("continue_conversation") == "1":
        return [FromAfar("continue_conversation")]
    return [Counted(event.kind)]


class Satellite(Rules):
    """The rules, taking ESPHome messages (esphome/inputs.py) and fetched sounds."""

    def __init__(self, peer: Peer, *, record: Recorder, stream: Callable[[str], Feed]) -> None:
        super().__init__(_Finished(peer), record=record, stream=stream)
        self._link = peer

    def take(self, item: PeerNews | PeerFrame | Uploading, now: float, said: tuple[Meaning, ...] = (),
             what: str = "") -> Told:
        if isinstance(item, PeerFrame):
            meanings, what = self._meanings(item)
            return super().take(item, now, meanings, what)
        return super().take(item, now)

    def _meanings(self, frame: PeerFrame) -> tuple[list[Meaning], str]:
        """What one message (or a piece of a fetched sound) means, and its name for the log."""
        said = frame.event
        if isinstance(said, MEANINGS):  # a fetched sound's pieces, or Ignored
            return [said], getattr(said, "what", "a fetched sound")
        if isinstance(said, MuteAsked):
            return [Hold(said.on, SWITCH)], "mute switch"
        if isinstance(said, ReplyAudio):
            return [SoundChunk(said.pcm)], "reply audio"
        if isinstance(said, RunEvent):
            return _event(said), said.kind
        if isinstance(said, RunAnswered):
            return ([RunFailed("pipeline-not-started")] if said.error else [Counted("run answered")]), "run answered"
        if isinstance(said, Announce):
            return self._announce(frame, said), "announcement"
        if isinstance(said, TimerNews):  # (only its name's length: it is never held, logged or said)
            return [TimerChange(said.event, said.timer_id, said.left_s, said.active, len(said.name))], said.event
        if isinstance(said, SatelliteOn):
            return [Counted(type(said).__name__)], type(said).__name__
        return [Ignored(type(said).__name__, "not a message guardd acts on")], type(said).__name__

    def _announce(self, frame: PeerFrame, said: Announce) -> list[Meaning]:
        after = [FromAfar("start_conversation")] if said.start_conversation else []
        if self._link.fetch(frame.connection, said.url) is None:
            return [Unplayable("announcement", "another announcement is being fetched"), *after]
        return after
