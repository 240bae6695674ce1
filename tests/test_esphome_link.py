"""The ESPHome link as Home Assistant meets it: aioesphomeapi's own APIClient (the client of Home
Assistant's ESPHome integration) connects on loopback with the key, reads what guardd is, watches
the mute switch, subscribes to the voice assistant and takes an approved upload.

In this phase the link is not wired into the core: the test stands in for the core at the seam
the link owns (its inbox of inputs, and its calls: set_muted, upload, announce_finished, end_run).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import numpy as np
import pytest
from aioesphomeapi import (
    VoiceAssistantEventType, VoiceAssistantExternalWakeWord, VoiceAssistantFeature, VoiceAssistantTimerEventType,
)

from harness.esphome import served

from guardd.esphome import link as linkmod
from guardd.esphome.device import ANNOUNCE, BASE_FEATURES, MUTE_KEY, TIMERS
from guardd.esphome.inputs import (
    Announce, Ignored, MuteAsked, PeerFrame, PeerNews, ReplyAudio, RunAnswered, RunEvent, SatelliteOn, TimerNews,
    Uploading,
)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def said(item: Any, kind: type) -> bool:
    return isinstance(item, PeerFrame) and isinstance(item.said, kind)


def speech(seconds: float = 2.0) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    return (np.sin(2 * np.pi * 220 * t) * 6000 * np.sin(2 * np.pi * 3 * t)).astype("<i2").tobytes()


class VoiceHandlers:
    """Home Assistant's side of the voice assistant, as its assist_satellite entity subscribes."""

    def __init__(self, answer: int | None = 0) -> None:
        self.answer = answer
        self.starts: list[tuple[str, int, str | None]] = []
        self.stops: list[bool] = []
        self.audio: list[bytes] = []

    async def start(self, conversation_id: str, flags: int, settings: Any, wake_word: str | None) -> int | None:
        self.starts.append((conversation_id, flags, wake_word))
        return self.answer

    async def stop(self, abort: bool) -> None:
        self.stops.append(abort)

    async def on_audio(self, data: bytes, data2: bytes | None) -> None:
        self.audio.append(data)

    def subscribe(self, client: Any) -> Any:
        return client.subscribe_voice_assistant(handle_start=self.start, handle_stop=self.stop,
                                                handle_audio=self.on_audio)


async def until(condition: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s:g} s")
        await asyncio.sleep(0.01)


async def satellite(s: Any, voice: VoiceHandlers | None = None) -> tuple[Any, VoiceHandlers]:
    """Home Assistant's entry connection with the voice assistant subscribed, as its
    assist_satellite entity does it."""
    client = s.client()
    await client.connect(login=True)
    voice = voice or VoiceHandlers()
    voice.subscribe(client)
    await until(lambda: s.link.ready, "the satellite")
    return client, voice


def upload_from(s: Any, request_id: str, pcm: bytes, sha256: str | None = None) -> Any:
    """link.upload on a thread of its own, as the sender calls it."""
    return asyncio.get_running_loop().run_in_executor(
        None, s.link.upload, request_id, pcm, sha256 or hashlib.sha256(pcm).hexdigest(), 5.0)


def test_home_assistant_connects_with_the_key_and_reads_only_what_guardd_supports():
    with served() as s:
        async def go() -> Any:
            client = s.client()
            await client.connect(login=True)
            info, entities, services = await client.device_info_and_list_entities()
            version = client.api_version
            await client.disconnect()
            return info, entities, services, version

        info, entities, services, version = run(go())
    assert info.name == "kitchen" and not info.uses_password and info.api_encryption_supported
    assert info.mac_address == s.link._identity.mac
    flags = VoiceAssistantFeature(info.voice_assistant_feature_flags_compat(version))
    assert flags == VoiceAssistantFeature.VOICE_ASSISTANT | VoiceAssistantFeature.SPEAKER | VoiceAssistantFeature.API_AUDIO
    assert not flags & VoiceAssistantFeature.START_CONVERSATION  # a run from afar needs a press
    assert [(e.object_id, e.key, e.name) for e in entities] == [("mute", MUTE_KEY, "Mute")]
    assert services == []
    news = s.items()
    assert [n.what for n in news if isinstance(n, PeerNews)] == ["connected", "closed"]
    assert news[-1].reason == "Home Assistant disconnected"


def test_the_mute_switch_tells_the_truth_and_home_assistant_cannot_lift_the_mute():
    with served() as s:
        async def go() -> None:
            client = s.client()
            await client.connect(login=True)
            states: list[Any] = []
            client.subscribe_states(states.append)
            await until(lambda: states, "mute state")
            assert states[-1].state is True  # muted until the core says otherwise (promise 5)
            client.switch_command(MUTE_KEY, False)  # Home Assistant tries to unmute
            await until(lambda: len(states) >= 2, "the answer to the switch command")
            assert all(state.state is True for state in states)  # it stays muted
            s.link.set_muted(False)  # the owner's long press, through the core
            await until(lambda: states[-1].state is False, "the unmuted state")
            client.switch_command(MUTE_KEY, True)  # Home Assistant asks to mute: only asks
            await asyncio.sleep(0.2)
            assert states[-1].state is False
            s.link.set_muted(True)  # the core muted
            await until(lambda: states[-1].state is True, "the muted state")
            await client.disconnect()

        run(go())
    asked = [i.said for i in s.items() if said(i, MuteAsked)]
    assert asked == [MuteAsked(False), MuteAsked(True)]


