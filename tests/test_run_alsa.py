"""`guardd run` end to end: audio through the real sounddevice -> PortAudio -> ALSA path (ALSA's
file plugin plays a WAV as the default input), the wake word heard, the utterance kept and
logged, and a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path

from conftest import GUARDD, ROOT, alsa_env, guardd, replay_events, wait_for_record, write_config

from guardd.auditlog.reading import read_records

from guardd.auditlog.verify import verify

DEADLINE_S = 60.0


def start_run(tmp_path: Path, wav: Path, *extra: str, env_extra: dict[str, str] | None = None):
    config = write_config(tmp_path, audio={"queue_s": 120})
    env = dict(os.environ)
    env.update(alsa_env(tmp_path, wav))
    env.update(env_extra or {})
    stderr = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen(
        [*GUARDD, "run", "--config", str(config), *extra],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT,
    )
    return proc, config, tmp_path / "state" / "log"


def stop(proc: subprocess.Popen, signum: int) -> int:
    proc.send_signal(signum)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_keeps_the_utterance_heard_through_alsa_and_stops_cleanly_on_sigterm(tmp_path, manifest):
    wav = manifest["dir"] / manifest["demo"]["file"]
    proc, config, log_dir = start_run(tmp_path, wav, "--simulate")
    kept = wait_for_record(log_dir, "utterance", proc)
    assert stop(proc, signal.SIGTERM) == 0

    records = list(read_records(log_dir))
    assert [r["type"] for r in records] == ["start", "wake", "utterance", "stop"]
    assert records[-1]["reason"] == "SIGTERM"
    path = tmp_path / "state" / "recordings" / kept["file"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert hashlib.sha256(path.read_bytes()).hexdigest() == kept["sha256"]
    assert verify(log_dir) == (4, [])

    # The simulated LED was drawn idle, lit for the utterance, idle again, then stopped.
    drawn = [line for line in (tmp_path / "stderr.txt").read_text().splitlines() if line.startswith("[LED")]
    assert [line.split()[1] for line in drawn] == ["○", "●", "○", "○"]
    assert "idle, listening" in drawn[2] and "stopped: not listening" in drawn[3]


def test_run_and_replay_keep_the_same_bytes_from_the_same_audio(tmp_path, manifest):
    wav = manifest["dir"] / manifest["demo"]["file"]
    (tmp_path / "run").mkdir()
    proc, _, log_dir = start_run(tmp_path / "run", wav, env_extra={"GPIOZERO_PIN_FACTORY": "mock"})
    kept = wait_for_record(log_dir, "utterance", proc)
    assert stop(proc, signal.SIGINT) == 0
    assert [r for r in read_records(log_dir)][-1]["reason"] == "SIGINT"

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
