"""The audit log keeps durable, append-only, hash-chained canonical lines; verify finds any damage."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WakeAt, frames, silence, voiced

from harness import InstantSpeaker, NoSender, patch_log_disk
from guardd.auditlog.reading import read_records
from guardd.auditlog.writer import AuditLog
from guardd.auditlog.verify import verify
from guardd.config.settings import Config
from guardd.core import Core
from guardd.listen.endpoint import webrtc_vad
from guardd.errors import AuditLogError, LogIntegrityError
from guardd.device.panel import LedState
from guardd.listen.recordings import Recordings
from guardd.audioformat import FRAME_SAMPLES, SAMPLE_RATE

GENESIS = "0" * 64


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def logdir(tmp_path):
    return tmp_path / "log"


@pytest.fixture
def opened(logdir):
    """A fresh AuditLog, closed after the test."""
    logs = []

    def open_(**kwargs):
        log = AuditLog(logdir, **kwargs)
        log.open()
        logs.append(log)
        return log

    yield open_
    for log in logs:
        log.close()


def write_records(open_, n, **fields):
    log = open_(**fields)
    for i in range(n):
        log.append("bench", n=i, note=f"record {i}")
    return log


def segment(directory):
    paths = sorted(directory.glob("segment-*.jsonl"))
    assert len(paths) == 1, paths
    return paths[0]


def read_lines(directory):
    data = segment(directory).read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def write_lines(directory, lines):
    segment(directory).write_bytes(b"".join(line + b"\n" for line in lines))


def encode(record):
    """The canonical encoding, written out here rather than taken from the module under test."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def expected_hash(record):
    body = {k: v for k, v in record.items() if k not in ("h", "mac")}
    return hashlib.sha256(b"guardd-log-v1\n" + record["prev"].encode() + b"\n" + encode(body)).hexdigest()


def rehashed(record):
    """A record with its h recomputed, as a forger without a MAC key could do."""
    record = dict(record)
    record["h"] = expected_hash(record)
    return record


def problems(directory):
    """verify()'s findings as (seq, kind) pairs."""
    _, found = verify(directory)
    return [(p.seq, p.kind) for p in found]


def fds_open_on(path):
    """This process's descriptors that refer to `path` (read from /proc, not from the object)."""
    fds = []
    for entry in Path("/proc/self/fd").iterdir():
        try:
            if os.readlink(entry) == str(path):
                fds.append(int(entry.name))
        except OSError:
            continue
    return fds


def patch_fdatasync(monkeypatch, fdatasync):
    patch_log_disk(monkeypatch, fdatasync=fdatasync)


# -- the chain and its encoding ------------------------------------------------------------------


