"""Satellite mode end to end: `guardd run` over ALSA (the file plugin as microphone and speaker),
and Home Assistant played by a stand-in made of the `wyoming` package's own client
(harness/home_assistant.py), doing what Home Assistant 2026.11 was seen to do (run-satellite
before describe, a describe poll on a second connection, pause-satellite before it closes).
scripts/ha_check.py checks the same promises against the real Home Assistant.

The promises: nothing of the microphone reaches Home Assistant before a press; what it gets is
exactly the kept utterance, as approved; its reply is played on the speaker and `played` goes
back; pings keep the link up and Home Assistant's polls never take it down; a peer outside
`allow` gets nothing; bad input drops the connection and fails the request (never resent), and
the daemon goes on. Home Assistant's pause: test_satellite_pause.py; the link's uptime,
reconnects and status: test_satellite_link.py; hostile peers: test_satellite_hostile.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
import wave
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from wyoming.pipeline import PipelineStage, RunPipeline

from conftest import silent_wav
from harness import Daemon, heard, write_config
from harness.home_assistant import Answer, HomeAssistant, audio_frames, free_port, tone

from guardd.speak.earcons import SPEAKER_RATE
from guardd.speak.sentence import seconds_of_audio
from guardd.speak.voice import find_voice

VOLUME = 0.7
METADATA = {"info", "pong", "played", "error"}  # all that may go to the peer without a press
needs_voice = pytest.mark.skipif(find_voice() is None, reason="espeak-ng is not installed (scripts/setup.sh installs it)")


def silence(tmp_path: Path) -> Path:
    return silent_wav(tmp_path / "silence.wav")


def satellite(tmp_path: Path, wav: Path, *, allow: str = "127.0.0.1", played: Path | None = None,
              **kwargs) -> tuple[Daemon, int]:
    port = free_port()
    config = write_config(tmp_path, audio={"queue_s": 120}, after_wake={"upload_to": "wyoming"},
                          announce={"output": "device" if played else "none", "volume": VOLUME},
                          wyoming={"listen": f"127.0.0.1:{port}", "allow": [allow], "name": "kitchen"})
    return Daemon(tmp_path, config, wav, played=played, **kwargs), port


@contextlib.contextmanager
def connected(tmp_path: Path, wav: Path, answer: Answer | None = Answer(), ha_options: dict | None = None,
              **kwargs) -> Iterator[tuple[Daemon, HomeAssistant]]:
    """`guardd run` in satellite mode with Home Assistant connected; both closed on the way out."""
    d, port = satellite(tmp_path, wav, **kwargs)
    ha = HomeAssistant(port, answer=answer, **(ha_options or {})).connect()
    try:
        yield d, ha
    finally:
        try:
            ha.close()
        finally:
            assert d.stop() == 0


def kept_pcm(tmp_path: Path, record: dict) -> bytes:
    with wave.open(str(tmp_path / "state" / "recordings" / record["file"]), "rb") as w:
        return w.readframes(w.getnframes())


def contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    if len(needle) == 0 or len(haystack) < len(needle):
        return False
    starts = np.flatnonzero(haystack[: len(haystack) - len(needle) + 1] == needle[0])
    return any(np.array_equal(haystack[s : s + len(needle)], needle) for s in starts)


@needs_voice
def test_the_kept_utterance_goes_to_home_assistant_only_after_a_press_and_its_reply_is_played(tmp_path, manifest):
    played = tmp_path / "played.raw"
    with connected(tmp_path, manifest["dir"] / manifest["demo"]["file"], played=played) as (d, ha):
        d.wait_announced()
        [request] = d.records("request")
        [kept] = d.records("utterance")
        pcm = kept_pcm(tmp_path, kept)
        assert request["destination"] == "wyoming" and request["bytes"] == len(pcm)
        assert f"Send to Home Assistant: {seconds_of_audio(len(pcm) / 32000)}. Press the button" in d.said()
        time.sleep(1.0)  # the LED asks, the speaker has said it: still nothing but metadata went out
        assert set(ha.types()) <= METADATA and "audio-chunk" not in ha.types()

        d.press()
        ha_sent = d.wait_for_record("sent")
        assert ha_sent["delivered"] == 1
        d.wait_until(lambda: "audio-stop" in ha.types(), "the upload's end at Home Assistant")
        after = ha.types()[ha.types().index("detection"):]
        chunks = after.count("audio-chunk")
        assert after[:3] == ["detection", "run-pipeline", "audio-start"] and after[3 + chunks] == "audio-stop"
        run = RunPipeline.from_event(ha.of("run-pipeline")[0])
        assert (run.start_stage, run.end_stage) == (PipelineStage.ASR, PipelineStage.TTS)

        # The chunks carry exactly the kept utterance, which is exactly what was approved.
        audio = ha.uploaded()
        assert audio == pcm
        assert hashlib.sha256(audio).hexdigest() == request["sha256"] == d.records("send")[0]["sha256"]
        assert all(len(e.payload or b"") == 2048 for e in ha.of("audio-chunk")[:-1])

        # The reply is logged as hashes and lengths, played on the speaker, and `played` answers it.
        d.wait_until(lambda: ha.count("played") == 1, "played", 30)
        answer = Answer()
        [transcript] = d.records("transcript")
        assert transcript["sha256"] == hashlib.sha256(answer.transcript.encode()).hexdigest()
        assert transcript["chars"] == len(answer.transcript)
        [reply] = d.records("reply")
        assert reply["sha256"] == hashlib.sha256(answer.text.encode()).hexdigest()
        [ended] = d.records("sound_end")
        assert ended["sound"] == f"{request['id']}-reply" and ended["audio_ms"] == 600
        assert ended["audio_sha256"] == hashlib.sha256(tone(0.6).tobytes()).hexdigest()
        [pipeline] = d.records("pipeline")
        assert pipeline["result"] == "replied" and pipeline["id"] == request["id"]
        reply_samples = np.round(tone(0.6).astype(np.float32) * np.float32(VOLUME)).astype(np.int16)
        d.wait_until(lambda: contains(heard(played), reply_samples), "the reply in what the speaker played", 10)
        log_text = "".join(p.read_text() for p in (tmp_path / "state" / "log").glob("segment-*"))
        assert answer.transcript not in log_text and answer.text not in log_text
        # (a frame is counted once its write returns, which may be just after Home Assistant has it)
        d.wait_until(lambda: d.call({"call": "status"})["wyoming"]["sent"].get("played") == 1, "played counted")
        status = d.call({"call": "status"})["wyoming"]
        assert status["peer"] and status["sent"]["audio-chunk"] == chunks and status["sent"]["played"] == 1
        assert ha.late_pongs == 0 and not ha.closed
    assert [r["event"] for r in d.records("peer")][:1] == ["connected"]


@needs_voice
def test_a_reply_streamed_as_it_is_spoken_starts_playing_before_its_end_comes(tmp_path, manifest):
    played = tmp_path / "played.raw"
    reply = tone(2.0, 440.0)
    streaming = Answer(audio=reply, pace_s=1024 / 22050)  # in real time
    with connected(tmp_path, manifest["dir"] / manifest["demo"]["file"], streaming, played=played) as (d, ha):
        d.wait_announced()
        time.sleep(0.5)  # (a press counts once the announcement's first sound is out of the speaker)
        d.press()
        assert ha.halfway.wait(30), d.types()
        first = np.round(reply[:1024].astype(np.float32) * np.float32(VOLUME)).astype(np.int16)
        d.wait_until(lambda: contains(heard(played), first), "the reply's first chunk at the speaker", 10)
        assert not ha.finished.is_set()  # a second of it was still to come, and it already played
        d.wait_until(lambda: ha.count("played") == 1, "played", 30)
        whole = np.round(reply.astype(np.float32) * np.float32(VOLUME)).astype(np.int16)
        d.wait_until(lambda: contains(heard(played), whole), "all of the reply, in order, nothing lost between chunks", 10)


def test_a_pipeline_started_from_home_assistant_gets_no_audio(tmp_path):
    with connected(tmp_path, silence(tmp_path)) as (d, ha):
        ha.send(RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event())
        [ignored] = [d.wait_for_record("peer_ignored")]
        assert ignored["frame"] == "run-pipeline" and "press" in ignored["reason"]
        time.sleep(2.5)
        assert set(ha.types()) <= {"info", "pong"} and not d.records("request")


def test_announcements_home_assistant_pushes_are_logged_played_and_answered(tmp_path):
    played = tmp_path / "played.raw"
    with connected(tmp_path, silence(tmp_path), played=played) as (d, ha):
        ha.send(*audio_frames(tone(0.4, 660.0, 16000), 16000))
        d.wait_until(lambda: ha.count("played") == 1, "played", 30)
        [pushed] = d.records("peer_audio")
        [ended] = d.records("sound_end")
        assert ended["sound"] == pushed["sound"] and ended["audio_ms"] == 400
        assert ended["audio_sha256"] == hashlib.sha256(tone(0.4, 660.0, 16000).tobytes()).hexdigest()
        d.wait_until(lambda: len(heard(played)) >= int(0.4 * SPEAKER_RATE) - 1, "the announcement played")
        assert "request" not in d.types()


def test_a_peer_outside_allow_gets_nothing_and_is_logged(tmp_path):
    d, port = satellite(tmp_path, silence(tmp_path), allow="127.0.0.2")
    try:
        d.wait_until(lambda: "satellite mode: listening" in d.said(), "the listener")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b'{"type": "describe"}\n')
            try:
                got = s.recv(100)
            except ConnectionResetError:  # closed with the describe unread
                got = b""
            assert got == b""
        [refused] = [d.wait_for_record("peer")]
        assert refused["event"] == "refused" and refused["peer"].startswith("127.0.0.1:")
    finally:
        assert d.stop() == 0


BAD_INPUT = {
    "a header that is not JSON": b"this is not json\n",
    "a data_length that lies": b'{"type": "transcript", "data_length": 50}\n{"text": "x"}',
    "a payload_length over the bound": b'{"type": "audio-chunk", "payload_length": 999999999}\n',
    "an unknown event type": b'{"type": "unmute-mic"}\n',
    "reply audio in a format guardd does not play": (
        b'{"type": "audio-start", "data": {"rate": 16000, "width": 4, "channels": 1}}\n'),
}


@pytest.mark.parametrize("bad", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_drops_the_connection_logs_why_and_the_daemon_serves_the_next(tmp_path, bad):
    with connected(tmp_path, silence(tmp_path)) as (d, ha):
        d.wait_until(lambda: ha.count("info") == 1, "info")
        ha.send_raw(BAD_INPUT[bad])
        d.wait_until(lambda: any(r["event"] == "closed" for r in d.records("peer")), "the drop", 20)
        d.wait_until(lambda: ha.closed, "the connection closed")
        [closed] = [r for r in d.records("peer") if r["event"] == "closed"]
        assert closed["reason"]
        again = HomeAssistant(ha.port).connect()
        try:
            d.wait_until(lambda: again.count("info") == 1, "the next connection served")
        finally:
            again.close()
        assert d.call({"call": "status"})["state"] != "fault"


class StopsReading:
    """A peer with a small receive buffer that starts the satellite and pings every 2 s, as
    Home Assistant does, but never reads a byte: guardd's writes back up."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b'{"type": "run-satellite"}\n')
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._ping, daemon=True)
        self._thread.start()

    def _ping(self) -> None:
        while not self._stop.wait(2.0):
            try:
                self.sock.sendall(b'{"type": "ping"}\n')
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@needs_voice
@pytest.mark.parametrize("close", [True, False], ids=["vanishes mid-upload", "stops reading"])
def test_a_peer_lost_during_the_upload_fails_the_request_and_it_is_never_resent(tmp_path, manifest, close):
    d, port = satellite(tmp_path, manifest["dir"] / manifest["demo"]["file"])
    d.wait_until(lambda: "satellite mode: listening" in d.said(), "the listener")
    peer = StopsReading(port)
    try:
        d.wait_announced()
        d.press()
        if close:
            d.wait_for_record("send")
            time.sleep(0.2)
            peer.close()
        sent = d.wait_for_record("sent", timeout_s=40)
        assert sent["delivered"] == 0 and sent["error"]
        # The link is closed once the send has failed: its record follows, on a loaded machine a
        # little later than the send's.
        d.wait_until(lambda: any(r["event"] == "closed" for r in d.records("peer")), "the peer's closed record")
        time.sleep(1.0)
        assert len(d.records("send")) == 1 and len(d.records("sent")) == 1  # never resent
        assert d.proc.poll() is None
    finally:
        peer.close()
        assert d.stop() == 0


