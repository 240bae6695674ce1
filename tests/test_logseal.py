"""Forward-secure sealing and the tamper cases: each kind of tampering is reported with its seq,
and a clean log (after a power cut or a crash between the log and the key) is never reported."""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import random
import shutil

import pytest

from harness import patch_log_disk
from hypothesis import HealthCheck, given, settings, strategies as st

from guardd import durable
from guardd.auditlog import files as log_files
from guardd.auditlog.format import segment_paths
from guardd.auditlog.format import segment_name
from guardd.auditlog.reading import read_records
from guardd.auditlog import sealing
from guardd.auditlog.writer import AuditLog
from guardd.config.settings import LogConfig
from guardd.errors import AuditLogError
from guardd.auditlog.verify import verify

KEY0 = bytes(range(32))
FULL = bool(os.environ.get("GUARDD_TEST_FULL"))  # every offset and byte, not a sample


def sampled(values, n, seed=0):
    """All of `values` with GUARDD_TEST_FULL=1; else the ends and a fixed random sample of n."""
    values = list(values)
    if FULL or len(values) <= n:
        return values
    rng = random.Random(seed)
    return sorted({values[0], values[-1], *rng.sample(values, n)})


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state"


def open_log(state, **kwargs):
    log = AuditLog(state / "log", announce_key=False, **kwargs)
    log.open()
    return log


def make_log(state, n=5, **kwargs):
    """A closed log of n records; returns its verification key."""
    log = open_log(state, **kwargs)
    key = log.verification_key
    for i in range(n):
        log.append("bench", n=i, note=f"record {i}")
    log.close()
    return key


def segments(state):
    return segment_paths(state / "log")