def test_each_record_chains_to_the_previous_by_sha256(opened, logdir):
    log = write_records(opened, 4)
    records = [json.loads(line) for line in read_lines(logdir)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    prev = GENESIS
    for record in records:
        assert record["prev"] == prev
        assert record["h"] == expected_hash(record)
        prev = record["h"]
    assert (log.head.seq, log.head.h) == (4, prev)


def test_every_line_is_the_canonical_encoding_of_its_record(opened, logdir):
    log = opened()
    log.append("bench", text="café\"quoted\"\nnewline", big=2**62, neg=-5)
    (line,) = read_lines(logdir)
    assert line == encode(json.loads(line))
    assert line.isascii() and b" " not in line and b"caf\\u00e9" in line
    assert json.loads(line)["text"] == "café\"quoted\"\nnewline"


def test_reopening_continues_the_chain(opened, logdir):
    first = write_records(opened, 2)
    head = first.head
    first.close()
    second = opened()
    assert second.head == head
    second.append("bench", n=99)
    assert [json.loads(line)["seq"] for line in read_lines(logdir)] == [1, 2, 3]
    assert problems(logdir) == []


def test_the_log_is_append_only_and_private(opened, logdir):
    write_records(opened, 1)
    path = segment(logdir)
    (fd,) = fds_open_on(path)
    flags = next(
        int(line.split()[1], 8)
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
        if line.startswith("flags:")
    )
    assert flags & os.O_APPEND
    assert flags & os.O_ACCMODE == os.O_WRONLY
    assert path.stat().st_mode & 0o777 == 0o600
    assert logdir.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("value", [1.5, True, False, None, [1], {"a": 1}], ids=repr)
def test_floats_and_bools_are_refused_in_records(opened, logdir, value):
    log = write_records(opened, 1)
    before, head = segment(logdir).read_bytes(), log.head
    with pytest.raises(TypeError, match="only integers and strings"):
        log.append("bench", value=value)
    assert segment(logdir).read_bytes() == before
    assert log.head == head


# -- durability ----------------------------------------------------------------------------------


def test_append_is_durable_before_it_returns(opened, logdir, monkeypatch):
    log = write_records(opened, 1)
    (log_fd,) = fds_open_on(segment(logdir))
    synced = []  # (fd, file contents at the moment of the call)

    def recording_fdatasync(fd):
        synced.append((fd, segment(logdir).read_bytes()))
        os.fdatasync(fd)

    patch_fdatasync(monkeypatch, recording_fdatasync)
    seq = log.append("bench", n=2)
    assert [fd for fd, _ in synced] == [log_fd]
    # The record was already written when it was synced, and synced before append returned.
    record = list(read_records(logdir))[-1]
    assert record["seq"] == seq and synced[0][1].endswith(encode(record) + b"\n")


def test_a_failed_fdatasync_raises_and_leaves_the_log_as_it_was(opened, logdir, monkeypatch):
    log = write_records(opened, 2)
    before, head = segment(logdir).read_bytes(), log.head
    # EIO: on ENOSPC the log also spends its reserve on a fault record (tests/test_logseal.py).
    failures = [OSError(errno.EIO, "Input/output error")]

    def failing_once(fd):
        if failures:
            raise failures.pop()
        os.fdatasync(fd)

    patch_fdatasync(monkeypatch, failing_once)
    with pytest.raises(AuditLogError, match="Input/output error"):
        log.append("wake", model="alexa")
    assert log.head == head
    assert segment(logdir).read_bytes() == before
    # The writer goes on from the same head: no seq is used twice.
    log.append("wake", model="alexa")
    assert [json.loads(line)["seq"] for line in read_lines(logdir)] == [1, 2, 3]
    assert problems(logdir) == []


def test_a_log_that_keeps_failing_never_leaves_a_duplicate_seq(opened, logdir, monkeypatch):
    log = write_records(opened, 2)

    def failing(fd):
        raise OSError(errno.EIO, "Input/output error")

    patch_fdatasync(monkeypatch, failing)
    for _ in range(3):
        with pytest.raises(AuditLogError):
            log.append("wake", model="alexa")
    monkeypatch.undo()
    try:
        log.append("wake", model="alexa")  # the writer may refuse or go on, but never fork the chain
    except AuditLogError:
        pass
    log.close()
    opened().append("start")
    seqs = [json.loads(line)["seq"] for line in read_lines(logdir)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert problems(logdir) == []


# -- one writer ----------------------------------------------------------------------------------


def test_a_second_writer_is_refused_while_one_holds_the_log(opened, logdir):
    holder = write_records(opened, 1)
    with pytest.raises(AuditLogError, match="another guardd process"):
        AuditLog(logdir).open()
    other_process = subprocess.run(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from guardd.auditlog.writer import AuditLog; "
         "AuditLog(Path(sys.argv[1])).open()", str(logdir)],
        capture_output=True, text=True, timeout=60,
    )
    assert other_process.returncode != 0
    assert "another guardd process is writing the log" in other_process.stderr
    assert len(read_lines(logdir)) == 1
    holder.close()
    opened().append("start")  # once released, the next writer gets it
    assert len(read_lines(logdir)) == 2


# -- torn tails and damage at open ---------------------------------------------------------------


@pytest.mark.parametrize("keep", [1, 2, 17, 0.5, -1, 0], ids=lambda k: f"keep-{k}")
def test_a_torn_last_line_is_set_aside_byte_for_byte_and_noted_in_a_recovery_record(
    opened, logdir, keep
):
    write_records(opened, 3).close()
    lines = read_lines(logdir)
    last = lines[-1]
    # keep: bytes of the last record that reached the disk; -1: all but its last byte,
    # 0: the whole record without its newline; 0.5: half of it.
    n = {0.5: len(last) // 2, -1: len(last) - 1, 0: len(last)}.get(keep, keep)
    torn = last[:n]
    segment(logdir).write_bytes(b"".join(line + b"\n" for line in lines[:-1]) + torn)

    log = opened()
    (aside,) = logdir.glob("torn-*.bin")
    assert aside.read_bytes() == torn
    records = [json.loads(line) for line in read_lines(logdir)]
    assert records[-1]["type"] == "recovery"
    assert records[-1]["set_aside"] == aside.name
    # The cut record was complete and sealed, and its key already erased: the recovery record
    # takes the next seq and names the one it skips (a power cut mid-write skips nothing, below).
    assert records[-1]["seq"] == 4 and records[-1]["skipped"] == 3
    assert records[-1]["prev"] == json.loads(lines[1])["h"]
    log.append("bench", n=4)
    assert problems(logdir) == []


def test_every_torn_tail_is_kept_even_within_one_second(opened, logdir):
    frozen = lambda: 1_000.0  # a Pi without a real-time clock boots at the same time every time
    for i in range(2):
        log = write_records(opened, 1, wall_clock=frozen)
        log.close()
        with open(segment(logdir), "ab") as f:
            f.write(b'{"partial":%d' % i)
    opened(wall_clock=frozen)
    kept = sorted(p.read_bytes() for p in logdir.glob("torn-*.bin"))
    assert kept == [b'{"partial":0', b'{"partial":1']
    assert problems(logdir) == []


@pytest.mark.parametrize(
    "last",
    [b"garbage", b'{"seq":2,"h":"ab","x":1.5}', b'{"seq":2,"h":"ab","x":{"a":1}}', b'{ "seq":2,"h":"ab"}'],
    ids=["garbage", "float", "nested", "not-canonical"],
)
def test_a_damaged_complete_last_line_is_an_alarm_and_is_not_repaired(opened, logdir, last):
    write_records(opened, 1).close()
    with open(segment(logdir), "ab") as f:
        f.write(last + b"\n")
    before = segment(logdir).read_bytes()
    with pytest.raises(LogIntegrityError, match="guardd verify"):
        AuditLog(logdir).open()
    assert segment(logdir).read_bytes() == before
    assert list(logdir.glob("torn-*")) == []


# -- verify --------------------------------------------------------------------------------------


def test_verify_accepts_an_intact_log(opened, logdir):
    write_records(opened, 5)
    assert verify(logdir) == (5, [])


def test_verify_reports_a_modified_field_at_its_seq(opened, logdir):
    write_records(opened, 4)
    lines = read_lines(logdir)
    record = json.loads(lines[1])
    record["note"] = "something else"
    lines[1] = encode(record)  # still canonical: only the hash can tell
    write_lines(logdir, lines)
    assert problems(logdir) == [(2, "modified")]


def test_a_rewritten_record_with_a_fresh_hash_breaks_the_chain_after_it(opened, logdir):
    write_records(opened, 4)
    lines = read_lines(logdir)
    record = json.loads(lines[1])
    record["note"] = "something else"
    lines[1] = encode(rehashed(record))
    write_lines(logdir, lines)
    assert problems(logdir) == [(3, "broken chain")]


def test_verify_reports_a_deleted_middle_line_as_a_gap(opened, logdir):
    write_records(opened, 5)
    lines = read_lines(logdir)
    del lines[2]
    write_lines(logdir, lines)
    found = problems(logdir)
    assert (4, "gap") in found and (4, "broken chain") in found
    assert all(seq == 4 for seq, _ in found)


def test_verify_reports_swapped_lines(opened, logdir):
    write_records(opened, 5)
    lines = read_lines(logdir)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(logdir, lines)
    found = problems(logdir)
    assert (3, "reordered") in found
    assert (2, "reordered") in found
    assert {seq for seq, kind in found if kind == "broken chain"} >= {3, 2}


def test_verify_reports_a_duplicated_line(opened, logdir):
    write_records(opened, 4)
    lines = read_lines(logdir)
    lines.insert(2, lines[1])
    write_lines(logdir, lines)
    found = problems(logdir)
    assert (2, "replayed") in found
    assert (2, "broken chain") in found
    assert all(seq == 2 for seq, _ in found)


def test_verify_reports_a_torn_tail(opened, logdir):
    write_records(opened, 2)
    with open(segment(logdir), "ab") as f:
        f.write(b'{"seq":3')
    assert problems(logdir) == [(3, "torn tail")]


def _reorder_keys(line):
    record = json.loads(line)
    return json.dumps(dict(reversed(list(record.items()))), separators=(",", ":")).encode()


NON_CANONICAL = {
    "reordered keys": _reorder_keys,
    "a space after a colon": lambda line: line.replace(b'"seq":', b'"seq": ', 1),
    "a space after a comma": lambda line: line.replace(b",", b", ", 1),
    "uppercase hex in h": lambda line: line.replace(
        json.loads(line)["h"].encode(), json.loads(line)["h"].upper().encode()
    ),
    "uppercase hex in prev": lambda line: line.replace(
        json.loads(line)["prev"].encode(), json.loads(line)["prev"].upper().encode()
    ),
    "an escaped ascii letter": lambda line: line.replace(b'"bench"', b'"\\u0062ench"', 1),
    "trailing whitespace": lambda line: line + b" ",
    "a leading zero": lambda line: line.replace(b'"seq":2', b'"seq":02', 1),
}


@pytest.mark.parametrize("change", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_bytes_do_not_verify(opened, logdir, change):
    write_records(opened, 3)
    lines = read_lines(logdir)
    altered = change(lines[1])
    assert altered != lines[1]
    lines[1] = altered
    write_lines(logdir, lines)
    found = problems(logdir)
    assert any(seq == 2 for seq, _ in found), found


@pytest.mark.parametrize("seed", range(8))
def test_verify_on_random_bytes_yields_problems_and_never_raises(logdir, seed):
    rng = random.Random(seed)
    logdir.mkdir()
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))
    if seed % 2:
        junk += b"\n"
    (logdir / "segment-000001.jsonl").write_bytes(junk)
    count, found = verify(logdir)
    assert found
    assert all(isinstance(str(p), str) for p in found)


@pytest.mark.parametrize(
    "line",
    [b"[" * 100_000 + b"]" * 100_000, b"1", b'"text"', b"{}", b'{"seq":"1","h":7}', b"null",
     b'{"seq":1,"h":"x","prev":[1]}', b"\xff\xfe", b'{"seq":NaN,"h":"x"}'],
    ids=["deep", "number", "string", "empty", "wrong-types", "null", "list-prev", "binary", "nan"],
)
def test_verify_reports_malformed_lines_and_never_raises(logdir, line):
    logdir.mkdir()
    (logdir / "segment-000001.jsonl").write_bytes(line + b"\n")
    count, found = verify(logdir)
    assert count == 1 and found


def test_verify_reports_a_missing_log(logdir):
    assert problems(logdir) == [(None, "missing")]


# -- the log and the listening pipeline ----------------------------------------------------------


FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
WAKE_FRAME = 5
SPOKEN = frames(silence(WAKE_FRAME * FRAME_S) + voiced(15 * FRAME_S) + silence(25 * FRAME_S, seed=1))


@pytest.mark.parametrize("broken_from", ["start", "wake", "never"])
def test_a_log_that_cannot_be_written_keeps_no_audio(tmp_path, monkeypatch, broken_from):
    cfg = Config(state_dir=str(tmp_path))
    log = AuditLog(tmp_path / "log")
    log.open()
    recordings = Recordings(tmp_path / "recordings", cfg.retention)
    led, events = [], []
    core = Core(
        cfg, wake=WakeAt(WAKE_FRAME), vad=webrtc_vad(2), journal=log, sender=NoSender(), speaker=InstantSpeaker(lambda: 0.0), recordings=recordings,
        show=led.append, clock=lambda: 0.0, wall_clock=lambda: 1_700_000_000.0, emit=events.append,
    )
    core.start()
    broken = [False]

    def fdatasync(fd):
        if broken[0]:
            raise OSError(errno.EIO, "Input/output error")
        os.fdatasync(fd)

    patch_fdatasync(monkeypatch, fdatasync)
    broken[0] = broken_from == "start"
    for frame in SPOKEN:
        core.on_audio(frame)
        if core.recording and broken_from == "wake":
            broken[0] = True  # the wake is logged and recording began; now the disk fails
    log.close()

    kept = sorted(p.name for p in (tmp_path / "recordings").glob("*"))
    if broken_from == "never":  # the same audio with a working log is kept: the test can fail
        (utterance,) = [r for r in read_records(tmp_path / "log") if r["type"] == "utterance"]
        assert kept == [utterance["file"]] == [f"utterance-{utterance['seq']:08d}.wav"]
        assert led[-2:] == [LedState.RECORDING, LedState.IDLE]
        return
    assert kept == []
    assert led[-1] is LedState.FAULT
    assert core.faults.first and "Input/output error" in core.faults.first
    assert "utterance" not in [e["event"] for e in events]
    assert "utterance" not in [r["type"] for r in read_records(tmp_path / "log")]
    if broken_from == "start":
        assert LedState.RECORDING not in led  # an unlogged wake never lights the recording LED
