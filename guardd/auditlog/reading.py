"""Reading the audit log: its records in order, and the first and last of a segment. Nothing here
says whether they can be trusted; auditlog/verify.py does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from guardd.auditlog.format import MAX_LINE_BYTES, segment_paths
from guardd.durable import open_regular
from guardd.errors import AuditLogError


def last_line(path: Path) -> bytes | None:
    """The last complete line of a file (without its newline), or None if there is none."""
    try:
        with open_regular(path) as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 2 * MAX_LINE_BYTES - 2))
            tail = f.read()
    except FileNotFoundError:
        return None
    end = tail.rfind(b"\n")
    if end < 0:
        return None
    return tail[:end].rsplit(b"\n", 1)[-1]


def last_record(path: Path) -> dict[str, Any] | None:
    line = last_line(path)
    try:
        record = json.loads(line) if line else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def first_record(path: Path) -> dict[str, Any] | None:
    try:
        with open_regular(path) as f:
            line = f.readline(MAX_LINE_BYTES + 1)
    except FileNotFoundError:
        return None
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def segment_records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        f = open_regular(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AuditLogError(f"{path}: {exc.strerror}; guardd reads only the segments it wrote") from None
    with f:
        yield from parse_records(f)


def parse_records(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The records among `lines` that parse as JSON objects; others are skipped (verify reports them)."""
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def read_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record that parses, in file order (verify() says whether they can be trusted)."""
    for path in segment_paths(Path(directory)):
        yield from segment_records(path)
