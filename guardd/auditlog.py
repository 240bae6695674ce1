"""The append-only audit log: canonical JSON lines, each chained to the one before by SHA-256 and
durable (fdatasync) before append() returns, so the action a record describes can follow it.

Invariants the writer keeps, and verify() checks:
- every line is the canonical encoding of its record (sorted keys, no spaces, ASCII, values are
  integers or strings only), so one record has exactly one byte representation;
- `seq` starts at 1 and grows by one per record, across segment files; order comes from `seq`,
  never from time (a Pi without a real-time clock may boot in 1970);
- `prev` is the previous record's `h` (64 zeros for the first), and
  `h` = SHA-256(DOMAIN || prev || "\n" || canonical record without `h`);
- one os.write() per record on an O_APPEND descriptor, then fdatasync, so a crash leaves at most
  one torn line at the very end, never a hole in the middle.
A torn last line (power loss mid-write) is moved aside byte for byte at open and a `recovery`
record names it; damage anywhere else is an alarm and is never repaired.
The log never holds audio: records carry hashes, sizes and times.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from guardd.errors import AuditLogError, LogIntegrityError

DOMAIN = b"guardd-log-v1\n"
GENESIS = "0" * 64
SEGMENT_PREFIX = "segment-"
SEGMENT_SUFFIX = ".jsonl"
MAX_LINE_BYTES = 64 * 1024  # a record longer than this is refused, and rejected by verify


def canonical(record: dict[str, Any]) -> bytes:
    """The one byte encoding of a record: sorted keys, no spaces, ASCII, ints and strings only."""
    for key, value in record.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"log field {key!r}: only integers and strings are logged (got {value!r})")
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_hash(prev: str, body: dict[str, Any]) -> str:
    """h over the domain tag, the previous hash and the record without its own `h`."""
    return hashlib.sha256(DOMAIN + prev.encode() + b"\n" + canonical(body)).hexdigest()


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def segment_paths(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")
        if p.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)].isdigit()
    )


@dataclass(frozen=True)
class Head:
    seq: int
    h: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.h}"


class AuditLog:
    """The single writer of one log directory (an exclusive lock keeps a second one out)."""

    def __init__(
        self,
        directory: Path,
        *,
        wall_clock: Callable[[], float] = time.time,
        mono_clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.directory = directory
        self._wall = wall_clock
        self._mono = mono_clock
        self._boot = boot_id()
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._broken: str | None = None  # why appends are refused after an unrepaired failed write
        self.head = Head(0, GENESIS)
        self.recovered: list[str] = []  # names of torn tails set aside at open

    # -- opening -------------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AuditLogError(f"cannot open the log directory {self.directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise AuditLogError(
                f"another guardd process is writing the log in {self.directory}; "
                "stop it first (systemctl stop guardd) or use another state_dir"
            ) from None
        segments = segment_paths(self.directory)
        path = segments[-1] if segments else self.directory / f"{SEGMENT_PREFIX}{1:06d}{SEGMENT_SUFFIX}"
        self._recover_torn_tail(path)
        self.head = self._read_head(path)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditLogError(f"cannot open {path}: {exc.strerror}") from exc
        for name in self.recovered:
            self.append("recovery", set_aside=name)

    def _recover_torn_tail(self, path: Path) -> None:
        """Move bytes after the last newline aside: they are a record whose write never finished."""
        if not path.exists():
            return
        with open(path, "rb") as f:
            data = f.read()
        cut = data.rfind(b"\n") + 1
        if cut == len(data):
            return
        torn = data[cut:]
        # Never overwrite an earlier torn tail: a Pi without a real-time clock repeats its times.
        stem = f"torn-{int(self._wall())}-{path.stem}"
        n = 0
        while (aside := self.directory / f"{stem}{f'-{n}' if n else ''}.bin").exists():
            n += 1
        with open(aside, "xb") as f:
            f.write(torn)
            f.flush()
            os.fsync(f.fileno())
        os.truncate(path, cut)
        _fsync_dir(self.directory)
        self.recovered.append(aside.name)

    def _read_head(self, path: Path) -> Head:
        if not path.exists() or path.stat().st_size == 0:
            return Head(0, GENESIS)
        last = _last_line(path)
        try:
            record = json.loads(last)
            head = Head(int(record["seq"]), str(record["h"]))
            encoded = canonical(record)  # TypeError for floats, bools or nested values
        except (ValueError, KeyError, TypeError, RecursionError):
            raise LogIntegrityError(
                f"the last record of {path} is damaged; run `guardd verify` to see where. "
                "guardd will not write after a damaged record"
            ) from None
        if encoded != last:
            raise LogIntegrityError(f"the last record of {path} is not canonical; run `guardd verify`")
        return head

    # -- writing -------------------------------------------------------------------------------

    def append(self, type_: str, **fields: int | str) -> dict[str, Any]:
        """Write one record and make it durable. On AuditLogError the action must not happen; the
        file and head are as they were (if that cannot be ensured, every later append is refused)."""
        if self._fd is None:
            raise AuditLogError("the log is not open")
        if self._broken:
            raise AuditLogError(f"the log could not be repaired after a failed write: {self._broken}")
        body: dict[str, Any] = dict(fields)
        body.update(
            type=type_,
            seq=self.head.seq + 1,
            prev=self.head.h,
            wall_ms=int(self._wall() * 1000),
            mono_us=self._mono() // 1000,
            boot=self._boot,
        )
        body["h"] = record_hash(self.head.h, body)
        line = canonical(body) + b"\n"
        if len(line) > MAX_LINE_BYTES:
            raise AuditLogError(f"log record {type_} is {len(line)} bytes, over the limit")
        size = None
        try:
            size = os.fstat(self._fd).st_size
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.EIO, "short write to the log")
            os.fdatasync(self._fd)
        except OSError as exc:
            # The head stays where it was, so the file must too: a record whose append failed
            # would otherwise be followed by a second record with the same seq. If the cut-back
            # fails, refuse every later append (a partial line is a torn tail for the next start).
            if size is not None:
                try:
                    os.ftruncate(self._fd, size)
                    os.fdatasync(self._fd)
                except OSError as undo:
                    self._broken = undo.strerror or str(undo)
            raise AuditLogError(f"cannot write the log: {exc.strerror or exc}") from exc
        self.head = Head(body["seq"], body["h"])
        return body

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_line(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - MAX_LINE_BYTES - 1))
        tail = f.read()
    return tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]


# -- reading and verifying -----------------------------------------------------------------------


def read_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record that parses, in file order (verify() says whether they can be trusted)."""
    for path in segment_paths(directory):
        with open(path, "rb") as f:
            for line in f:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


