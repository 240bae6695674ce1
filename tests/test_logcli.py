"""The owner's log commands: `guardd log init`, `log --head`, `verify --key --head`, reading with
filters and --follow, `export`; and the daemon failing closed on a lost key."""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import threading
import time

import pytest

from harness import GUARDD, ROOT, guardd, write_config
from harness import InstantSpeaker, NoSender, patch_log_disk
from guardd.auditlog import files as log_files
from guardd.auditlog.reading import read_records
from guardd.auditlog.format import RECORD_TYPES
from guardd.auditlog.writer import AuditLog
from guardd.config.settings import Config
from guardd.core import Core
from guardd.listen.endpoint import webrtc_vad
from guardd.device.panel import LedState
from guardd.listen.recordings import Recordings


@pytest.fixture
def replayed(tmp_path, manifest):
    """A state dir written by `guardd log init` and one `guardd replay` of the demo."""
    config = write_config(tmp_path)
    init = guardd("log", "init", "--config", str(config))
    assert init.returncode == 0, init.stderr
    key = init.stdout.strip()
    assert key.startswith("vk1-1-") and key not in init.stderr
    run = guardd("replay", str(manifest["dir"] / manifest["demo"]["file"]), "--config", str(config))
    assert run.returncode == 0, run.stderr
    assert "vk1-" not in run.stderr  # already initialised: the key is not shown again
    return config, key, tmp_path / "state"


def test_log_init_refuses_to_make_a_second_key(replayed):
    config, _, _ = replayed
    again = guardd("log", "init", "--config", str(config))
    assert again.returncode == 1 and "already sealed" in again.stderr and again.stdout == ""


def test_verify_with_key_and_head_and_every_verdict_exits_nonzero(replayed):
    config, key, state = replayed
    head = guardd("log", "--head", "--config", str(config)).stdout.strip()
    assert head.startswith("4:")
    ok = guardd("verify", "--config", str(config), "--key", key, "--head", head)
    assert ok.returncode == 0 and "ok, 4 records, chain and seals intact, head matches" in ok.stdout
    # A mistyped key is one line that says so, not a "modified" line for every record.
    mistyped = key[:-1] + ("0" if key[-1] != "0" else "1")
    bad_key = guardd("verify", "--config", str(config), "--key", mistyped)
    assert bad_key.returncode == 1
    fails = [line for line in bad_key.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and "it is not this log's key" in fails[0] and "modified" not in bad_key.stdout
    assert "seals none of the 4 records from seq 1" in fails[0]
    usage = guardd("verify", "--config", str(config), "--head", "nonsense")
    assert usage.returncode == 2 and "SEQ:H" in usage.stderr
    segment = state / "log" / "segment-000001.jsonl"
    segment.write_bytes(b"".join(segment.read_bytes().splitlines(keepends=True)[:3]))  # a clean cut
    cut = guardd("verify", "--config", str(config), "--key", key, "--head", head)
    assert cut.returncode == 1
    assert "FAIL seq 4: truncated" in cut.stdout


def test_a_lost_key_fails_closed_and_log_init_starts_a_new_epoch(replayed, manifest):
    config, key, state = replayed
    (state / "keys" / "seal.json").unlink()
    run = guardd("replay", str(manifest["dir"] / manifest["demo"]["file"]), "--config", str(config))
    assert run.returncode == 1 and "guardd log init" in run.stderr
    assert not (state / "recordings" / "utterance-00000007.wav").exists()  # nothing kept unlogged
    init = guardd("log", "init", "--config", str(config))
    assert init.returncode == 0, init.stderr
    new_key = init.stdout.strip()
    assert new_key.startswith("vk1-5-")
    both = guardd("verify", "--config", str(config), "--key", key, "--key", new_key)
    assert both.returncode == 0 and "note seq 5: rekey" in both.stdout
    old_only = guardd("verify", "--config", str(config), "--key", key)
    assert old_only.returncode == 1 and "FAIL seq 5: modified" in old_only.stdout


def test_log_reads_with_filters_and_json(replayed):
    config, _, _ = replayed
    wakes = guardd("log", "--config", str(config), "--type", "wake").stdout.splitlines()
    assert len(wakes) == 1 and wakes[0].split()[3] == "wake" and "model=alexa" in wakes[0]
    assert guardd("log", "--config", str(config), "--since", "1h").stdout.count("\n") == 4
    assert guardd("log", "--config", str(config), "--until", "2000-01-01").stdout == ""
    as_json = [json.loads(line) for line in guardd("log", "--config", str(config), "--json").stdout.splitlines()]
    assert [r["seq"] for r in as_json] == [1, 2, 3, 4] and all("mac" in r for r in as_json)
    bad = guardd("log", "--config", str(config), "--since", "yesterday-ish")
    assert bad.returncode == 2 and "not a time" in bad.stderr


def test_an_unknown_record_type_is_an_error_that_lists_the_valid_ones(replayed):
    config, _, _ = replayed
    typo = guardd("log", "--config", str(config), "--type", "decisions")
    assert typo.returncode == 2 and typo.stdout == ""
    assert "invalid choice: 'decisions'" in typo.stderr
    assert all(t in typo.stderr for t in ("decision", "mute", "unmute", "reload", "wake"))


def test_last_n_records_and_zero_prints_nothing(replayed):
    config, _, _ = replayed
    last = [json.loads(line)["seq"] for line in
            guardd("log", "--config", str(config), "--json", "-n", "2").stdout.splitlines()]
    assert last == [3, 4]
    assert guardd("log", "--config", str(config), "-n", "0").stdout == ""
    negative = guardd("log", "--config", str(config), "-n", "-1")
    assert negative.returncode == 2 and "'-1' is not a count of records" in negative.stderr


def test_every_record_type_is_in_the_log_docs():
    readme = (ROOT / "docs" / "log.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `type` |"))
    listed = {cell.strip("` ") for cell in row.split("|")[2].split(",")}
    assert listed == set(RECORD_TYPES)


