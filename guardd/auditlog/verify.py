"""The audit log verifier: reads every segment and reports each problem with the seq where it is.
It never repairs anything and never raises on bad input: any bytes give a list of verdicts.

Without a key it checks encoding, order, the hash chain and the links between segments; with the
owner's verification key(s) it also checks every record's seal; with a head noted elsewhere it
sees a cut or a rollback; with the device's key state it sees a cut the chain alone cannot.
An empty list of problems means all of these hold.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from guardd.auditlog import sealing
from guardd.auditlog.findings import Line, Problem, Walk
from guardd.auditlog.format import (
    GENESIS, HEX64, INT_FIELDS, STR_FIELDS, canonical, record_hash, segment_number, segment_paths,
)
from guardd.auditlog.seals import check_head, check_key_state, check_seal, keys_of_this_log
from guardd.durable import read_regular


def verify(
    directory: Path,
    *,
    keys: Iterable[str | tuple[int, bytes]] = (),
    head: str | tuple[int, str] | None = None,
    key_dir: Path | None = None,
) -> tuple[int, list[Problem]]:
    """Check every line of every segment; return (records checked, problems found)."""
    walk = Walk()
    try:
        count = _verify(Path(directory), walk, keys, head, key_dir)
    except Exception as exc:  # a verdict, never a traceback; it can never read as "intact"
        walk.add(None, "unreadable", f"the log could not be checked: {type(exc).__name__}: {exc}")
        count = 0
    return count, walk.problems


def _verify(directory: Path, walk: Walk, keys: Iterable[Any], head: Any, key_dir: Path | None) -> int:
    epochs = sorted(
        (k if isinstance(k, tuple) else sealing.parse_verification_key(k) for k in keys),
        key=lambda e: e[0],
    )
    paths = segment_paths(directory)
    if not paths:
        walk.add(None, "missing", f"no log segments in {directory}")
        return 0
    lines, torn = _read(paths, walk)
    ratchets = keys_of_this_log(epochs, lines, walk)
    remaining = Counter(line.seq for line in lines if line.seq is not None)
    expected, prev = _start(paths, lines, walk)
    seen: set[int] = set()
    last_h: str | None = prev
    by_segment: dict[int, list[tuple[int, str]]] = {}
    for i, line in enumerate(lines):
        record = line.record
        if line.seq is not None:
            remaining[line.seq] -= 1
        if i > 0 and line.segment != lines[i - 1].segment:
            _check_link(paths, lines[i - 1].segment, line, by_segment.get(lines[i - 1].segment, []), walk)
        if record is None or line.seq is None:
            walk.add(expected, "unreadable", f"{paths[line.segment].name}: not a log record: {line.raw[:60]!r}")
            expected += 1
            last_h = None
            continue
        seq, h = line.seq, record["h"]
        name = paths[line.segment].name
        skipped = record.get("skipped") if record.get("type") == "recovery" else None
        if seq != expected and not (skipped == expected and seq == expected + 1):
            if seq in seen:
                walk.add(seq, "replayed", f"{name}: seq {seq} appears again (expected {expected})")
            elif seq > expected and any(remaining[s] > 0 for s in range(expected, min(seq, expected + 10_000))):
                walk.add(seq, "reordered", f"{name}: seq {seq} comes before seq {expected}")
            elif seq > expected:
                walk.add(seq, "gap", f"{name}: seq {expected}..{seq - 1} missing")
            else:
                walk.add(seq, "reordered", f"{name}: seq {seq} comes after a later seq (expected {expected})")
        if last_h is not None and record["prev"] != last_h:
            walk.add(seq, "broken chain", f"{name}: prev does not match the record before")
        try:
            rehashed: str | None = record_hash(record["prev"], record)
        except TypeError:  # a float or nested value, already reported as not canonical
            rehashed = None
        if rehashed is not None and rehashed != h:
            walk.add(seq, "modified", f"{name}: h does not match the record's contents")
        check_seal(seq, record, ratchets, walk, name)
        seen.add(seq)
        expected = max(expected, seq + 1)
        last_h = h
        by_segment.setdefault(line.segment, []).append((seq, h))
    for index in torn:
        seq = _seq_after(lines, index)
        walk.add(seq, "torn tail", f"{paths[index].name} ends in a partial line")
    good = [(line.seq, line.record["h"]) for line in lines if line.record is not None and line.seq is not None]
    if head is not None:
        check_head(head, good, walk)
    if key_dir is not None:
        check_key_state(key_dir, good, lines, ratchets, walk)
    return len(lines)


def _read(paths: list[Path], walk: Walk) -> tuple[list[Line], list[int]]:
    lines: list[Line] = []
    torn: list[int] = []  # indexes of segments that end in a partial line
    for index, path in enumerate(paths):
        try:
            data = read_regular(path)  # never through a symlink, never blocking on a FIFO
        except OSError as exc:
            walk.add(None, "unreadable", f"{path.name}: {exc.strerror or exc}: refused")
            continue
        parts = data.split(b"\n")
        if parts.pop() != b"":
            torn.append(index)
        for raw in parts:
            line = Line(index, raw)
            line.record, line.seq = _parse(raw, path.name, walk)
            lines.append(line)
    return lines, torn


def _parse(raw: bytes, name: str, walk: Walk) -> tuple[dict[str, Any] | None, int | None]:
    """A record whose fields have the right types, or (None, None); encoding problems reported."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(record, dict):
        return None, None
    seq = record.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None, None
    if not all(isinstance(record.get(k), str) and HEX64.fullmatch(record[k]) for k in ("h", "prev")):
        if all(isinstance(record.get(k), str) for k in ("h", "prev")):
            walk.add(seq, "not canonical", f"{name}: h and prev must be 64 lowercase hex digits")
            record = {**record, "h": record["h"].lower(), "prev": record["prev"].lower()}
            if not all(HEX64.fullmatch(record[k]) for k in ("h", "prev")):
                return None, None
        else:
            return None, None
    try:
        encoded = canonical(record)
    except TypeError as exc:
        walk.add(seq, "not canonical", f"{name}: {exc}")
        return record, seq
    if encoded != raw and not any(p.seq == seq and p.kind == "not canonical" for p in walk.problems[-1:]):
        walk.add(seq, "not canonical", f"{name}: bytes differ from the canonical encoding")
    missing = [k for k in (*INT_FIELDS, *STR_FIELDS) if k not in record]
    if missing:
        walk.add(seq, "unreadable", f"{name}: no {', '.join(missing)}")
    return record, seq


