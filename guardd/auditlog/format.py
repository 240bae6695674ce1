"""The audit log's format, which the writer and the verifier share. docs/log.md
is its specification.

A log is a directory of segment files, `segment-NNNNNN.jsonl`, each a sequence of canonical JSON
lines (sorted keys, no spaces, ASCII, values integers or strings only), so one record has exactly
one byte representation. `h` = SHA-256(DOMAIN || prev || "\n" || canonical record without `h`
and `mac`); `prev` is the previous record's `h`, 64 zeros for the first.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOMAIN = b"guardd-log-v1\n"
GENESIS = "0" * 64
SEGMENT_PREFIX = "segment-"
SEGMENT_SUFFIX = ".jsonl"
MAX_LINE_BYTES = 64 * 1024  # a record longer than this is refused, and rejected by verify
RESERVED_FIELDS = ("type", "seq", "prev", "h", "mac", "wall_ms", "mono_us", "boot")
# Every type a record can have; `guardd log --type` takes these, and docs/log.md lists them.
RECORD_TYPES = (
    "start", "stop", "reload", "wake", "utterance", "discard", "deleted", "request", "refused",
    "announce", "decision", "send", "sent", "unfinished", "fault", "recovered", "mute", "unmute",
    "recovery", "segment", "retention", "rekey", "bench", "peer", "peer_ignored", "transcript",
    "reply", "peer_audio", "sound_end", "pipeline", "timer",
)
INT_FIELDS = ("seq", "wall_ms", "mono_us")  # what the writer adds to every record
STR_FIELDS = ("type", "boot")
HEX64 = re.compile(r"[0-9a-f]{64}")


def canonical(record: dict[str, Any]) -> bytes:
    """The one byte encoding of a record: sorted keys, no spaces, ASCII, ints and strings only."""
    for key, value in record.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"log field {key!r}: only integers and strings are logged (got {value!r})")
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def check_fields(type_: str, fields: dict[str, Any]) -> None:
    """A record the caller asks for must be of a known type and leave the log's own fields alone."""
    if type_ not in RECORD_TYPES:
        raise TypeError(f"{type_!r} is not a record type; add it to RECORD_TYPES and docs/log.md")
    clash = [k for k in fields if k in RESERVED_FIELDS]
    if clash:
        raise TypeError(f"log field {clash[0]!r} is set by the log itself")


def record_hash(prev: str, body: dict[str, Any]) -> str:
    """h over the domain tag, the previous hash and the record without its `h` and `mac`."""
    body = {k: v for k, v in body.items() if k not in ("h", "mac")}
    return hashlib.sha256(DOMAIN + prev.encode() + b"\n" + canonical(body)).hexdigest()


def segment_number(path: Path) -> int | None:
    name = path.name
    if not (name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)):
        return None
    digits = name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
    return int(digits) if digits.isdigit() and digits.isascii() else None


def segment_name(number: int) -> str:
    return f"{SEGMENT_PREFIX}{number:06d}{SEGMENT_SUFFIX}"


def segment_paths(directory: Path) -> list[Path]:
    """Segment files in log order (by number, not by name: numbers may outgrow six digits)."""
    if not directory.is_dir():
        return []
    found = [(n, p) for p in directory.iterdir() if (n := segment_number(p)) is not None]
    return [p for _, p in sorted(found)]


@dataclass(frozen=True)
class Head:
    seq: int
    h: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.h}"


def parse_head(text: str) -> tuple[int, str]:
    """`SEQ:H` as `guardd log --head` prints it. ValueError names what is wrong."""
    seq, sep, h = text.strip().partition(":")
    if not sep or not seq.isdigit() or not HEX64.fullmatch(h):
        raise ValueError("a head is SEQ:H, as `guardd log --head` prints it (H: 64 lowercase hex digits)")
    return int(seq), h