@needs_voice
def test_a_pipeline_home_assistant_ends_with_an_error_is_heard_and_seen_as_not_understood(tmp_path, manifest):
    """28.4: an upload that reached Home Assistant and ended `stt-no-text-recognized` showed the
    LED "sent" and played no failure sound."""
    from guardd.speak.earcons import render

    played = tmp_path / "played.raw"
    with connected(tmp_path, manifest["dir"] / manifest["demo"]["file"], Answer(error="stt-no-text-recognized"),
                   played=played) as (d, ha):
        d.wait_announced()
        time.sleep(0.5)
        d.press()
        [pipeline] = [d.wait_for_record("pipeline")]
        request_id = d.records("request")[0]["id"]
        assert (pipeline["id"], pipeline["result"], pipeline["code"]) == (request_id, "error", "stt-no-text-recognized")
        d.wait_until(lambda: "one glow" in d.said(), "the LED's not-understood ending")
        d.wait_until(lambda: f"request {request_id}: Home Assistant took it but did not understand it "
                             "(stt-no-text-recognized)" in d.said(), "the ending told in the request's terms")
        tone_samples = render("not_understood", VOLUME)
        d.wait_until(lambda: contains(heard(played), tone_samples), "the not-understood tone", 10)
        assert d.wait_for_record("sent")["delivered"] == 1  # it did reach Home Assistant
