"""kill -9 of real processes while they write the log: every record whose append returned (its
fdatasync done) survives the restart, and the log verifies with the owner's key."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from harness import GUARDD, ROOT, guardd, write_config
from guardd.auditlog.reading import read_records
from guardd.auditlog.verify import verify
from guardd.auditlog.writer import AuditLog

WRITER = """
import sys
from pathlib import Path
from guardd.auditlog.writer import AuditLog
log = AuditLog(Path(sys.argv[1]), announce_key=False)
log.open()
print("key", log.verification_key, flush=True)
n = 0
while True:
    n += 1
    seq = log.append("bench", n=n, note="x" * (n % 300))
    sys.stdout.write(f"done {seq}\\n")  # only after append returned: fdatasync is done
    sys.stdout.flush()
"""


def test_kill_9_while_writing_loses_no_synced_record(tmp_path):
    logdir = tmp_path / "state" / "log"
    rng = random.Random(9)
    key = None
    acknowledged: list[int] = []
    for round_ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(logdir)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        first = proc.stdout.readline().split()
        assert first[0] == "key"
        if round_ == 0:
            key = first[1]
        else:
            assert first[1] == "None"  # the key is made once, at the first start
        time.sleep(rng.uniform(0.02, 0.3))
        proc.kill()  # SIGKILL, wherever it is: mid-write, mid-fdatasync, mid-key-save
        out, _ = proc.communicate(timeout=30)
        # Only whole lines count: the kill may cut the last one short.
        complete = out.split("\n")[:-1]
        acknowledged += [int(line.split()[1]) for line in complete if line.startswith("done ")]
        # What the restart finds (before it writes anything) verifies with the key.
        _, problems = verify(logdir, keys=[key], key_dir=tmp_path / "state" / "keys")
        assert [p.kind for p in problems] in ([], ["torn tail"]), problems
    log = AuditLog(logdir, announce_key=False)
    log.open()
    log.append("stop", reason="test")
    log.close()
    records = list(read_records(logdir))
    seqs = {r["seq"] for r in records}
    assert acknowledged and set(acknowledged) <= seqs
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert verify(logdir, keys=[key], key_dir=tmp_path / "state" / "keys")[1] == []


def test_kill_9_of_guardd_replay_then_a_restart_verifies(tmp_path, manifest):
    config = write_config(tmp_path)
    long_wav = manifest["dir"] / "neg_000.wav"
    proc = subprocess.Popen(
        [*GUARDD, "replay", str(long_wav), "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    segment = tmp_path / "state" / "log" / "segment-000001.jsonl"
    while not (segment.exists() and segment.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.02)  # bounded: the start record is the first thing replay writes
    time.sleep(random.Random(3).uniform(0.0, 0.5))
    proc.kill()
    _, err = proc.communicate(timeout=30)
    key = next(word for line in err.splitlines() for word in line.split() if word.startswith("vk1-"))
    again = guardd("replay", str(manifest["dir"] / manifest["demo"]["file"]), "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert "vk1-" not in again.stderr  # shown once only
    ok = guardd("verify", "--config", str(config), "--key", key)
    assert ok.returncode == 0, ok.stdout
    assert "chain and seals intact" in ok.stdout
    types = [json.loads(line)["type"] for line in segment.read_text().splitlines()]
    assert types[0] == "start" and types[-1] == "stop"


@pytest.mark.parametrize("n", [200])
def test_appends_per_second_with_fdatasync(tmp_path, n, capsys):
    """A figure for docs/performance.md: each append is a write, an fdatasync and an atomic key save."""
    log = AuditLog(tmp_path / "log", announce_key=False)
    log.open()
    start = time.perf_counter()
    for i in range(n):
        log.append("bench", n=i)
    elapsed = time.perf_counter() - start
    log.close()
    with capsys.disabled():
        print(f"\n{n / elapsed:.0f} appends/s ({elapsed / n * 1000:.2f} ms each) in {tmp_path}")
    assert elapsed < 60
