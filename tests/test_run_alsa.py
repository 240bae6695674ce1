"""`guardd run` end to end: audio through the real sounddevice -> PortAudio -> ALSA path (ALSA's
file plugin plays a WAV as the default input), the wake word heard, the utterance kept and
logged, and a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

from conftest import replay_events

from harness import Daemon, guardd, write_config

from guardd.auditlog.verify import verify



def start_run(directory: Path, wav: Path, *, simulate: bool) -> Daemon:
    return Daemon(directory, write_config(directory, audio={"queue_s": 120}), wav, simulate=simulate,
                  wait_for_socket=False)


def test_run_keeps_the_utterance_heard_through_alsa_and_stops_cleanly_on_sigterm(tmp_path, manifest):
    wav = manifest["dir"] / manifest["demo"]["file"]
    d = start_run(tmp_path, wav, simulate=True)
    kept = d.wait_for_record("utterance")
    assert d.stop(signal.SIGTERM) == 0
    log_dir = d.log_dir

    records = d.records()
    assert [r["type"] for r in records] == ["start", "wake", "utterance", "stop"]
    assert records[-1]["reason"] == "SIGTERM"
    path = tmp_path / "state" / "recordings" / kept["file"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert hashlib.sha256(path.read_bytes()).hexdigest() == kept["sha256"]
    assert verify(log_dir) == (4, [])

    # The simulated LED was drawn idle, lit for the utterance, idle again, then stopped.
    drawn = [line for line in d.said().splitlines() if line.startswith("[LED")]
    assert [line.split()[1] for line in drawn] == ["○", "●", "○", "○"]
    assert "idle, listening" in drawn[2] and "stopped: not listening" in drawn[3]


def test_run_and_replay_keep_the_same_bytes_from_the_same_audio(tmp_path, manifest):
    wav = manifest["dir"] / manifest["demo"]["file"]
    (tmp_path / "run").mkdir()
    d = start_run(tmp_path / "run", wav, simulate=False)
    kept = d.wait_for_record("utterance")
    assert d.stop(signal.SIGINT) == 0
    assert d.records()[-1]["reason"] == "SIGINT"

    (tmp_path / "replay").mkdir()
    events = replay_events(wav, write_config(tmp_path / "replay"))
    replayed = [e for e in events if e["event"] == "utterance"]
    assert [e["sha256"] for e in replayed] == [kept["sha256"]]


def test_run_without_gpio_refuses_to_start_and_names_the_fix(tmp_path):
    config = write_config(tmp_path)
    env = {"GPIOZERO_PIN_FACTORY": ""}
    result = guardd("run", "--config", str(config), env=env, timeout=60)
    assert result.returncode == 1
    assert "no GPIO pin factory could be loaded" in result.stderr
    assert "--simulate" in result.stderr
