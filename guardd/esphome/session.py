"""One authenticated API connection, without I/O: each message Home Assistant sends becomes
the messages to answer, what it means for the core (inputs.py), and whether the connection ends.

Answered here, from the config and the owner's mute alone: hello, device info, the entity list
(the mute switch), states, ping, disconnect, the voice assistant's configuration. Every other
message a client may send either means something for the core or is ignored; a message only a
device sends, or one that is not in the API, ends the connection (messages.py).

The mute switch tells the truth and cannot lift the owner's mute: a command only asks (MuteAsked,
for the core), and the answer is always the state as it is (`muted()`), which only the core
changes (Link.set_muted). Audio goes only inside the link: no UDP port is ever opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from google.protobuf.message import Message

from guardd.esphome.device import MUTE_KEY, Identity
from guardd.esphome.inputs import (
    Announce, Ignored, MuteAsked, ReplyAudio, RunAnswered, RunEvent, Said, SatelliteOn, TimerNews,
)
from guardd.esphome.messages import pb

ANYTIME = ("HelloRequest", "PingRequest", "PingResponse", "DisconnectRequest", "DisconnectResponse")
QUIET = frozenset({  # asked by Home Assistant on every connection; guardd has nothing to give
    "AuthenticationRequest", "SubscribeHomeassistantServicesRequest", "SubscribeHomeAssistantStatesRequest",
    "SubscribeLogsRequest", "PingResponse",
})
VOICE = frozenset({"VoiceAssistantResponse", "VoiceAssistantEventResponse", "VoiceAssistantAudio",
                   "VoiceAssistantAnnounceRequest", "VoiceAssistantTimerEventResponse"})


@dataclass
class Reaction:
    answers: list[Message] = field(default_factory=list)
    said: list[Said] = field(default_factory=list)
    end: str | None = None  # why the connection ends (after the answers are written), or None


def _kind(enum_name: str, value: int, prefix: str) -> str:
    """`VOICE_ASSISTANT_STT_END` -> `stt-end`; a value api.proto does not name -> `event-N`."""
    try:
        name = getattr(pb, enum_name).Name(value)
    except ValueError:
        return f"event-{value}"
    return name.removeprefix(prefix).lower().replace("_", "-")


class Session:
    def __init__(self, identity: Identity, muted: Callable[[], bool]) -> None:
        self._identity = identity
        self._muted = muted
        self.greeted = False  # the client sent its hello
        self.wants_states = False  # the client subscribed to entity states
        self.satellite = False  # the client subscribed to the voice assistant, with audio in the link

    def mute_state(self) -> Message:
        return pb.SwitchStateResponse(key=MUTE_KEY, state=self._muted())

    def take(self, message: Message) -> Reaction:
        name = type(message).__name__
        if not self.greeted and name not in ANYTIME:
            return Reaction(end=f"{name} before the hello")
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            return handler(message)
        if name in VOICE:
            return self._voice(name, message)
        return Reaction()  # (QUIET, and the entity types and proxies guardd has none of)

    # -- the connection ------------------------------------------------------------------------

    def _on_HelloRequest(self, message: Message) -> Reaction:
        self.greeted = True
        return Reaction([self._identity.hello()])

    def _on_PingRequest(self, message: Message) -> Reaction:
        return Reaction([pb.PingResponse()])

    def _on_DisconnectRequest(self, message: Message) -> Reaction:
        return Reaction([pb.DisconnectResponse()], end="Home Assistant disconnected")

    def _on_DisconnectResponse(self, message: Message) -> Reaction:
        return Reaction(end="Home Assistant disconnected")

    def _on_DeviceInfoRequest(self, message: Message) -> Reaction:
        return Reaction([self._identity.device_info()])

    def _on_DeviceCapabilitiesRequest(self, message: Message) -> Reaction:
        voice = pb.VoiceAssistantCapabilities(feature_flags=self._identity.features)
        return Reaction([pb.DeviceCapabilitiesResponse(voice_assistant=voice)])

    def _on_NoiseEncryptionSetKeyRequest(self, message: Message) -> Reaction:
        return Reaction([pb.NoiseEncryptionSetKeyResponse(success=False)],
                        [Ignored("a new encryption key", "the key is the owner's file (esphome.encryption_key)")])

    # -- entities ------------------------------------------------------------------------------

    def _on_ListEntitiesRequest(self, message: Message) -> Reaction:
        return Reaction([self._identity.mute_entity(), pb.ListEntitiesDoneResponse()])

    def _on_SubscribeStatesRequest(self, message: Message) -> Reaction:
        self.wants_states = True
        return Reaction([self.mute_state()])

    def _on_SwitchCommandRequest(self, message: Message) -> Reaction:
        if message.key != MUTE_KEY:
            return Reaction(said=[Ignored("a switch command", "guardd has no such switch")])
        return Reaction([self.mute_state()], [MuteAsked(bool(message.state))])

    # -- the voice assistant -------------------------------------------------------------------

    def _on_SubscribeVoiceAssistantRequest(self, message: Message) -> Reaction:
        if not message.subscribe:
            self.satellite = False
            return Reaction(said=[SatelliteOn(False)])
        # (The subscription's flags are not read: aioesphomeapi sends API_AUDIO as 1 << 2 where
        # api.proto names 1. Home Assistant picks the audio's way from the device info's
        # API_AUDIO, and guardd never opens any other.)
        self.satellite = True
        return Reaction(said=[SatelliteOn(True)])

    def _on_VoiceAssistantConfigurationRequest(self, message: Message) -> Reaction:
        return Reaction([self._identity.voice_configuration()])

    def _on_VoiceAssistantSetConfiguration(self, message: Message) -> Reaction:
        return Reaction(said=[Ignored("a change of wake words", "guardd's wake words are the owner's config")])

    def _voice(self, name: str, message: Message) -> Reaction:
        if not self.satellite:
            return Reaction(said=[Ignored(name, "this connection has not subscribed to the voice assistant")])
        if name == "VoiceAssistantResponse":
            return Reaction(said=[RunAnswered(bool(message.error))])
        if name == "VoiceAssistantEventResponse":
            kind = _kind("VoiceAssistantEvent", message.event_type, "VOICE_ASSISTANT_")
            return Reaction(said=[RunEvent(kind, tuple((d.name, d.value) for d in message.data))])
        if name == "VoiceAssistantAudio":
            if len(message.data) % 2:
                return Reaction(end="reply audio that is not whole 16-bit samples")
            return Reaction(said=[ReplyAudio(message.data)] if message.data else [])
        if name == "VoiceAssistantAnnounceRequest":
            return Reaction(said=[Announce(message.media_id, message.text, message.preannounce_media_id,
                                           bool(message.start_conversation))])
        event = _kind("VoiceAssistantTimerEvent", message.event_type, "VOICE_ASSISTANT_")
        return Reaction(said=[TimerNews(event, message.timer_id, message.name, message.total_seconds,
                                        message.seconds_left, bool(message.is_active))])