def test_no_audio_leaves_before_an_upload_and_exactly_the_approved_audio_after():
    pcm = speech(2.0)
    with served() as s:
        async def go() -> tuple[VoiceHandlers, Any]:
            client, voice = await satellite(s)
            await asyncio.sleep(0.5)
            assert voice.starts == [] and voice.audio == []  # nothing heard leaves by itself
            result = await upload_from(s, "r7", pcm)
            await until(lambda: voice.stops, "the end of the audio")
            await client.disconnect()
            return voice, result

        voice, result = run(go())
    assert result == (len(pcm), "")
    assert b"".join(voice.audio) == pcm
    assert voice.starts == [("", 0, None)]  # from speech-to-text; no wake word named, no conversation
    assert voice.stops == [False]  # the end of speech, not an abort
    items = s.items()
    uploading = next(i for i, item in enumerate(items) if isinstance(item, Uploading))
    answered = next(i for i, item in enumerate(items) if said(item, RunAnswered))
    assert uploading < answered and items[answered].run == "r7" and items[answered].said == RunAnswered(False)


def test_an_upload_whose_audio_is_not_the_approved_audio_sends_nothing():
    pcm = speech(1.0)
    with served() as s:
        async def go() -> tuple[VoiceHandlers, Any]:
            client, voice = await satellite(s)
            result = await upload_from(s, "r1", pcm, hashlib.sha256(pcm[:-2]).hexdigest())
            await asyncio.sleep(0.3)
            await client.disconnect()
            return voice, result

        voice, result = run(go())
    assert result[0] == 0 and "not the approved audio" in result[1]
    assert voice.starts == [] and voice.audio == []
    assert not any(isinstance(i, Uploading) for i in s.items())


def test_an_upload_without_a_subscribed_satellite_fails_at_once():
    with served() as s:
        pcm = speech(0.5)
        assert s.link.upload("r1", pcm, hashlib.sha256(pcm).hexdigest(), 5.0) == (
            0, "Home Assistant has not subscribed to the voice assistant")


def test_home_assistant_refusing_the_run_fails_the_upload_before_any_audio():
    pcm = speech(1.0)
    with served() as s:
        async def go() -> tuple[VoiceHandlers, Any]:
            client, voice = await satellite(s, VoiceHandlers(answer=None))  # "could not start a server"
            result = await upload_from(s, "r2", pcm)
            await asyncio.sleep(0.3)
            await client.disconnect()
            return voice, result

        voice, result = run(go())
    assert result == (0, "Home Assistant could not start a pipeline for it")
    assert len(voice.starts) == 1 and voice.audio == []


def test_what_home_assistant_says_about_a_run_reaches_the_core_as_plain_values():
    pcm = speech(0.5)
    with served(features=BASE_FEATURES | TIMERS | ANNOUNCE) as s:
        async def go() -> Any:
            client, _ = await satellite(s)
            await upload_from(s, "r3", pcm)
            client.send_voice_assistant_event(VoiceAssistantEventType.VOICE_ASSISTANT_STT_END, {"text": "lights on"})
            client.send_voice_assistant_event(VoiceAssistantEventType.VOICE_ASSISTANT_TTS_STREAM_START, {})
            client.send_voice_assistant_audio(b"\x01\x00" * 512)
            client.send_voice_assistant_event(VoiceAssistantEventType.VOICE_ASSISTANT_RUN_END, {})
            client.send_voice_assistant_timer_event(
                VoiceAssistantTimerEventType.VOICE_ASSISTANT_TIMER_STARTED, "t1", "tea", 300, 300, True)
            announce = asyncio.create_task(client.send_voice_assistant_announcement_await_response(
                "http://127.0.0.1:8123/api/tts_proxy/x.wav", 5, "Dinner is ready"))
            await asyncio.get_running_loop().run_in_executor(
                None, s.wait_for, lambda i: said(i, Announce), "the announcement", 5)
            assert s.link.announce_finished(True)
            finished = await announce
            await client.disconnect()
            return finished

        finished = run(go())
    assert finished.success is True
    frames = [i for i in s.items() if isinstance(i, PeerFrame)]
    assert [f.said for f in frames if isinstance(f.said, RunEvent)] == [
        RunEvent("stt-end", (("text", "lights on"),)), RunEvent("tts-stream-start"), RunEvent("run-end")]
    assert all(f.run == "r3" for f in frames if isinstance(f.said, (RunEvent, ReplyAudio)))
    assert [f.said for f in frames if isinstance(f.said, ReplyAudio)] == [ReplyAudio(b"\x01\x00" * 512)]
    assert [f.said for f in frames if isinstance(f.said, Announce)] == [
        Announce("http://127.0.0.1:8123/api/tts_proxy/x.wav", "Dinner is ready", "", False)]
    assert [f.said for f in frames if isinstance(f.said, TimerNews)] == [
        TimerNews("timer-started", "t1", "tea", 300, 300, True)]


