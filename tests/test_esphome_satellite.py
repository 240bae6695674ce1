"""The encrypted link end to end: `guardd run` over ALSA (the file plugin as microphone and
speaker) with `esphome:` set, and Home Assistant played by aioesphomeapi's own APIClient doing
what Home Assistant Core 2026.11.0's ESPHome integration does with a voice satellite
(harness/esphome_ha.py). scripts/ha_check.py --esphome checks the same against the real one.

The promises: Home Assistant connects only with the key, reads guardd's device info and its mute
switch, and gets no audio before a press; after it, exactly the approved audio, as a voice
assistant run; its reply plays on the speaker and the run's end goes back; an announcement is
fetched from Home Assistant's own address only, played and answered; a run Home Assistant would
start itself gets nothing; its mute switch tells the truth and cannot lift the owner's mute.
Hostile peers against the running daemon: test_esphome_daemon_hostile.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import threading
import time
import wave
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from aioesphomeapi import VoiceAssistantFeature as F

from conftest import silent_wav
from harness import Daemon, heard, write_config
from harness.esphome_ha import Answer, EsphomeHomeAssistant
from harness.home_assistant import free_port, tone
from test_homeassistant_fetch import encoded
from test_satellite import contains, kept_pcm

from guardd.esphome.keys import new_key
from guardd.speak.earcons import SPEAKER_RATE
from guardd.speak.sentence import seconds_of_audio
from guardd.speak.voice import find_voice

VOLUME = 0.7
needs_voice = pytest.mark.skipif(find_voice() is None, reason="espeak-ng is not installed (scripts/setup.sh installs it)")


def encrypted(tmp_path: Path, wav: Path, *, played: Path | None = None, unmuted: bool = True,
              allow: tuple[str, ...] = ()) -> tuple[Daemon, int, str]:
    port, key = free_port(), new_key()
    key_file = tmp_path / "esphome.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    config = write_config(tmp_path, unmuted=unmuted, audio={"queue_s": 120}, after_wake={"upload_to": "esphome"},
                          announce={"output": "device" if played else "none", "volume": VOLUME},
                          esphome={"listen": f"127.0.0.1:{port}", "name": "kitchen", "allow": list(allow),
                                   "encryption_key": {"file": str(key_file)}})
    return Daemon(tmp_path, config, wav, played=played), port, key


@contextlib.contextmanager
def connected(tmp_path: Path, wav: Path, answer: Answer | None = Answer(), **kwargs) -> Iterator[
        tuple[Daemon, EsphomeHomeAssistant]]:
    d, port, key = encrypted(tmp_path, wav, **kwargs)
    ha = EsphomeHomeAssistant(port, key, answer=answer)
    try:
        ha.connect()
        d.wait_until(lambda: d.call({"call": "status"})["esphome"]["running"], "Home Assistant subscribed")
        yield d, ha
    finally:
        try:
            ha.close()
        finally:
            assert d.stop() == 0


def at_volume(samples: np.ndarray) -> np.ndarray:
    return np.round(samples.astype(np.float32) * np.float32(VOLUME)).astype(np.int16)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


@contextlib.contextmanager
def serving(files: dict[str, bytes], host: str = "127.0.0.1") -> Iterator[tuple[int, list[str]]]:
    """A real HTTP server on loopback, as Home Assistant's own (its TTS proxy): the port, and the
    paths asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            asked.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg" if body[:3] == b"ID3" else "audio/x-wav")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], asked
    finally:
        server.shutdown()
        server.server_close()


# -- what Home Assistant learns --------------------------------------------------------------