def _start(paths: list[Path], lines: list[Line], walk: Walk) -> tuple[int, str | None]:
    """The seq and prev the first surviving record must have."""
    first_number = segment_number(paths[0]) or 1
    first = next((line for line in lines if line.record is not None and line.seq is not None), None)
    if first_number == 1:
        return 1, GENESIS
    retentions = [
        line.record for line in lines
        if line.record is not None and line.record.get("type") == "retention"
        and isinstance(line.record.get("next_seq"), int) and isinstance(line.record.get("next_prev"), str)
    ]
    for record in reversed(retentions):
        through = segment_number(paths[0].parent / str(record.get("deleted_through")))
        start = segment_number(paths[0].parent / str(record.get("deleted_from"))) or 1
        if through == first_number - 1:
            return int(record["next_seq"]), str(record["next_prev"])
        if through is not None and start <= first_number <= through:
            break  # deletion interrupted by a crash: the first segment's start cannot be checked
    else:
        walk.add(
            first.seq if first else None, "segment missing",
            f"segments before {paths[0].name} are gone without a retention record",
        )
    if first is None:
        return 1, None
    return first.seq or 1, None


def _check_link(paths: list[Path], prev_index: int, line: Line, prev_records: list[tuple[int, str]], walk: Walk) -> None:
    name = paths[line.segment].name
    prev_name = paths[prev_index].name
    gap = (segment_number(paths[line.segment]) or 0) - (segment_number(paths[prev_index]) or 0)
    if gap != 1:
        walk.add(line.seq, "segment missing", f"{gap - 1} segment(s) between {prev_name} and {name} are gone")
    r = line.record
    if r is None or r.get("type") != "segment":
        walk.add(line.seq, "segment link", f"{name} does not open with a segment record")
        return
    link = (r.get("previous_seq"), r.get("previous_h"))
    if r.get("previous") != prev_name and gap == 1:
        walk.add(line.seq, "segment link", f"{name} names {r.get('previous')!r} before it, not {prev_name}")
    if prev_records and link != prev_records[-1]:
        if link in prev_records:
            after = prev_records[prev_records.index(link) + 1][0]
            walk.add(after, "appended to a closed segment", f"{prev_name} goes on after the record {name} links to")
        else:
            walk.add(line.seq, "segment link", f"{name} links to seq {link[0]}, which {prev_name} does not end with")


def _seq_after(lines: list[Line], index: int) -> int:
    before = [line.seq for line in lines if line.segment <= index and line.seq is not None]
    return (max(before) if before else 0) + 1