def test_a_reader_that_leaves_ends_the_output_quietly(replayed):
    config, _, _ = replayed
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` after it has read its lines: every write now fails
    try:
        done = subprocess.run([*GUARDD, "log", "--config", str(config)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr


def test_log_follow_shows_new_records_as_they_are_written(replayed):
    config, _, state = replayed
    proc = subprocess.Popen([*GUARDD, "log", "--follow", "--config", str(config), "--type", "bench"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        time.sleep(1.0)  # let it read the existing records and start polling
        log = AuditLog(state / "log", announce_key=False)
        log.open()
        log.append("bench", note="followed")
        log.close()
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=20)
        assert lines and "note=followed" in lines[0] and lines[0].split()[3] == "bench"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_export_writes_recordings_and_the_log_with_a_verification_report(replayed, tmp_path):
    config, key, state = replayed
    out = tmp_path / "export"
    result = guardd("export", str(out), "--config", str(config), "--key", key)
    assert result.returncode == 0, result.stderr
    assert (out / "recordings" / "utterance-00000003.wav").read_bytes() == (
        state / "recordings" / "utterance-00000003.wav").read_bytes()
    report = (out / "verification.txt").read_text()
    assert "verdict: ok" in report and "checked with the given key" in report
    assert "utterance-00000003.wav" in report and "matches its log record" in report
    assert not list(out.rglob("seal.json"))  # the device's key never leaves with the export
    assert guardd("verify", "--dir", str(out / "log"), "--key", key).returncode == 0
    again = guardd("export", str(out), "--config", str(config))
    assert again.returncode == 1 and "not empty" in again.stderr


@pytest.mark.parametrize("seed", range(3))
def test_verify_on_random_bytes_gives_verdicts_not_tracebacks(tmp_path, seed):
    rng = random.Random(seed)
    logdir = tmp_path / "log"
    logdir.mkdir()
    (logdir / "segment-000001.jsonl").write_bytes(bytes(rng.randrange(256) for _ in range(2000)))
    result = guardd("verify", "--dir", str(logdir), "--key", "vk1-1-" + "00" * 32, "--head", "9:" + "0" * 64)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "FAIL" in result.stdout


def test_a_full_disk_shows_the_fault_logs_it_from_the_reserve_and_denies(tmp_path, monkeypatch):
    cfg = Config(state_dir=str(tmp_path))
    log = AuditLog(tmp_path / "log", announce_key=False)
    log.open()
    led, events = [], []
    core = Core(
        cfg, wake=None, vad=webrtc_vad(2), journal=log, sender=NoSender(), speaker=InstantSpeaker(lambda: 0.0),
        recordings=Recordings(tmp_path / "rec", cfg.retention),
        show=led.append, clock=lambda: 0.0, wall_clock=lambda: 1_700_000_000.0, emit=events.append,
    )
    core.start()
    real_write = os.write
    full = [True]

    def write(fd, data):
        if full[0] and os.readlink(f"/proc/self/fd/{fd}") == str(log.path) and b'"type":"fault"' not in data:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def posix_fallocate(fd, offset, length):
        if full[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.posix_fallocate(fd, offset, length)

    patch_log_disk(monkeypatch, write=write, posix_fallocate=posix_fallocate)
    assert core.note("request", id="r1") is None  # the action is not taken
    assert led[-1] is LedState.FAULT and "No space left" in core.faults.first
    assert not (tmp_path / "log" / log_files.RESERVE_NAME).exists()
    assert core.note("decision", id="r1", decision="approved", reason="press") is None
    log.close()
    types = [r["type"] for r in read_records(tmp_path / "log")]
    assert types[-1] == "fault" and "request" not in types and "decision" not in types


def test_verify_and_log_refuse_a_segment_that_is_a_symlink_to_a_fifo_without_hanging(replayed, tmp_path):
    config, key, state = replayed
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    (state / "log" / "segment-000002.jsonl").symlink_to(fifo)
    verdict = guardd("verify", "--config", str(config), "--key", key, timeout=30)
    assert verdict.returncode == 1
    assert "FAIL log: unreadable: segment-000002.jsonl: a symlink, not a regular file: refused" in verdict.stdout
    shown = guardd("log", "--config", str(config), timeout=30)
    assert shown.returncode == 1 and "a symlink, not a regular file" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_export_refuses_a_recording_that_is_a_symlink_to_a_file_outside(replayed, tmp_path):
    config, key, state = replayed
    outside = tmp_path / "not-yours.wav"
    outside.write_bytes(b"RIFF someone else's file")
    (state / "recordings" / "utterance-00000099.wav").symlink_to(outside)
    out = tmp_path / "export"
    result = guardd("export", str(out), "--config", str(config), "--key", key)
    assert result.returncode == 1
    assert "REFUSED recordings/utterance-00000099.wav: a symlink, not a regular file: not copied" in result.stdout
    assert not (out / "recordings" / "utterance-00000099.wav").exists()
    assert (out / "recordings" / "utterance-00000003.wav").exists()  # the owner's own still come out
    assert "REFUSED recordings/utterance-00000099.wav" in (out / "verification.txt").read_text()
