"""Signals sent to a real `guardd run`: SIGTERM and SIGINT deny what is pending, log `stop` and
exit 0 within 2 seconds; SIGHUP reloads a valid config and keeps the old one on a bad one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import GUARDD, ROOT, alsa_env, wait_until, write_config

from guardd.auditlog.reading import read_records

from guardd.auditlog.verify import verify




def start(tmp_path: Path, wav: Path, receiver_url: str, **sections):
    config = write_config(tmp_path, audio={"queue_s": 120},
                          destinations={"inbox": {"url": receiver_url}}, **sections)
    env = dict(os.environ, **alsa_env(tmp_path, wav))
    stderr = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen([*GUARDD, "run", "--simulate", "--config", str(config)], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr)
    wait_until((tmp_path / "guardd.sock").exists, "the control socket")
    return proc, config


def records(tmp_path: Path) -> list[dict]:
    return list(read_records(tmp_path / "state" / "log"))


def submit(tmp_path: Path, text: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(tmp_path / "guardd.sock"))
    s.sendall(json.dumps({"call": "submit", "to": "inbox", "text": text}).encode() + b"\n")
    return s


def status(tmp_path: Path) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(tmp_path / "guardd.sock"))
        s.sendall(b'{"call":"status"}\n')
        return json.loads(s.makefile("rb").readline())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_denies_what_is_pending_and_exits_within_two_seconds(tmp_path, manifest, inbox, signum):
    proc, _ = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], inbox.url,
                    confirm={"queue": 2})
    clients = [submit(tmp_path, "armed"), submit(tmp_path, "queued")]
    wait_until(lambda: sum(r["type"] == "request" for r in records(tmp_path)) == 2, "two requests")
    started = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 2.0
    tail = records(tmp_path)
    decisions = [(r["decision"], r["reason"]) for r in tail if r["type"] == "decision"]
    assert sorted(decisions) == [("denied", "stopping"), ("denied", "stopping")]
    assert tail[-1]["type"] == "stop" and tail[-1]["reason"] == signal.Signals(signum).name
    assert inbox.arrivals == []
    assert verify(tmp_path / "state" / "log")[1] == []
    drawn = [line for line in (tmp_path / "stderr.txt").read_text().splitlines() if line.startswith("[LED")]
    assert drawn[-1].startswith("[LED ○ off")
    for c in clients:
        c.close()


BAD_RELOADS = {
    "a value out of range": ("wake:\n  threshold: 7\n", "wake.threshold: must be between 0 and 1"),
    "a NUL byte": ("wake:\n  threshold: 0.5\x00\n", "the character U+0000 may not appear in a config"),
    "nesting 5,000 deep": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nest more than 20 deep"),
}


@pytest.mark.parametrize("extra, reason", BAD_RELOADS.values(), ids=BAD_RELOADS.keys())
def test_sighup_with_a_bad_config_keeps_the_old_one_running(tmp_path, manifest, inbox, extra, reason):
    proc, config = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], inbox.url)
    try:
        good = config.read_text()
        config.write_text(good + extra)
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: any(r["type"] == "reload" for r in records(tmp_path)), "the reload record")
        reload = [r for r in records(tmp_path) if r["type"] == "reload"][0]
        assert reload["result"] == "refused" and reason in reload["reason"], reload
        assert proc.poll() is None and status(tmp_path)["status"] == "ok"
        assert "reload refused, the running config stays" in (tmp_path / "stderr.txt").read_text()
        assert [r["type"] for r in records(tmp_path)].count("start") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_sighup_with_a_changed_config_applies_it_as_a_reload_not_a_restart(tmp_path, manifest, inbox):
    proc, config = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], inbox.url)
    try:
        body = yaml.safe_load(config.read_text())
        body["confirm"] = {"timeout_s": 1.0}
        config.write_text(yaml.safe_dump(body))
        proc.send_signal(signal.SIGHUP)
        said = (tmp_path / "stderr.txt").read_text
        wait_until(lambda: said().count("listening (models") == 2, "listening with the new config")
        types = [r["type"] for r in records(tmp_path)]
        assert types.count("start") == 1 and "stop" not in types  # one process, one life in the log
        assert [r["result"] for r in records(tmp_path) if r["type"] == "reload"] == ["applied"]
        assert f"reloaded {config}" in said() and "stopped" not in said()
        # The new confirmation timeout is in force: a request is denied after 1 s, not 30.
        c = submit(tmp_path, "quick")
        started = time.monotonic()
        replies = [json.loads(line) for line in c.makefile("rb")]
        assert replies[-1] == {"id": replies[-1]["id"], "reason": "timeout", "status": "denied"}
        assert time.monotonic() - started < 5
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
