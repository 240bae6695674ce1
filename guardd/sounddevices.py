"""The sound devices PortAudio sees, through sounddevice: the microphone (`audio.device`) and the
speaker (`audio.output_device`) are each named by an index or a part of a name, as `guardd
devices` lists them.
"""

from __future__ import annotations

from typing import Any

from guardd.errors import AudioError

PORTAUDIO_HINT = "the PortAudio library is missing; install it with: sudo apt install libportaudio2"
KEYS = {"input": "audio.device", "output": "audio.output_device"}


def import_sounddevice() -> Any:
    """sounddevice loads PortAudio at import and raises OSError without it: say what to install."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioError(PORTAUDIO_HINT) from exc
    return sounddevice


def resolve_device(sd: Any, device: str | int | None, kind: str) -> int | None:
    """An input or output device by index or by (part of) its name; None: the default."""
    if device is None:
        return None
    try:
        info = sd.query_devices(device, kind=kind)
    except (ValueError, sd.PortAudioError) as exc:
        raise AudioError(
            f"{KEYS[kind]} {device!r}: {exc}; run `guardd devices` to list the {kind} devices"
        ) from None
    return int(info["index"])


def list_devices(kind: str) -> list[dict[str, Any]]:
    """The devices with at least one channel of `kind` ("input" or "output")."""
    sd = import_sounddevice()
    default = sd.default.device[0 if kind == "input" else 1] if sd.default.device else -1
    channels = f"max_{kind}_channels"
    devices = []
    for info in sd.query_devices():
        if info[channels] > 0:
            devices.append(
                {
                    "index": info["index"],
                    "name": info["name"],
                    "hostapi": sd.query_hostapis(info["hostapi"])["name"],
                    "channels": info[channels],
                    "default_samplerate": info["default_samplerate"],
                    "default": info["index"] == default,
                }
            )
    return devices
