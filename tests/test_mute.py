"""Promise 5: software can mute, never unmute. Unmute is a physical long press with no request
asking; while muted the microphone stream is closed; the state survives restarts, and a missing
or unreadable state means muted."""

from __future__ import annotations

import os
import re
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import WakeAt, frames, silence, voiced

from harness import GUARDD, ROOT, Daemon, InstantSpeaker, NoSender, guardd, wait_until, write_config
from guardd.config import load as configmod
from guardd.auditlog.writer import AuditLog
from guardd.auditlog.reading import read_records
from guardd.config.settings import Config
from guardd.audioformat import FRAME_BYTES
from guardd.core import Core
from guardd.listen.endpoint import webrtc_vad
from guardd.device.mute import read_muted, write_muted
from guardd.confirm.outbox import Caller
from guardd.device.panel import LedState, mock_factory
from guardd.pipeline import open_pipeline
from guardd.listen.recordings import Recordings


def start(tmp_path: Path, demo: Path, *, unmuted: bool) -> Daemon:
    return Daemon(tmp_path, write_config(tmp_path, unmuted=unmuted, audio={"queue_s": 120}), demo)


@pytest.fixture
def demo(manifest) -> Path:
    return manifest["dir"] / manifest["demo"]["file"]


def test_a_fresh_install_starts_muted_with_the_microphone_closed(tmp_path, demo):
    d = start(tmp_path, demo, unmuted=False)
    try:
        time.sleep(1.5)
        assert not d.microphone_open()
        assert d.types() == ["start"] and next(read_records(d.log_dir))["muted"] == 1
        assert d.call({"call": "status"})["muted"] is True
        assert "[LED · blip" in d.said()
        # Holding the button for the configured 3 s unmutes: the stream opens and guardd listens.
        d.stdin("hold 3.5")
        wait_until(lambda: "wake" in d.types(), "a wake word after unmuting")
        assert d.types()[:3] == ["start", "unmute", "wake"]
        assert read_muted(tmp_path / "state") is False
        # `guardd status` says when each recent event happened, by the clock on the wall.
        status = guardd("status", "--config", str(d.config))
        wake_line = next(line for line in status.stdout.splitlines() if " wake " in line)
        assert re.match(r"  \d\d:\d\d:\d\d wake ", wake_line), status.stdout
    finally:
        assert d.stop() == 0


def test_guardd_mute_closes_the_stream_and_it_stays_muted_across_a_restart(tmp_path, demo):
    d = start(tmp_path, demo, unmuted=True)
    try:
        wait_until(d.microphone_open, "the microphone to open")
        result = subprocess.run([*GUARDD, "mute", "--socket", str(d.sock)], capture_output=True, text=True,
                                timeout=30, cwd=ROOT)
        assert result.returncode == 0 and "muted" in result.stdout
        wait_until(lambda: not d.microphone_open(), "the stream to close")
        mute = [r for r in read_records(d.log_dir) if r["type"] == "mute"]
        assert len(mute) == 1 and mute[0]["source"].startswith(f"socket uid={os.getuid()}")
        assert d.stop() == 0
        d = start(tmp_path, demo, unmuted=False)  # a restart keeps it muted: the stream is never opened
        time.sleep(1.5)
        assert not d.microphone_open()
        assert list(read_records(d.log_dir))[-1]["muted"] == 1
    finally:
        d.stop()


def test_no_software_call_unmutes(tmp_path, demo):
    d = start(tmp_path, demo, unmuted=False)
    try:
        for call in ("unmute", "toggle", "mute_off"):
            assert d.call({"call": call})["code"] == "bad_request"
        assert d.call({"call": "status"})["muted"] is True
        assert "unmute" not in d.types()
    finally:
        d.stop()


@pytest.mark.parametrize("content", [None, b"", b"UNMUTED\n", b"\xff\xfe", b"unmuted-ish\n"])
def test_a_missing_or_unreadable_mute_state_means_muted(tmp_path, content):
    if content is not None:
        (tmp_path / "mute").write_bytes(content)
    assert read_muted(tmp_path) is True
    write_muted(tmp_path, False)
    assert read_muted(tmp_path) is False and (tmp_path / "mute").stat().st_mode & 0o777 == 0o600


