"""Where the player's samples go: the speaker through sounddevice and PortAudio (a device by name
or index, as `guardd devices` lists it), or nowhere (`announce.output: none`)."""

from __future__ import annotations

from typing import Any

from guardd.sounddevices import import_sounddevice, resolve_device
from guardd.speak.earcons import SPEAKER_RATE


class DeviceOutput:
    """The speaker, by name or index as `guardd devices` lists it (None: the default)."""

    def __init__(self, device: str | int | None) -> None:
        self.device = device

    def open(self) -> Any:
        sd: Any = import_sounddevice()
        device = resolve_device(sd, self.device, "output")
        return sd.RawOutputStream(samplerate=SPEAKER_RATE, channels=1, dtype="int16", device=device)


class _Nowhere:
    latency = 0.0

    def __enter__(self) -> "_Nowhere":
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def write(self, samples: bytes) -> None:
        return None

    def abort(self) -> None:
        return None


class NoOutput:
    """`announce.output: none`: sounds take their time, and are written nowhere."""

    def open(self) -> _Nowhere:
        return _Nowhere()
