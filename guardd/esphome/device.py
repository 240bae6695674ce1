"""What guardd tells Home Assistant about itself over the ESPHome API: made from the config and
the owner's mute alone, never from anything the microphone heard.

The voice assistant features it claims are those guardd keeps the promises of
(aioesphomeapi `VoiceAssistantFeature`; what Home Assistant does with each is in
homeassistant/components/esphome/assist_satellite.py):

- VOICE_ASSISTANT: an Assist satellite entity.
- API_AUDIO: the utterance and the reply travel inside this encrypted link. Without it Home
  Assistant opens a UDP port and the audio crosses the network in clear.
- SPEAKER: Home Assistant streams the reply's speech over the link (16 kHz mono 16-bit, the
  format it is asked for) instead of a URL the device would fetch.
- ANNOUNCE and TIMERS only when the caller plays them (`extra`); never START_CONVERSATION: a run
  Home Assistant starts needs a wake word and a press on the device, so it is not offered.
  Never MULTI_CHANNEL_AUDIO.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import Message

from guardd import __version__
from guardd.esphome.messages import pb

API_VERSION = (1, 14)  # the API level served: voice features as flags (1.10), no capabilities request (1.15)
# aioesphomeapi model.VoiceAssistantFeature (not in api.proto: the bits of a uint32 field)
VOICE_ASSISTANT, SPEAKER, API_AUDIO, TIMERS, ANNOUNCE, START_CONVERSATION = (1, 2, 4, 8, 16, 32)
BASE_FEATURES = VOICE_ASSISTANT | SPEAKER | API_AUDIO
OPTIONAL_FEATURES = TIMERS | ANNOUNCE  # what the caller may add when it plays them
MUTE_KEY = zlib.crc32(b"guardd.mute")  # the mute switch's entity key
MACHINE_ID = Path("/etc/machine-id")


def local_mac(name: str, machine_id: Path = MACHINE_ID) -> str:
    """A stable MAC-like id for Home Assistant's device registry (its unique id for the entry):
    a locally administered unicast address from this machine's id and the satellite's name,
    never the network card's own address."""
    try:
        seed = machine_id.read_bytes().strip()
    except OSError:
        seed = b""
    digest = bytearray(hashlib.sha256(b"guardd esphome id\0" + seed + b"\0" + name.encode()).digest()[:6])
    digest[0] = (digest[0] | 0x02) & 0xFE  # locally administered, unicast
    return ":".join(f"{b:02X}" for b in digest)


@dataclass(frozen=True)
class Identity:
    """The satellite as Home Assistant sees it."""

    name: str  # ESPHome's node name: lowercase letters, digits and hyphens
    mac: str
    wake_words: tuple[str, ...]  # the models' names (a model's file path stays on the device)
    features: int = BASE_FEATURES

    def hello(self) -> Message:
        return pb.HelloResponse(api_version_major=API_VERSION[0], api_version_minor=API_VERSION[1],
                                server_info=f"guardd {__version__}", name=self.name)

    def device_info(self) -> Message:
        return pb.DeviceInfoResponse(
            uses_password=False, name=self.name, friendly_name=self.name, mac_address=self.mac,
            esphome_version=f"guardd {__version__}", model="guardd voice satellite", manufacturer="guardd",
            voice_assistant_feature_flags=self.features, api_encryption_supported=True)

    def mute_entity(self) -> Message:
        return pb.ListEntitiesSwitchResponse(
            object_id="mute", key=MUTE_KEY, name="Mute", icon="mdi:microphone-off",
            entity_category=pb.ENTITY_CATEGORY_CONFIG)

    def voice_configuration(self) -> Message:
        """The wake words guardd listens for, all active; Home Assistant cannot change them (they
        are the owner's config) and guardd downloads no model it offers."""
        words = [pb.VoiceAssistantWakeWord(id=w, wake_word=w.replace("_", " "), trained_languages=["en"])
                 for w in self.wake_words]
        return pb.VoiceAssistantConfigurationResponse(
            available_wake_words=words, active_wake_words=list(self.wake_words),
            max_active_wake_words=len(self.wake_words))
