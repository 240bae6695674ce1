"""What the writer finds when it opens a log: a torn tail to set aside, the head, and whether
the saved sealing key belongs to that head. Nothing here is repaired silently: a torn last line
is moved aside byte for byte, and any other damage raises LogIntegrityError.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardd.auditlog import sealing
from guardd.auditlog.format import GENESIS, MAX_LINE_BYTES, Head, canonical, segment_paths
from guardd.auditlog.reading import first_record, last_line
from guardd.durable import fsync_dir, open_regular
from guardd.errors import LogIntegrityError


def torn_tail(path: Path) -> bytes:
    """The bytes after the last newline of the current segment: a record that never finished."""
    try:
        with open_regular(path) as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - MAX_LINE_BYTES - 1))
            tail = f.read()
    except FileNotFoundError:
        return b""
    cut = tail.rfind(b"\n") + 1
    if cut == 0 and size > len(tail):
        raise LogIntegrityError(f"{path} ends in more than {MAX_LINE_BYTES} bytes without a newline; run `guardd verify`")
    return tail[cut:]


def has_history(directory: Path) -> bool:
    """True if this directory ever held records: then a missing key is lost, not new."""
    return any(p.stat().st_size for p in segment_paths(directory)) or any(directory.glob("torn-*.bin"))


def set_aside(path: Path, torn: bytes, wall_s: float) -> str:
    """Move a torn tail into its own file, durably, and cut it off the segment; the file's name."""
    # Never overwrite an earlier torn tail: a Pi without a real-time clock repeats its times.
    stem = f"torn-{int(wall_s)}-{path.stem}"
    n = 0
    while (aside := path.parent / f"{stem}{f'-{n}' if n else ''}.bin").exists():
        n += 1
    with open(aside, "xb") as f:
        f.write(torn)
        f.flush()
        os.fsync(f.fileno())
    os.truncate(path, path.stat().st_size - len(torn))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return aside.name


def find_head(segments: list[Path], current: Path) -> tuple[Head, dict[str, Any] | None, dict[str, Any] | None]:
    """The head (the last complete record, in the newest segment that has one), that record, and
    the first record of the current segment (None when it is empty)."""
    first = first_record(current) if segments else None
    for path in reversed(segments):
        last = last_line(path)
        if last is None:
            continue
        try:
            record = json.loads(last)
            head = Head(int(record["seq"]), str(record["h"]))
            encoded = canonical(record)  # TypeError for floats, bools or nested values
        except (ValueError, KeyError, TypeError, RecursionError, AttributeError):
            raise LogIntegrityError(
                f"the last record of {path} is damaged; run `guardd verify` to see where. "
                "guardd will not write after a damaged record"
            ) from None
        if encoded != last:
            raise LogIntegrityError(f"the last record of {path} is not canonical; run `guardd verify`")
        return head, record, first
    return Head(0, GENESIS), None, first



@dataclass(frozen=True)
class KeyCheck:
    """How the saved key state stands against the log's head."""

    key: bytes | None = None  # the key for the next record, when it can be written
    evolved: bool = False  # the key had to be ratcheted once (and saved again)
    skip: int | None = None  # a seq lost with a cut last record: the recovery record names it
    wrong: str | None = None  # why the key does not belong to this log


def check_key(state: sealing.KeyState, head: Head, last: dict[str, Any] | None, torn: bool) -> KeyCheck:
    position = state.position(head.seq, head.h, str(last.get("prev")) if last else GENESIS)
    if position == "next":
        return KeyCheck(key=state.key)
    if position == "last" and last is not None and last.get("mac") == sealing.seal(state.key, head.h):
        # The record was durable but the process stopped before the evolved key was saved.
        return KeyCheck(key=sealing.next_key(state.key), evolved=True)
    if position == "ahead" and torn and state.seq == head.seq + 2:
        # The last record was complete and sealed, then cut (its bytes are the torn tail): its
        # key is gone, so the recovery record takes the next seq and names the one it skips.
        return KeyCheck(key=state.key, skip=head.seq + 1)
    if position == "ahead":
        why = f"the log ends at seq {head.seq} but the sealing key is for seq {state.seq}: records were removed"
    elif state.seq <= head.seq:
        why = f"the log goes on to seq {head.seq} past the sealing key (for seq {state.seq}): records were added without it"
    else:
        why = f"record {head.seq} is not the one the sealing key was evolved after: the log was rewritten"
    return KeyCheck(wrong=why)