def lines_of(path):
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def put_lines(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def encode(record):
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def rehash(record):
    body = {k: v for k, v in record.items() if k not in ("h", "mac")}
    record = dict(record)
    record["h"] = hashlib.sha256(b"guardd-log-v1\n" + record["prev"].encode() + b"\n" + encode(body)).hexdigest()
    return record


def rechain(records, start=0):
    """Recompute h and prev from `start` on, as a forger without the old keys would."""
    for i in range(start, len(records)):
        if i:
            records[i]["prev"] = records[i - 1]["h"]
        records[i] = rehash(records[i])
    return records


def found(state, *, key=None, head=None, key_dir=True):
    _, problems = verify(
        state / "log", keys=[key] if key else [], head=head, key_dir=state / "keys" if key_dir else None
    )
    return [(p.seq, p.kind) for p in problems]


def stolen_state(state):
    return sealing.load_state(state / "keys")


# -- the ratchet ---------------------------------------------------------------------------------


def test_ratchet_known_answer_vectors():
    # Independently checked: printf next | openssl dgst -sha256 -mac HMAC -macopt hexkey:0001..1f
    k1 = sealing.next_key(KEY0)
    assert k1.hex() == "48775f459dcaa72b7f4d6ac939efb0c93e8ea37f69248eeca82c61e7023ee45d"
    assert sealing.next_key(k1).hex() == "705d6da2cda41a01f1fc51355139f9f1cf9f9ea9b63d14dcd0fe98bc203f799a"
    assert sealing.seal(KEY0, "0" * 64) == "fcbff1c574117a6dae13f43718837b9f383f20f531a04ed218aa2d970cf3696d"
    assert k1 == hmac.new(KEY0, b"next", hashlib.sha256).digest()
    ratchet = sealing.Ratchet(5, KEY0, max_steps=10)
    assert ratchet.key_for(7) == sealing.next_key(k1) and ratchet.key_for(5) == KEY0
    assert ratchet.key_for(4) is None


def test_verification_keys_parse_and_bad_ones_are_named():
    text = sealing.format_verification_key(12, KEY0)
    assert text == "vk1-12-" + KEY0.hex()
    assert sealing.parse_verification_key(text) == (12, KEY0)
    assert sealing.parse_verification_key(KEY0.hex()) == (1, KEY0)
    for bad in ("", "vk1-0-" + KEY0.hex(), "vk1-x-" + KEY0.hex(), "vk1-3-" + KEY0.hex()[:-1], "hello"):
        with pytest.raises(ValueError, match="not a guardd verification key"):
            sealing.parse_verification_key(bad)


def test_each_record_is_sealed_under_its_own_evolved_key_and_only_the_next_is_kept(state):
    key = make_log(state, 4)
    seq, k = sealing.parse_verification_key(key)
    assert seq == 1
    for line in lines_of(segments(state)[0]):
        record = json.loads(line)
        assert record["mac"] == hmac.new(k, b"guardd-seal-v1\n" + record["h"].encode(), hashlib.sha256).hexdigest()
        k = sealing.next_key(k)
    kept = stolen_state(state)
    assert (kept.seq, kept.key) == (5, k)
    assert (state / "keys").stat().st_mode & 0o777 == 0o700
    assert (state / "keys" / "seal.json").stat().st_mode & 0o777 == 0o600
    assert KEY0.hex() not in (state / "keys" / "seal.json").read_text()
    assert found(state, key=key) == []


def test_the_verification_key_is_announced_once_at_first_start(state, caplog):
    log = AuditLog(state / "log")
    log.open()
    log.append("start")
    log.close()
    shown = [r.getMessage() for r in caplog.records if "verification key" in r.getMessage()]
    assert len(shown) == 1 and log.verification_key in shown[0]
    caplog.clear()
    again = AuditLog(state / "log")
    again.open()
    again.close()
    assert again.verification_key is None
    assert not [r for r in caplog.records if "verification key" in r.getMessage()]


# -- every byte ----------------------------------------------------------------------------------


def test_every_byte_of_a_small_log_modified_never_verifies(state):
    key = make_log(state, 3)
    path = segments(state)[0]
    original = path.read_bytes()
    rng = random.Random(4)
    mac_spans = []
    for match in __import__("re").finditer(rb'"mac":"([0-9a-f]{64})"', original):
        mac_spans.append(range(match.start(1), match.end(1)))
    for i in sampled(range(len(original)), 300):
        for new in {original[i] ^ 0x01, rng.randrange(256)} - {original[i]}:
            path.write_bytes(original[:i] + bytes([new]) + original[i + 1 :])
            assert found(state, key=key), f"byte {i} set to {new:#x} verified"
            if not any(i in span for span in mac_spans):  # a MAC byte needs the key to be checked
                assert found(state, key_dir=False), f"byte {i} set to {new:#x} verified without a key"
    path.write_bytes(original)
    assert found(state, key=key) == []


# -- rewriting history ---------------------------------------------------------------------------


def test_an_edited_field_with_a_recomputed_hash_but_no_key(state):
    key = make_log(state, 5)
    path = segments(state)[0]
    records = [json.loads(line) for line in lines_of(path)]
    records[1]["note"] = "never happened"
    records[1] = rehash(records[1])
    put_lines(path, [encode(r) for r in records])
    assert found(state, key_dir=False) == [(3, "broken chain")]
    # A forger who rewrites the rest of the chain too: the chain alone cannot tell...
    put_lines(path, [encode(r) for r in rechain(records, 1)])
    assert found(state, key_dir=False) == []
    # ...but the seals can (every rewritten record), and so can the device's key state.
    assert found(state, key=key, key_dir=False) == [(s, "modified") for s in range(2, 6)]
    assert (5, "rolled back") in found(state)


def test_an_old_record_rewritten_with_the_stolen_current_key_state(state):
    key = make_log(state, 5)
    stolen = stolen_state(state)  # the thief has K_6 and everything on the disk
    path = segments(state)[0]
    records = rechain([json.loads(line) for line in lines_of(path)], 0)
    records[1]["note"] = "never happened"
    rechain(records, 1)
    k = stolen.key
    for r in records[1:]:  # the best the thief can do: seal with the key they hold, or later ones
        r["mac"] = sealing.seal(k, r["h"])
        k = sealing.next_key(k)
    put_lines(path, [encode(r) for r in records])
    sealing.save_state(state / "keys", sealing.KeyState(6, stolen.key, records[-1]["h"]))
    assert found(state) == []  # chain and key state are consistent again: only the key can tell
    assert found(state, key=key) == [(s, "modified") for s in range(2, 6)]


def test_a_deleted_middle_line_is_a_gap_with_or_without_a_key(state):
    key = make_log(state, 5)
    path = segments(state)[0]
    lines = lines_of(path)
    del lines[2]
    put_lines(path, lines)
    assert found(state, key=key) == [(4, "gap"), (4, "broken chain")]


def test_two_swapped_lines_are_reordered(state):
    key = make_log(state, 5)
    path = segments(state)[0]
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    put_lines(path, lines)
    problems = found(state, key=key)
    assert (3, "reordered") in problems and (2, "reordered") in problems
    assert not [p for p in problems if p[1] == "modified"]  # each record is still its own


def test_a_duplicated_line_is_replayed(state):
    key = make_log(state, 5)
    path = segments(state)[0]
    lines = lines_of(path)
    lines.insert(3, lines[1])
    put_lines(path, lines)
    assert found(state, key=key) == [(2, "replayed"), (2, "broken chain"), (4, "broken chain")]


# -- cuts ----------------------------------------------------------------------------------------


def test_a_cut_at_a_record_boundary_with_and_without_a_noted_head(state):
    key = make_log(state, 6)
    path = segments(state)[0]
    head = str(open_head(state))
    put_lines(path, lines_of(path)[:4])
    assert found(state, key=key, key_dir=False) == []  # a clean cut: the chain alone cannot see it
    assert found(state, key=key, head=head, key_dir=False) == [(5, "truncated")]
    assert found(state, key=key) == [(5, "truncated")]  # the device's key has moved on to seq 7
    log = open_log(state)  # and the writer fails closed instead of going on
    with pytest.raises(AuditLogError, match="records were removed.*guardd log init"):
        log.append("start")
    log.close()


def open_head(state):
    from guardd.auditlog.view import head_of

    return head_of(state / "log")


def test_a_cut_then_appending_with_the_stolen_key(state):
    key = make_log(state, 6)
    head = str(open_head(state))
    stolen = stolen_state(state)
    path = segments(state)[0]
    records = [json.loads(line) for line in lines_of(path)][:3]
    k = stolen.key
    for i in range(3):
        forged = {**records[-1], "seq": records[-1]["seq"] + 1, "prev": records[-1]["h"], "note": f"forged {i}"}
        forged.pop("n", None)
        forged = rehash(forged)
        forged["mac"] = sealing.seal(k, forged["h"])
        k = sealing.next_key(k)
        records.append(forged)
    put_lines(path, [encode(r) for r in records])
    sealing.save_state(state / "keys", sealing.KeyState(7, k, records[-1]["h"]))
    assert found(state) == []
    assert found(state, head=head) == [(6, "rolled back")]
    problems = found(state, key=key)
    assert [(4, "modified"), (5, "modified"), (6, "modified")] == [p for p in problems if p[0]]
    assert (None, "key state") in problems


# -- segments ------------------------------------------------------------------------------------


def rotating(state, n, **rotation):
    log = open_log(state, rotation=LogConfig(**{"segment_max_bytes": 4096, **rotation}))
    key = log.verification_key
    for i in range(n):
        log.append("bench", n=i, note="x" * 200)
    log.close()
    return key


def test_segments_rotate_by_size_and_link_to_the_previous(state):
    key = rotating(state, 60)
    paths = segments(state)
    assert len(paths) >= 3
    for before, after in zip(paths, paths[1:]):
        first = json.loads(lines_of(after)[0])
        last = json.loads(lines_of(before)[-1])
        assert first["type"] == "segment" and first["previous"] == before.name
        assert (first["previous_seq"], first["previous_h"]) == (last["seq"], last["h"])
    assert found(state, key=key) == []


def test_old_segments_are_deleted_only_after_a_retention_record(state):
    key = rotating(state, 120, max_segments=3)
    paths = segments(state)
    assert len(paths) == 3 and paths[0].name != "segment-000001.jsonl"
    kinds = [r["type"] for r in read_records(state / "log")]
    assert "retention" in kinds
    assert found(state, key=key) == []


def test_a_segment_that_disappears_without_a_retention_record_is_reported(state):
    key = rotating(state, 60)
    first, middle = segments(state)[:2]
    middle.unlink()
    assert "segment missing" in [k for _, k in found(state, key=key)]
    first.unlink()
    assert "segment missing" in [k for _, k in found(state, key=key)]


def test_an_old_segment_replayed(state):
    key = rotating(state, 40)
    paths = segments(state)
    old = paths[0].read_bytes()
    replay = paths[-1].with_name(segment_name(len(paths) + 1))
    replay.write_bytes(old)
    problems = found(state, key=key)
    assert "replayed" in [k for _, k in problems] and "segment link" in [k for _, k in problems]
    replay.unlink()
    paths[-1].write_bytes(old)  # the current segment replaced by an old one
    assert found(state, key=key)


def test_junk_appended_to_a_closed_segment(state):
    key = rotating(state, 40)
    closed = segments(state)[0]
    with open(closed, "ab") as f:
        f.write(b'{"junk":1}\n')
    assert found(state, key=key)
    # a well-formed, correctly chained record appended after the segment was closed
    put_lines(closed, lines_of(closed)[:-1])
    last = json.loads(lines_of(closed)[-1])
    extra = rehash({**last, "seq": last["seq"] + 1, "prev": last["h"], "note": "late"})
    with open(closed, "ab") as f:
        f.write(encode(extra) + b"\n")
    kinds = [k for _, k in found(state, key=key)]
    assert "appended to a closed segment" in kinds


# -- encoding ------------------------------------------------------------------------------------


def test_records_without_a_mac_are_unsealed_even_without_a_key(state):
    make_log(state, 4)
    path = segments(state)[0]
    records = [json.loads(line) for line in lines_of(path)]
    del records[2]["mac"]
    put_lines(path, [encode(r) for r in records])
    assert found(state, key_dir=False) == [(3, "unsealed")]


NON_CANONICAL = {
    "uppercase mac": lambda r, line: line.replace(r["mac"].encode(), r["mac"].upper().encode()),
    "uppercase h": lambda r, line: line.replace(r["h"].encode(), r["h"].upper().encode()),
    "reordered keys": lambda r, line: json.dumps(dict(reversed(list(r.items()))), separators=(",", ":")).encode(),
    "spaces": lambda r, line: json.dumps(r, sort_keys=True).encode(),
    "a float": lambda r, line: line.replace(b'"n":1', b'"n":1.0'),
    "an exponent": lambda r, line: line.replace(b'"n":1', b'"n":1e0'),
    "a negative zero": lambda r, line: line.replace(b'"n":1', b'"n":-0'),
    "non-ascii": lambda r, line: line.replace(b"record 1", "récord 1".encode()),
    "a duplicate key": lambda r, line: line.replace(b'{"boot"', b'{"n":1,"boot"'),
}


@pytest.mark.parametrize("change", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_bytes_never_verify(state, change):
    key = make_log(state, 3)
    path = segments(state)[0]
    lines = lines_of(path)
    altered = change(json.loads(lines[1]), lines[1])
    assert altered != lines[1]
    lines[1] = altered
    put_lines(path, lines)
    problems = found(state, key=key, key_dir=False)
    assert any(seq == 2 for seq, _ in problems), problems


# -- power cuts and crashes ----------------------------------------------------------------------


def test_the_last_record_cut_at_every_byte_offset_is_recovered_with_its_bytes(state, tmp_path):
    key = make_log(state, 3)
    pristine = tmp_path / "pristine"
    shutil.copytree(state, pristine)
    last = lines_of(segments(state)[0])[-1] + b"\n"
    for keep in sampled(range(1, len(last)), 40):  # keep == len(last) would be the whole line
        shutil.rmtree(state)
        shutil.copytree(pristine, state)
        path = segments(state)[0]
        path.write_bytes(path.read_bytes()[: -len(last) + keep])
        log = open_log(state)
        log.append("start")
        log.close()
        (aside,) = (state / "log").glob("torn-*.bin")
        assert aside.read_bytes() == last[:keep]
        records = [json.loads(line) for line in lines_of(path)]
        assert records[-2]["type"] == "recovery" and records[-2]["set_aside"] == aside.name
        assert found(state, key=key) == [], keep


def test_a_power_cut_mid_write_recovers_without_skipping_a_seq(state):
    key = make_log(state, 3)
    # Before the record's write finished, the key was not yet evolved: the state is for seq 4.
    with open(segments(state)[0], "ab") as f:
        f.write(b'{"boot":"x","h":"')
    log = open_log(state)
    log.close()
    recovery = json.loads(lines_of(segments(state)[0])[-1])
    assert recovery["type"] == "recovery" and recovery["seq"] == 4 and "skipped" not in recovery
    assert found(state, key=key) == []


@pytest.mark.parametrize("zeros", [1, 100, 4096])
def test_a_tail_of_zero_bytes_is_set_aside(state, zeros):
    key = make_log(state, 3)
    with open(segments(state)[0], "ab") as f:
        f.write(bytes(zeros))
    assert found(state, key=key) == [(4, "torn tail")]
    log = open_log(state)
    log.close()
    (aside,) = (state / "log").glob("torn-*.bin")
    assert aside.read_bytes() == bytes(zeros)
    assert found(state, key=key) == []


def test_a_crash_between_the_log_write_and_the_key_save_is_no_alarm(state):
    key = make_log(state, 3)
    before = (state / "keys" / "seal.json").read_bytes()
    log = open_log(state)
    log.append("bench", n=99)
    log.close()
    (state / "keys" / "seal.json").write_bytes(before)  # the evolved key never reached the disk
    assert found(state, key=key) == []
    log = open_log(state)
    log.append("bench", n=100)
    log.close()
    assert [r["type"] for r in read_records(state / "log")][-2:] == ["bench", "bench"]
    assert found(state, key=key) == []
    assert stolen_state(state).seq == 6


# -- key state -----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "corrupt", "ahead", "behind"])
def test_bad_key_state_fails_closed_and_says_how_to_reinitialise(state, damage):
    key = make_log(state, 3)
    path = state / "keys" / "seal.json"
    good = stolen_state(state)
    if damage == "missing":
        path.unlink()
    elif damage == "corrupt":
        path.write_bytes(path.read_bytes().replace(b'"seq":4', b'"seq":5'))
    elif damage == "ahead":
        sealing.save_state(state / "keys", sealing.KeyState(9, sealing.new_key(), "0" * 64))
    else:
        sealing.save_state(state / "keys", sealing.KeyState(2, KEY0, good.prev))
    before = segments(state)[0].read_bytes()
    log = open_log(state)
    with pytest.raises(AuditLogError, match="guardd log init"):
        log.append("start")
    assert segments(state)[0].read_bytes() == before
    assert found(state)  # verify sees it too
    new_key = log.rekey("test")
    log.append("start")
    log.close()
    rekey = json.loads(lines_of(segments(state)[0])[-2])
    assert rekey["type"] == "rekey" and rekey["seq"] == 4
    _, problems = verify(state / "log", keys=[key, new_key], key_dir=state / "keys")
    assert problems == []
    assert found(state, key=key, key_dir=False) == [(4, "modified"), (5, "modified")]


# -- disk full and I/O errors --------------------------------------------------------------------


class FailingOs:
    """The log's view of the os module (guardd.auditlog.files.os) with chosen calls failing; the rest is real.
    `times` bounds how often each fails (None: always)."""

    def __init__(self, times=None, **failures):
        self.failures = failures
        self.times = times

    def __getattr__(self, name):
        if self.failures.get(name) and self.times != 0:
            err = self.failures[name]

            def fail(*args, **kwargs):
                if self.times is not None:
                    self.times -= 1
                raise OSError(err, os.strerror(err))

            return fail
        return getattr(os, name)


def test_disk_full_releases_the_reserve_to_record_the_fault_and_refuses_the_rest(state, monkeypatch):
    key = make_log(state, 2)
    log = open_log(state)
    reserve = state / "log" / log_files.RESERVE_NAME
    assert reserve.stat().st_size == log_files.RESERVE_BYTES
    before = segments(state)[0].read_bytes()
    fake = FailingOs(write=errno.ENOSPC, posix_fallocate=errno.ENOSPC)
    real_write = os.write
    full = [True]

    def write(fd, data):  # the disk is full, bar the reserve's space once it is released
        if full[0] and reserve.exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    fake.write = write
    patch_log_disk(monkeypatch, fake)
    with pytest.raises(AuditLogError, match="No space left"):
        log.append("request", id="r1")
    after = segments(state)[0].read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1  # no partial record
    assert b'"request"' not in after
    assert not reserve.exists()
    fault = json.loads(lines_of(segments(state)[0])[-1])  # the reserve's space held the fault itself
    assert fault["type"] == "fault" and "disk full" in fault["reason"] and fault["seq"] == 3
    log.append("fault", reason="still full")  # fault records go on; nothing else does
    with pytest.raises(AuditLogError, match="disk .* is full"):
        log.append("request", id="r2")
    fake.failures["posix_fallocate"] = None  # space was freed
    full[0] = False
    log.append("request", id="r3")
    assert reserve.exists()
    log.close()
    assert [r["type"] for r in read_records(state / "log")][-2:] == ["fault", "request"]
    assert found(state, key=key) == []


@pytest.mark.parametrize("call", ["write", "fdatasync"])
def test_an_io_error_accepts_no_partial_record(state, monkeypatch, call):
    key = make_log(state, 2)
    log = open_log(state)
    before, head = segments(state)[0].read_bytes(), log.head
    patch_log_disk(monkeypatch, FailingOs(times=1, **{call: errno.EIO}))
    with pytest.raises(AuditLogError, match="Input/output error"):
        log.append("request", id="r1")
    monkeypatch.undo()
    assert segments(state)[0].read_bytes() == before and log.head == head
    log.append("request", id="r1")
    log.close()
    assert found(state, key=key) == []


def test_a_key_save_that_fails_lets_the_record_stand_and_refuses_the_next(state, monkeypatch):
    key = make_log(state, 2)
    log = open_log(state)
    monkeypatch.setattr(durable, "os", FailingOs(fsync=errno.EIO))  # where the key state is written
    log.append("bench", n=1)  # durable and sealed; the key state lags by one record
    with pytest.raises(AuditLogError, match="sealing key"):
        log.append("bench", n=2)
    monkeypatch.undo()
    log.close()
    assert found(state, key=key) == []  # the lag of one is the crash window: no alarm
    log = open_log(state)
    log.append("bench", n=3)
    log.close()
    assert found(state, key=key) == []


# -- time ----------------------------------------------------------------------------------------


def test_the_wall_clock_going_backwards_breaks_nothing(state):
    walls = iter([1_800_000_000.0 - 3600 * 7 * i for i in range(100)])
    log = open_log(state, wall_clock=lambda: next(walls))
    key = log.verification_key
    for i in range(20):
        log.append("bench", n=i)
    log.close()
    records = list(read_records(state / "log"))
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert len(segments(state)) > 1  # a segment never spans two dates, whichever way time went
    assert found(state, key=key) == []


# -- the verifier on anything --------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segments_=st.lists(st.binary(max_size=600), min_size=1, max_size=3),
    key_state=st.one_of(st.none(), st.binary(max_size=300)),
)
def test_random_bytes_into_the_verifier_always_give_a_verdict(tmp_path, segments_, key_state):
    directory = tmp_path / "fuzz"
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "log").mkdir(parents=True)
    (directory / "keys").mkdir()
    for i, data in enumerate(segments_):
        (directory / "log" / segment_name(i + 1)).write_bytes(data)
    if key_state is not None:
        (directory / "keys" / "seal.json").write_bytes(key_state)
    count, problems = verify(directory / "log", keys=["vk1-1-" + KEY0.hex()], key_dir=directory / "keys",
                             head="3:" + "a" * 64)
    assert all(str(p) for p in problems)
    assert not any(p.detail.startswith("the log could not be checked") for p in problems), problems
    if any(segments_):
        assert problems


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_damage_to_a_real_log_is_always_reported(tmp_path, data):
    directory = tmp_path / "real"
    if not directory.exists():
        global _REAL_KEY
        _REAL_KEY = make_log(directory, 4)
        shutil.copytree(directory, tmp_path / "pristine")
    shutil.rmtree(directory)
    shutil.copytree(tmp_path / "pristine", directory)
    path = segments(directory)[0]
    original = path.read_bytes()
    at = data.draw(st.integers(0, len(original) - 1))
    cut = data.draw(st.integers(0, 40))
    insert = data.draw(st.binary(max_size=40))
    damaged = original[:at] + insert + original[at + cut :]
    if damaged == original:
        return
    path.write_bytes(damaged)
    assert found(directory, key=_REAL_KEY)


_REAL_KEY = ""