def test_home_assistant_with_the_key_reads_the_satellite_and_its_mute_switch(tmp_path):
    with connected(tmp_path, silent_wav(tmp_path / "silence.wav")) as (d, ha):
        info = ha.device_info
        assert info.name == "kitchen" and info.api_encryption_supported and not info.uses_password
        flags = info.voice_assistant_feature_flags
        assert flags & F.VOICE_ASSISTANT and flags & F.API_AUDIO and flags & F.SPEAKER and flags & F.ANNOUNCE
        assert flags & F.TIMERS
        assert not flags & F.START_CONVERSATION  # a run Home Assistant starts needs a wake and a press
        [switch] = ha.entities
        assert switch.object_id == "mute"
        d.wait_until(lambda: ha.seen.mute_states[-1:] == [False], "the mute switch's state")
        [connected_record] = [r for r in d.records("peer") if r["event"] == "connected"]
        assert connected_record["peer"].startswith("127.0.0.1:")


# -- the gate ----------------------------------------------------------------------------------


@needs_voice
def test_the_kept_utterance_goes_to_home_assistant_only_after_a_press_and_its_reply_is_played(tmp_path, manifest):
    played = tmp_path / "played.raw"
    with connected(tmp_path, manifest["dir"] / manifest["demo"]["file"], played=played) as (d, ha):
        d.wait_announced()
        [request] = d.records("request")
        [kept] = d.records("utterance")
        pcm = kept_pcm(tmp_path, kept)
        assert request["destination"] == "esphome" and request["bytes"] == len(pcm)
        assert f"Send to Home Assistant: {seconds_of_audio(len(pcm) / 32000)}. Press the button" in d.said()
        time.sleep(1.0)  # the LED asks, the speaker has said it: still no run and no audio
        assert ha.seen.starts == [] and ha.seen.audio == []

        d.press()
        sent = d.wait_for_record("sent")
        assert sent["delivered"] == 1 and sent["bytes"] == len(pcm)
        d.wait_until(lambda: ha.seen.stops == [False], "the run's end of audio at Home Assistant")
        [(conversation, flags, wake_word)] = ha.seen.starts
        assert flags == 0 and not wake_word  # from speech-to-text: no wake word stage, none named
        assert ha.uploaded() == pcm  # exactly the kept utterance ...
        assert hashlib.sha256(ha.uploaded()).hexdigest() == request["sha256"] == d.records("send")[0]["sha256"]
        assert all(len(a) == 1024 for a in ha.seen.audio[:-1])  # ... in 512-sample messages

        # The reply is logged as hashes and lengths, played, and its end goes back.
        d.wait_until(lambda: ha.seen.finished == [True], "the reply's announce-finished", 30)
        answer = Answer()
        [transcript] = d.records("transcript")
        assert transcript["sha256"] == hashlib.sha256(answer.transcript.encode()).hexdigest()
        [reply] = d.records("reply")
        assert (reply["sha256"], reply["chars"]) == (hashlib.sha256(answer.text.encode()).hexdigest(), len(answer.text))
        [ended] = d.records("sound_end")
        assert ended["sound"] == f"{request['id']}-reply" and ended["audio_ms"] == 600
        assert ended["audio_sha256"] == hashlib.sha256(tone(0.6, rate=16000).tobytes()).hexdigest()
        [pipeline] = d.records("pipeline")
        assert (pipeline["id"], pipeline["result"]) == (request["id"], "replied")
        reply_at_speaker = np.round(np.interp(np.arange(int(0.6 * SPEAKER_RATE)) * 16000 / SPEAKER_RATE,
                                              np.arange(len(tone(0.6, rate=16000))), tone(0.6, rate=16000)))
        assert len(heard(played, len(reply_at_speaker) + 1)) > len(reply_at_speaker)
        log_text = "".join(p.read_text() for p in (tmp_path / "state" / "log").glob("segment-*"))
        assert answer.transcript not in log_text and answer.text not in log_text
        status = d.call({"call": "status"})["esphome"]
        assert status["sent"]["VoiceAssistantAudio"] == len(ha.seen.audio) + 1  # and the one that ends it
        assert status["sent"]["VoiceAssistantAnnounceFinished"] == 1


