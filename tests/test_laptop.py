"""Trying guardd on a laptop, as docs/laptop.md says: config/laptop.yaml as a normal user, a WAV
file as the microphone in real time (`run --microphone`), a fresh install that starts muted and
is unmuted with `hold 3`, a spoken request and a `guardd send` approved on stdin and delivered to
scripts/demo_receiver.py, then `guardd history`."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time

import pytest
from conftest import silent_wav
from harness import GUARDD, ROOT, Daemon, alsa_env, guardd

from guardd.config import load as configmod
from guardd.listen.microphone import WavMicrophone, WavSource

LAPTOP = ROOT / "config" / "laptop.yaml"


def test_the_laptop_config_keeps_state_and_socket_in_the_users_own_places(tmp_path):
    """As a user (uid 1000) nothing in it points at /var/lib or /run, which a user may not write.
    (The defaults are taken when guardd is imported, so a fresh process is that user from the start.)"""
    as_user = ("import os, sys; os.geteuid = lambda: 1000\n"
               "from guardd.config import load\n"
               "c = load.load(sys.argv[1])\n"
               "print(c.state_dir); print(c.socket.path); print(c.destination('assistant').url)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    shown = subprocess.run([sys.executable, "-c", as_user, str(LAPTOP)], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=60, check=True).stdout.splitlines()
    assert shown == [str(tmp_path / "state" / "guardd"), str(tmp_path / "run" / "guardd.sock"),
                     "http://127.0.0.1:8700/utterance"]
    assert configmod.load(LAPTOP).after_wake.upload_to == "assistant"


def test_a_wav_microphone_delivers_in_real_time_then_silence_and_resumes_where_it_was(tmp_path):
    wav = silent_wav(tmp_path / "half.wav", 0.4)  # 5 blocks of 80 ms
    source = WavSource(wav)
    mic = WavMicrophone(source, queue_s=30)
    started = time.monotonic()
    mic.start()
    blocks = [mic.frames.get(timeout=5) for _ in range(3)]
    mic.stop()  # a mute: the source stays where it got to
    took = blocks[-1][0] - started
    assert 0.2 <= took < 0.6, f"three 80 ms blocks came after {took:.3f} s: not real time"
    assert not source.ended
    again = WavMicrophone(source, queue_s=30)
    again.start()
    rest = [again.frames.get(timeout=5) for _ in range(4)]
    again.stop()
    assert source.ended  # the file's 5 blocks are out (3 + 2), then silence
    assert all(block == bytes(len(block)) for _, block in rest)
    with pytest.raises(queue.Empty):
        again.frames.get_nowait()


def test_a_wav_that_is_no_16khz_mono_wav_stops_run_before_it_starts(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    result = guardd("run", "--simulate", "--config", str(LAPTOP), "--microphone", str(bad),
                    env={"STATE_DIRECTORY": str(tmp_path / "state"), "RUNTIME_DIRECTORY": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"guardd: error: {bad} is not a WAV file")
    assert not (tmp_path / "state").exists()
    usage = guardd("run", "--config", str(LAPTOP), "--loop")
    assert usage.returncode == 2 and "--loop goes with --microphone" in usage.stderr


def press_when_said(d: Daemon, count: int) -> None:
    """Press as the page says: once the speaker has said the whole sentence ("... Press the
    button to send it."), which is always in time (the timeout runs from its end)."""
    d.wait_announced(count)
    said = [line for line in d.said().splitlines() if " is announced (" in line][count - 1]
    time.sleep(float(said.split(" is announced (")[1].split(" s")[0]) + 0.3)
    d.press()


def test_the_laptop_walkthrough_from_a_muted_start_to_history(tmp_path, manifest):
    demo = manifest["dir"] / manifest["demo"]["file"]
    receiver = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "demo_receiver.py"), str(tmp_path / "port")],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        from harness import wait_until

        wait_until(lambda: (tmp_path / "port").exists() and (tmp_path / "port").read_text(), "the receiver", 10)
        config = tmp_path / "laptop.yaml"
        config.write_text(LAPTOP.read_text().replace("127.0.0.1:8700", f"127.0.0.1:{(tmp_path / 'port').read_text()}"))
        # The user's own places, as the defaults give them (systemd's variables are honoured first).
        env = {"STATE_DIRECTORY": str(tmp_path / "state"), "RUNTIME_DIRECTORY": str(tmp_path),
               **alsa_env(tmp_path, demo, played=tmp_path / "played.raw")}  # the speaker: a file
        d = Daemon(tmp_path, config, env=env, extra=["--microphone", str(demo)])
        try:
            d.wait_until(lambda: "listening (models" in d.said(), "the daemon to listen")
            start = d.records("start")[0]
            assert start["muted"] == 1 and start["microphone"] == f"file {demo.name}"  # a fresh install is muted
            assert "muted: hold the button for 3 s to unmute" in d.said()
            d.stdin("hold 3")
            d.wait_for_record("unmute", timeout_s=15)
            request = d.wait_for_record("request", timeout_s=30)  # the file's "Alexa, send a message ..."
            assert request["destination"] == "assistant" and request["exe"] == "guardd (after wake)"
            press_when_said(d, 1)
            d.wait_until(lambda: d.records("sent"), "the upload's result", 30)
            sender = subprocess.Popen([*GUARDD, "send", "--config", str(config), "--to", "assistant", "--text",
                                       "hello from the laptop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, cwd=ROOT, env=dict(os.environ, **env))
            press_when_said(d, 2)
            out, err = sender.communicate(timeout=30)
            assert sender.returncode == 0, err
            assert "delivered (HTTP 200)" in err
            history = guardd("history", "--config", str(config), env=env)
            assert d.stop() == 0
        finally:
            d.close()
    finally:
        receiver.terminate()
        got = receiver.communicate(timeout=10)[0]
    assert got.count("[receiver] got ") == 2, got
    assert "got 21 bytes (text/plain; charset=utf-8)" in got
    lines = history.stdout.splitlines()
    assert len(lines) == 3, history.stdout
    assert " guardd (after wake) " in lines[1] and lines[1].endswith("approved (pressed)  delivered (HTTP 200)")
    assert "message, 21 bytes" in lines[2] and lines[2].endswith("approved (pressed)  delivered (HTTP 200)")
