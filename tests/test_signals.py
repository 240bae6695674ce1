"""Signals sent to a real `guardd run`: SIGTERM and SIGINT deny what is pending, log `stop` and
exit 0 within 2 seconds; SIGHUP reloads a valid config and keeps the old one on a bad one."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import yaml
from harness import Daemon, write_config

from guardd.auditlog.verify import verify


def start(tmp_path: Path, wav: Path, inbox_url: str, **sections: object) -> Daemon:
    config = write_config(tmp_path, audio={"queue_s": 120}, destinations={"inbox": {"url": inbox_url}}, **sections)
    return Daemon(tmp_path, config, wav)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_denies_what_is_pending_and_exits_within_two_seconds(tmp_path, manifest, inbox, signum):
    d = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], inbox.url, confirm={"queue": 2})
    clients = [d.submit("armed"), d.submit("queued")]
    d.wait_until(lambda: len(d.records("request")) == 2, "two requests")
    started = time.monotonic()
    assert d.stop(signum) == 0
    assert time.monotonic() - started < 2.0
    tail = d.records()
    decisions = [(r["decision"], r["reason"]) for r in tail if r["type"] == "decision"]
    assert sorted(decisions) == [("denied", "stopping"), ("denied", "stopping")]
    assert tail[-1]["type"] == "stop" and tail[-1]["reason"] == signal.Signals(signum).name
    assert inbox.arrivals == []
    assert verify(tmp_path / "state" / "log")[1] == []
    drawn = [line for line in d.said().splitlines() if line.startswith("[LED")]
    assert drawn[-1].startswith("[LED ○ off")
    for c in clients:
        c.close()


BAD_RELOADS = {
    "a value out of range": ("wake:\n  threshold: 7\n", "wake.threshold: must be between 0 and 1"),
    "a NUL byte": ("wake:\n  threshold: 0.5\x00\n", "the character U+0000 may not appear in a config"),
    "a verifier that is not there": ("wake:\n  verify: [alexa]\n", "does not exist: run guardd tune --write"),
    "nesting 5,000 deep": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nest more than 20 deep"),
}


@pytest.mark.parametrize("extra, reason", BAD_RELOADS.values(), ids=BAD_RELOADS.keys())
def test_sighup_with_a_bad_config_keeps_the_old_one_running(tmp_path, manifest, inbox, extra, reason):
    d = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], inbox.url)
    try:
        d.config.write_text(d.config.read_text() + extra)
        d.send_signal(signal.SIGHUP)
        reload = d.wait_for_record("reload")
        assert reload["result"] == "refused" and reason in reload["reason"], reload
        assert d.proc.poll() is None and d.call({"call": "status"})["status"] == "ok"
        assert "reload refused, the running config stays" in d.said()
        assert d.types().count("start") == 1
    finally:
        assert d.stop() == 0


def test_sighup_with_a_changed_config_applies_it_as_a_reload_not_a_restart(tmp_path, manifest, inbox):
    d = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], inbox.url)
    try:
        body = yaml.safe_load(d.config.read_text())
        body["confirm"] = {"timeout_s": 1.0}
        d.config.write_text(yaml.safe_dump(body))
        d.send_signal(signal.SIGHUP)
        d.wait_until(lambda: d.said().count("listening (models") == 2, "listening with the new config")
        types = d.types()
        assert types.count("start") == 1 and "stop" not in types  # one process, one life in the log
        assert [r["result"] for r in d.records("reload")] == ["applied"]
        assert f"reloaded {d.config}" in d.said() and "stopped" not in d.said()
        # The new confirmation timeout is in force: denied 1 s after the announcement, not 30.
        c = d.submit("quick")
        replies = [json.loads(line) for line in c.makefile("rb")]
        assert replies[-1] == {"id": replies[-1]["id"], "reason": "timeout", "status": "denied"}
        counting = [r["seconds_left"] for r in replies if r["status"] == "waiting" and not r["announcing"]]
        assert counting and max(counting) <= 1.0, replies
        c.close()
    finally:
        assert d.stop() == 0
