"""What guardd tells Home Assistant about itself (`info`, the answer to `describe`): made from
the config alone. A satellite with its own wake word and its own VAD, so Home Assistant's
pipeline starts at speech-to-text, and only after a press on the device. The data is what the
`wyoming` package's info.Info with an info.Satellite puts in it, key for key (no services: only
the satellite); tests/test_wyoming_frames.py compares them."""

from __future__ import annotations

from guardd import __version__
from guardd.wyoming.frames import Event

SERVICES = ("asr", "tts", "handle", "intent", "wake", "mic", "snd")  # none of them here: empty lists
ATTRIBUTION = {"name": "guardd", "url": ""}  # (no public home yet)


def satellite_info(name: str, wake_models: tuple[str, ...]) -> Event:
    """`wake_models` by name (WakeConfig.labels): a model's file path stays on the device."""
    satellite = {
        "name": name, "attribution": dict(ATTRIBUTION), "installed": True,
        "description": "guardd: nothing leaves without a press on the device", "version": __version__,
        "area": None, "has_vad": True, "active_wake_words": list(wake_models),
        "max_active_wake_words": len(wake_models), "supports_trigger": False,
    }
    return Event("info", {**{service: [] for service in SERVICES}, "satellite": satellite})