@needs_voice
def test_a_run_that_home_assistant_ends_with_an_error_is_told_as_not_understood(tmp_path, manifest):
    with connected(tmp_path, manifest["dir"] / manifest["demo"]["file"],
                   answer=Answer(error="stt-no-text-recognized")) as (d, ha):
        d.wait_announced()
        d.press()
        ended = d.wait_for_record("pipeline")
        assert (ended["result"], ended["code"]) == ("error", "stt-no-text-recognized")
        d.wait_until(lambda: "did not understand it (stt-no-text-recognized)" in d.said(), "the owner told")


def test_a_conversation_home_assistant_would_start_gets_no_audio(tmp_path):
    with connected(tmp_path, silent_wav(tmp_path / "silence.wav")) as (d, ha):
        with serving({"/hello.wav": wav_bytes(tone(0.3, rate=16000), 16000)}) as (port, _):
            ha.announce(f"http://127.0.0.1:{port}/hello.wav", start_conversation=True)
        ignored = d.wait_for_record("peer_ignored")
        assert ignored["frame"] == "start_conversation" and "press" in ignored["reason"]
        time.sleep(1.0)
        assert ha.seen.starts == [] and ha.seen.audio == [] and not d.records("request")


# -- announcements -------------------------------------------------------------------------------


def test_an_announcement_is_fetched_from_home_assistants_own_address_played_and_answered(tmp_path):
    played = tmp_path / "played.raw"
    sound = tone(0.5, 660.0, 22050)
    with connected(tmp_path, silent_wav(tmp_path / "silence.wav"), played=played) as (d, ha):
        with serving({"/api/tts_proxy/abc.wav": wav_bytes(sound, 22050)}) as (port, asked):
            # The URL names another host: guardd connects to Home Assistant's own address all the same.
            with serving({}, host="127.0.0.2") as (_, asked_elsewhere):
                assert ha.announce(f"http://homeassistant.invalid:{port}/api/tts_proxy/abc.wav") is True
                assert asked == ["/api/tts_proxy/abc.wav"] and asked_elsewhere == []
        [pushed] = d.records("peer_audio")
        [ended] = d.records("sound_end")
        assert ended["sound"] == pushed["sound"] and ended["audio_ms"] == 500
        assert ended["audio_sha256"] == hashlib.sha256(sound.astype("<i2").tobytes()).hexdigest()
        d.wait_until(lambda: contains(heard(played), at_volume(sound[:2048])), "the announcement played")


def test_an_mp3_announcement_as_home_assistant_makes_it_before_its_first_run_is_decoded_and_played(tmp_path):
    """Until a voice run has asked it for WAV, Home Assistant's text-to-speech for an
    announcement is MP3 (seen with Home Assistant 2026.11: scripts/ha_check_esphome.py)."""
    played = tmp_path / "played.raw"
    rate = 24000
    sound = (np.sin(2 * np.pi * 440.0 * np.arange(rate) / rate) * 12000).astype("<i2")
    with connected(tmp_path, silent_wav(tmp_path / "silence.wav"), played=played) as (d, ha):
        with serving({"/api/tts_proxy/abc.mp3": encoded(sound, rate, "MP3")}) as (port, asked):
            assert ha.announce(f"http://homeassistant.local:{port}/api/tts_proxy/abc.mp3") is True
        [pushed] = d.records("peer_audio")
        [ended] = d.records("sound_end")
        assert ended["sound"] == pushed["sound"] and ended["audio_ms"] == 1000 and not d.records("peer_ignored")
        d.wait_until(lambda: len(heard(played)) >= SPEAKER_RATE - 1, "the announcement played")
        out = heard(played).astype(np.float64)[-SPEAKER_RATE:]  # a second of it, at the speaker's rate
        assert abs(np.argmax(np.abs(np.fft.rfft(out))) * SPEAKER_RATE / len(out) - 440.0) < 5  # the tone it carried


