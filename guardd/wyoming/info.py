"""What guardd tells Home Assistant about itself (`info`, the answer to `describe`): made from
the config alone. A satellite with its own wake word and its own VAD, so Home Assistant's
pipeline starts at speech-to-text, and only after a press on the device."""

from __future__ import annotations

from wyoming.event import Event
from wyoming.info import Attribution, Info, Satellite

from guardd import __version__

ATTRIBUTION = Attribution(name="guardd", url="")  # (no public home yet)


def satellite_info(name: str, wake_models: tuple[str, ...]) -> Event:
    """`wake_models` by name (WakeConfig.labels): a model's file path stays on the device."""
    satellite = Satellite(
        name=name, attribution=ATTRIBUTION, installed=True, version=__version__,
        description="guardd: nothing leaves without a press on the device", area=None, has_vad=True,
        active_wake_words=list(wake_models), max_active_wake_words=len(wake_models), supports_trigger=False)
    return Info(satellite=satellite).event()