@dataclass(frozen=True)
class Problem:
    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "log"
        return f"{where}: {self.kind}: {self.detail}"


def verify(directory: Path) -> tuple[int, list[Problem]]:
    """Check every line of every segment; return (records checked, problems found)."""
    problems: list[Problem] = []
    expected_seq, prev = 1, GENESIS
    count = 0
    segments = segment_paths(directory)
    if not segments:
        return 0, [Problem(None, "missing", f"no log segments in {directory}")]
    for path in segments:
        with open(path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        torn = lines.pop() != b""  # the bytes after the last newline: b"" when the file is whole
        for raw in lines:
            count += 1
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                seq, h = record["seq"], record["h"]
                body = {k: v for k, v in record.items() if k != "h"}
                encoded = canonical(record)
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                problems.append(Problem(expected_seq, "unreadable", f"{path.name}: {exc}"))
                expected_seq += 1
                prev = "?"
                continue
            if encoded != raw:
                problems.append(Problem(seq, "not canonical", f"{path.name}: bytes differ from the canonical encoding"))
            if seq != expected_seq:
                kind = "gap" if isinstance(seq, int) and seq > expected_seq else "reordered or replayed"
                problems.append(Problem(seq, kind, f"expected seq {expected_seq}"))
            if prev != "?" and record.get("prev") != prev:
                problems.append(Problem(seq, "broken chain", "prev does not match the record before"))
            if record_hash(str(record.get("prev")), body) != h:
                problems.append(Problem(seq, "modified", "h does not match the record's contents"))
            expected_seq = seq + 1 if isinstance(seq, int) else expected_seq + 1
            prev = h
        if torn:  # named by the seq it would have had, after the lines before it are counted
            problems.append(Problem(expected_seq, "torn tail", f"{path.name} ends in a partial line"))
    return count, problems