def test_the_voice_configuration_names_guardds_wake_words_and_home_assistant_cannot_change_them():
    with served() as s:
        async def go() -> Any:
            client = s.client()
            await client.connect(login=True)
            VoiceHandlers().subscribe(client)
            offered = VoiceAssistantExternalWakeWord.from_dict({
                "id": "okay_nabu", "wake_word": "Okay Nabu", "trained_languages": ["en"], "model_type": "micro",
                "model_size": 1000, "model_hash": "00" * 32, "url": "http://127.0.0.1:8123/x.json"})
            config = await client.get_voice_assistant_configuration(5, external_wake_words=[offered])
            await client.set_voice_assistant_configuration(["okay_nabu"])
            again = await client.get_voice_assistant_configuration(5)
            await client.disconnect()
            return config, again

        config, again = run(go())
    assert [w.id for w in config.available_wake_words] == ["alexa", "hey_jarvis"]  # never an offered one
    assert config.active_wake_words == again.active_wake_words == ["alexa", "hey_jarvis"]
    ignored = [i.said for i in s.items() if said(i, Ignored)]
    assert [i.what for i in ignored] == ["a change of wake words"]


def test_a_newer_subscription_takes_the_satellite_from_an_older_connection():
    with served() as s:
        async def go() -> None:
            first, second = s.client(), s.client()
            await first.connect(login=True)
            VoiceHandlers().subscribe(first)
            await until(lambda: s.link.ready, "the first satellite")
            peer = s.link.status()["peer"]
            await second.connect(login=True)
            VoiceHandlers().subscribe(second)
            await until(lambda: s.link.status()["peer"] not in (None, peer), "the second satellite")
            await until(lambda: s.link.status()["sessions"] == 1, "the first connection closed")
            await second.disconnect()
            await first.disconnect()

        run(go())
    assert [i.said for i in s.items() if said(i, SatelliteOn)] == [SatelliteOn(True), SatelliteOn(True)]


def test_extra_connections_close_the_oldest_that_is_not_the_satellite(monkeypatch):
    monkeypatch.setattr(linkmod, "SESSIONS", 2)
    with served() as s:
        async def go() -> None:
            satellite, a, b = s.client(), s.client(), s.client()
            await satellite.connect(login=True)
            VoiceHandlers().subscribe(satellite)
            await until(lambda: s.link.ready, "the satellite")
            await a.connect(login=True)
            await b.connect(login=True)
            await until(lambda: s.link.status()["sessions"] == 2, "the oldest extra closed")
            assert s.link.ready  # the satellite stays
            for client in (b, satellite):
                await client.device_info()  # both still answered
            for client in (satellite, a, b):
                await client.disconnect()

        run(go())


def test_pings_keep_the_link_and_a_silent_peer_is_dropped(monkeypatch):
    monkeypatch.setattr(linkmod, "IDLE_S", 1.5)
    with served() as s:
        async def go() -> None:
            pinging = s.client(keepalive=0.3)
            await pinging.connect(login=True)
            await asyncio.sleep(3.0)  # twice IDLE_S, kept by its pings
            assert s.link.status()["sessions"] == 1
            assert s.link.status()["received"].get("PingRequest", 0) >= 5
            await pinging.disconnect()
            silent = s.client(keepalive=60)
            await silent.connect(login=True)
            await until(lambda: s.link.status()["sessions"] == 0, "the silent peer dropped", 5)
            await silent.disconnect(force=True)

        run(go())
    closed = [i.reason for i in s.items() if isinstance(i, PeerNews) and i.what == "closed"]
    assert closed == ["Home Assistant disconnected", "nothing from the peer for 1.5 s"]


def test_end_run_tells_home_assistant_to_abort_and_odd_reply_audio_drops_the_link():
    with served() as s:
        async def go() -> VoiceHandlers:
            client, voice = await satellite(s)
            assert s.link.end_run()
            await until(lambda: voice.stops, "the abort")
            client.send_voice_assistant_audio(b"\x01\x02\x03")  # not whole 16-bit samples
            await until(lambda: not s.link.ready, "the dropped link")
            await client.disconnect(force=True)
            return voice

        voice = run(go())
    assert voice.stops == [True]
    closed = [i.reason for i in s.items() if isinstance(i, PeerNews) and i.what == "closed"]
    assert closed == ["reply audio that is not whole 16-bit samples"]


@pytest.mark.parametrize("allow, refused", [(("127.0.0.1",), False), (("192.0.2.1",), True)])
def test_allow_admits_only_its_addresses_on_top_of_the_key(allow, refused):
    with served(allow=allow) as s:
        async def go() -> bool:
            client = s.client()
            try:
                await client.connect(login=True)
            except Exception:  # noqa: BLE001 - the refusal, as the client reports it
                return False
            await client.disconnect()
            return True

        assert run(go()) is not refused
    news = [i for i in s.items() if isinstance(i, PeerNews)]
    if refused:
        assert news == [PeerNews("refused", news[0].peer, "not in esphome.allow")]