def test_an_announcement_guardd_does_not_play_is_answered_at_once_and_logged(tmp_path):
    with connected(tmp_path, silent_wav(tmp_path / "silence.wav")) as (d, ha):
        with serving({"/a.mp3": b"ID3\x03\x00\x00\x00" + b"\xff\xfb" * 500}) as (port, asked):
            assert ha.announce(f"http://127.0.0.1:{port}/a.mp3") is False
            assert ha.announce(f"https://127.0.0.1:{port}/a.wav") is False  # never https, never elsewhere
            assert ha.announce(f"http://127.0.0.1:{port}/missing.wav") is False
            assert asked == ["/a.mp3", "/missing.wav"]
        reasons = [r["reason"] for r in d.records("peer_ignored")]
        assert "not a sound guardd can decode" in reasons[0] and "http" in reasons[1] and "404" in reasons[2]
        assert not d.records("peer_audio")


# -- the mute switch -----------------------------------------------------------------------------


def test_home_assistants_switch_pauses_and_resumes_but_never_lifts_the_owners_mute(tmp_path):
    with connected(tmp_path, silent_wav(tmp_path / "silence.wav"), unmuted=False) as (d, ha):
        d.wait_until(lambda: ha.seen.mute_states[-1:] == [True], "the switch showing the owner's mute")
        ha.switch(False)
        d.wait_until(lambda: len(ha.seen.mute_states) >= 2, "guardd's answer to the switch")
        time.sleep(1.0)
        state = d.call({"call": "status"})
        assert state["owner_muted"] and set(ha.seen.mute_states) == {True}  # it asked; the truth stands

        d.stdin("hold 3.5")  # the owner's long press on the device
        d.wait_until(lambda: not d.call({"call": "status"})["muted"], "the long press unmuting")
        d.wait_until(lambda: ha.seen.mute_states[-1:] == [False], "the switch showing it")
        ha.switch(True)  # Home Assistant's pause: its own hold
        d.wait_until(lambda: d.call({"call": "status"})["ha_paused"], "Home Assistant's pause")
        d.wait_until(lambda: ha.seen.mute_states[-1:] == [True], "the switch showing the pause")
        assert not d.call({"call": "status"})["owner_muted"]
        [mute] = [r for r in d.records("mute") if r["hold"] == "home_assistant"]
        assert mute["source"].startswith("home assistant its mute switch from 127.0.0.1:")
        ha.switch(False)
        d.wait_until(lambda: not d.call({"call": "status"})["muted"], "its pause lifted")
        d.wait_until(lambda: ha.seen.mute_states[-1:] == [False], "the switch showing it")


# -- timers ------------------------------------------------------------------------------------


def test_a_timer_home_assistant_finishes_rings_until_a_press_and_its_name_is_never_logged(tmp_path):
    """The same ringing as over Wyoming (guardd/timers.py): Home Assistant's timer events over
    the encrypted link become the core's timer changes."""
    from aioesphomeapi import VoiceAssistantTimerEventType as T

    with connected(tmp_path, silent_wav(tmp_path / "silence.wav")) as (d, ha):
        ha.timer(T.VOICE_ASSISTANT_TIMER_STARTED, "tea", 3, 3, name="the secret tea")
        d.wait_until(lambda: [r["event"] for r in d.records("timer")] == ["started"], "the timer's start")
        ha.timer(T.VOICE_ASSISTANT_TIMER_FINISHED, "tea", 3, 0, name="the secret tea")
        d.wait_until(lambda: "finished" in [r["event"] for r in d.records("timer")], "the timer's finish")
        d.wait_until(lambda: "ringing" in d.said(), "the LED's ringing pattern")
        d.stdin("")  # a short press with no request asking silences it
        d.wait_until(lambda: any(r["event"] == "silenced" for r in d.records("timer")), "the ring silenced")
        assert not d.records("decision")  # the press approved nothing
        assert all("secret" not in str(r) for r in d.records("timer"))
