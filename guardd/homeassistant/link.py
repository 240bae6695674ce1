"""A link to Home Assistant as the daemon, the core and the sender use it, whichever protocol it
speaks (wyoming/link.py, esphome/link.py): listen and stop, the rules' adapter for the core's
thread, the owner's mute for a switch Home Assistant shows, one approved utterance from the
sender's thread, and its state for `guardd status`. Only one link serves Home Assistant at a
time (config/esphome.py), so there is one peer, one mute and one run."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from guardd.homeassistant.satellite import Satellite
from guardd.journal import Recorder
from guardd.speak.feed import Feed


class Link(Protocol):
    destination: str  # the destination name that is Home Assistant over this link

    @property
    def ready(self) -> bool: ...

    @property
    def port(self) -> int | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def satellite(self, *, record: Recorder, stream: Callable[[str], Feed]) -> Satellite:
        """The rules (homeassistant/satellite.py), taking this link's frames, for the core."""
        ...

    def set_muted(self, muted: bool) -> None:
        """Whether the microphone is closed now (the core's truth); never waits."""
        ...

    def send_utterance(self, request_id: str, pcm: bytes, sha256: str, within_s: float) -> tuple[int, str]:
        """One approved utterance, re-hashed as framed, within `within_s`, from the sender's
        thread: (audio bytes written, "" or why it failed)."""
        ...

    def status(self) -> dict[str, Any]: ...