class Panel:
    """The core on MockFactory pins with an injected clock, muted at start."""

    def __init__(self, tmp_path: Path, receiver_url: str) -> None:
        cfg = configmod.load(write_config(tmp_path, destinations={"inbox": {"url": receiver_url}}))
        self.t = [0.0]
        self.edges: list = []
        self.saved: list[bool] = []
        self._cm = open_pipeline(cfg, pin_factory=mock_factory(), clock=lambda: self.t[0],
                                 on_edge=self.edges.append, emit=lambda e: None, muted=True,
                                 persist_mute=self.saved.append)
        self.p = self._cm.__enter__()
        self.p.core.start(mode="test")
        self.pin = self.p.panel.button.pin

    def at(self, t: float) -> None:
        while self.t[0] < t:  # the core ticks every 80 ms, as replay's frames do
            self.t[0] = min(t, round(self.t[0] + 0.08, 6))
            self._edges()
            self.p.core.tick()

    def _edges(self) -> None:
        self.p.inputs.drain(self.p.core)  # the speaker's news first: it came at once
        for edge in self.edges:
            self.p.core.take(edge)
        self.edges.clear()

    def down(self) -> None:
        self.pin.drive_low()
        self._edges()

    def up(self) -> None:
        self.pin.drive_high()
        self._edges()

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def test_a_long_press_with_nothing_asking_unmutes_and_another_mutes(tmp_path, inbox):
    panel = Panel(tmp_path, inbox.url)
    try:
        core = panel.p.core
        assert core.muted and panel.p.panel.state is LedState.MUTED
        panel.at(1.0)
        panel.down()
        panel.at(3.9)
        assert core.muted  # 2.9 s is not yet 3 s
        panel.at(4.1)
        assert not core.muted and panel.saved == [False]
        panel.at(9.0)  # still held: one press toggles once
        panel.up()
        panel.at(10.0)
        panel.down()
        panel.at(13.1)
        panel.up()
        assert core.muted and panel.saved == [False, True]
    finally:
        panel.close()


def test_a_long_press_that_begins_while_a_request_asks_denies_it_and_does_not_unmute(tmp_path, inbox):
    panel = Panel(tmp_path, inbox.url)
    try:
        core = panel.p.core
        core.submit("message", "inbox", b"hello", Caller(0, 1, "test"))
        panel.at(0.5)
        panel.down()
        panel.at(5.0)
        panel.up()
        panel.at(6.0)
        decisions = [r for r in read_records(tmp_path / "state" / "log") if r["type"] == "decision"]
        assert [(d["decision"], d["reason"]) for d in decisions] == [("denied", "long press")]
        assert core.muted and panel.saved == []
        assert inbox.arrivals == []
    finally:
        panel.close()


def test_audio_heard_before_a_mute_is_never_kept_with_audio_after_it(tmp_path):
    cfg = Config(state_dir=str(tmp_path))
    log = AuditLog(tmp_path / "log")
    log.open()
    core = Core(
        cfg, wake=WakeAt(11), vad=webrtc_vad(2), journal=log, sender=NoSender(), speaker=InstantSpeaker(lambda: 0.0),
        recordings=Recordings(tmp_path / "recordings", cfg.retention), show=lambda state: None,
        clock=lambda: 0.0, wall_clock=lambda: 1_700_000_000.0, emit=lambda event: None,
    )
    core.start()
    before = (np.frombuffer(voiced(0.8), "<i2") // 2).astype("<i2").tobytes()  # speech, quieter
    for frame in frames(before):
        core.on_audio(frame)
    core.mute("socket")
    core.unmute("button")
    # Speech again at once, with no pause: the wake (on the first frame after the unmute) keeps
    # pre_roll_s of what came before it, which must not reach back across the mute.
    after = voiced(1.2) + silence(2.4)
    for frame in frames(after):
        core.on_audio(frame)
    log.close()
    (kept,) = (tmp_path / "recordings").glob("*.wav")
    with wave.open(str(kept), "rb") as w:
        pcm = w.readframes(w.getnframes())
    assert len(pcm) > FRAME_BYTES
    assert after.startswith(pcm)
