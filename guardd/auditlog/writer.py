"""The audit log writer: canonical JSON lines, hash-chained, sealed under a forward-secure key,
durable (fdatasync) before append() returns, rotated into segments and pruned only after a
`retention` record. README.md ("The audit log") is the format's specification; logverify.py
checks it.

Invariants the writer keeps:
- every line is the canonical encoding of its record (sorted keys, no spaces, ASCII, values are
  integers or strings only), so one record has exactly one byte representation;
- `seq` starts at 1 and grows by one per record across segment files; order comes from `seq`,
  never from time (a Pi without a real-time clock may boot in 1970);
- `h` = SHA-256(DOMAIN || prev || "\n" || canonical record without `h` and `mac`), `prev` is the
  previous record's `h` (64 zeros for the first), `mac` = HMAC(K_seq, ...) (see sealing.py);
- one os.write() per record on an O_APPEND descriptor, then fdatasync, and only then is the key
  ratcheted and its state saved: the key state is for seq head+1, or for seq head in the window
  between the two writes (open() checks that record's seal and ratchets once);
- a failed write leaves the file and head as they were (the file is cut back), or every later
  append is refused;
- a torn last line is moved aside byte for byte at open and a `recovery` record names it; damage
  anywhere else is an alarm and is never repaired;
- a segment after the first opens with a `segment` record naming the previous file and its last
  (seq, h); whole segments are deleted only after a durable `retention` record names them;
- a reserve file of RESERVE_BYTES is kept; when the disk is full it is released so the fault can
  be recorded, and until it can be re-made only fault and stop records are written.
The log never holds audio: records carry hashes, sizes and times.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from guardd.auditlog import sealing
from guardd.durable import fsync_dir, open_regular
from guardd.errors import AuditLogError, LogIntegrityError

log = logging.getLogger(__name__)

DOMAIN = b"guardd-log-v1\n"
GENESIS = "0" * 64
SEGMENT_PREFIX = "segment-"
SEGMENT_SUFFIX = ".jsonl"
MAX_LINE_BYTES = 64 * 1024  # a record longer than this is refused, and rejected by verify
RESERVE_NAME = ".reserve"
RESERVE_BYTES = 64 * 1024  # room for the fault record (and the key state) when the disk is full
RESERVED_FIELDS = ("type", "seq", "prev", "h", "mac", "wall_ms", "mono_us", "boot")
# Every type a record can have; `guardd log --type` takes these, and the README lists them.
RECORD_TYPES = (
    "start", "stop", "reload", "wake", "utterance", "discard", "deleted", "request", "refused",
    "decision", "send", "sent", "unfinished", "fault", "recovered", "mute", "unmute",
    "recovery", "segment", "retention", "rekey", "bench",
)
LOW_SPACE_TYPES = ("fault", "stop")
BySeq = Callable[[int], "int | str"]  # a field made from the seq its record gets  # what is still written while the reserve is in use
DAY_MS = 86_400_000
REINIT = "run `guardd log init` (with guardd stopped) to start a new sealing key, and keep the key it prints"


def canonical(record: dict[str, Any]) -> bytes:
    """The one byte encoding of a record: sorted keys, no spaces, ASCII, ints and strings only."""
    for key, value in record.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"log field {key!r}: only integers and strings are logged (got {value!r})")
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_hash(prev: str, body: dict[str, Any]) -> str:
    """h over the domain tag, the previous hash and the record without its `h` and `mac`."""
    body = {k: v for k, v in body.items() if k not in ("h", "mac")}
    return hashlib.sha256(DOMAIN + prev.encode() + b"\n" + canonical(body)).hexdigest()


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


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


@dataclass(frozen=True)
class Rotation:
    """When segments are closed and old ones deleted (config.LogConfig has the same fields)."""

    segment_max_bytes: int = 1_000_000
    max_segments: int = 100
    max_age_days: float = 365.0


class AuditLog:
    """The single writer of one log directory (an exclusive lock keeps a second one out)."""

    def __init__(
        self,
        directory: Path,
        *,
        key_dir: Path | None = None,
        rotation: Any = None,
        wall_clock: Callable[[], float] = time.time,
        mono_clock: Callable[[], int] = time.monotonic_ns,
        announce_key: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.key_dir = Path(key_dir) if key_dir is not None else self.directory.parent / "keys"
        self.rotation = rotation or Rotation()
        self._wall = wall_clock
        self._mono = mono_clock
        self._boot = boot_id()
        self._announce_key = announce_key  # print a new verification key to stderr (the journal)
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._broken: str | None = None  # why appends are refused after an unrepaired failed write
        self._unsealed: str | None = None  # why there is no usable key (lost, corrupt, mismatched)
        self._key: bytes | None = None  # K_{head.seq+1}
        self._key_unsaved = False  # the ratchet moved on but its state is not yet on disk
        self._low_space = False  # the reserve was released
        self._number = 1  # the current segment's number
        self._segment_day: int | None = None
        self._needs_link = False  # the current segment has no `segment` record yet
        self.head = Head(0, GENESIS)
        self.recovered: list[str] = []  # names of torn tails set aside at open
        self.verification_key: str | None = None  # set when open() or rekey() made a new key
        self._last_record: dict[str, Any] | None = None
        self._skip: int | None = None  # a seq lost with a cut last record (see _check_key_state)

    @property
    def path(self) -> Path:
        return self.directory / segment_name(self._number)

    # -- opening -------------------------------------------------------------------------------

    def open(self) -> None:
        """Lock, recover a torn tail, find the head, check the key state. A missing or corrupt
        key leaves the log open but unsealed: every append raises until `rekey()`."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
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
        try:
            self._open_locked()
        except BaseException:
            self.close()
            raise

    def _open_locked(self) -> None:
        segments = segment_paths(self.directory)
        self._number = segment_number(segments[-1]) if segments else 1
        torn = self._torn_tail(self.path)
        self.head, first = self._find_head(segments)
        self._check_key_state(torn_seq=self.head.seq + 1 if torn else None)
        if torn and self._unsealed is None:
            self._set_aside(self.path, torn)
        self._segment_day = None if first is None else int(first.get("wall_ms", 0)) // DAY_MS
        self._needs_link = first is None and self._number > 1
        self._open_segment(create=not segments)
        self._make_reserve()
        self._finish_retention()
        if self._unsealed is None:
            self._write_recoveries()

    def _torn_tail(self, path: Path) -> bytes:
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

    def _set_aside(self, path: Path, torn: bytes) -> None:
        # Never overwrite an earlier torn tail: a Pi without a real-time clock repeats its times.
        stem = f"torn-{int(self._wall())}-{path.stem}"
        n = 0
        while (aside := self.directory / f"{stem}{f'-{n}' if n else ''}.bin").exists():
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
        fsync_dir(self.directory)
        self.recovered.append(aside.name)

    def _find_head(self, segments: list[Path]) -> tuple[Head, dict[str, Any] | None]:
        """The last complete record (in the newest segment that has one), and the first record of
        the current segment (None when it is empty)."""
        first = _first_record(self.path) if segments else None
        for path in reversed(segments):
            last = _last_line(path)
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
            self._last_record = record
            return head, first
        self._last_record = None
        return Head(0, GENESIS), first

    def _check_key_state(self, torn_seq: int | None) -> None:
        try:
            state = sealing.load_state(self.key_dir)
        except FileNotFoundError:
            if self.head.seq == 0 and torn_seq is None and not self._has_history():
                self._start_epoch(1, GENESIS)
                return
            self._unsealed = f"the sealing key state ({self.key_dir / sealing.STATE_NAME}) is missing; {REINIT}"
            return
        except (sealing.KeyStateError, OSError) as exc:
            self._unsealed = f"the sealing key state is unreadable: {exc}; {REINIT}"
            return
        head = self.head
        if state.seq == head.seq + 1 and state.prev == head.h:
            self._key = state.key
            return
        last = self._last_record
        if (
            state.seq == head.seq
            and last is not None
            and last.get("prev") == state.prev
            and last.get("mac") == sealing.seal(state.key, head.h)
        ):
            # The record was durable but the process stopped before the evolved key was saved.
            self._key = sealing.next_key(state.key)
            self._save_key()
            return
        if torn_seq is not None and state.seq == head.seq + 2:
            # The last record was complete and sealed, then cut (its bytes are the torn tail): its
            # key is gone, so the recovery record takes the next seq and names the one it skips.
            self._key = state.key
            self._skip = head.seq + 1
            return
        if state.seq > head.seq + 1:
            why = f"the log ends at seq {head.seq} but the sealing key is for seq {state.seq}: records were removed"
        elif state.seq <= head.seq:
            why = f"the log goes on to seq {head.seq} past the sealing key (for seq {state.seq}): records were added without it"
        else:
            why = f"record {head.seq} is not the one the sealing key was evolved after: the log was rewritten"
        self._unsealed = f"{why}; run `guardd verify`. guardd will not write to this log; {REINIT}"

    def _has_history(self) -> bool:
        """True if this directory ever held records: then a missing key is lost, not new."""
        return any(p.stat().st_size for p in segment_paths(self.directory)) or any(
            self.directory.glob("torn-*.bin")
        )

    def _start_epoch(self, seq: int, prev: str) -> None:
        key = sealing.new_key()
        self._key = key
        self._key_unsaved = True
        self._save_key()
        self.verification_key = sealing.format_verification_key(seq, key)
        if not self._announce_key:
            return
        log.warning(
            "guardd: new log sealing key. Write this verification key down and keep it off this "
            "device; `guardd verify --key KEY` checks the log with it. It is not shown again:\n%s",
            self.verification_key,
        )

    @property
    def unsealed(self) -> str | None:
        """Why appends are refused for want of a usable key (None when the key is fine)."""
        return self._unsealed

    def rekey(self, reason: str) -> str:
        """Start a new sealing epoch at head+1 after the key state was lost or found wrong: the
        `rekey` record is the first sealed with the new key. Returns the new verification key."""
        if self._fd is None:
            raise AuditLogError("the log is not open")
        if self._unsealed is None:
            raise AuditLogError("the sealing key is intact; there is nothing to re-initialise")
        torn = self._torn_tail(self.path)
        if torn:  # a torn tail left at open (unsealed logs are not touched) goes first
            self._set_aside(self.path, torn)
        self._unsealed = None
        self._start_epoch(self.head.seq + 1, self.head.h)
        self.append("rekey", reason=reason)
        self._write_recoveries()
        assert self.verification_key is not None
        return self.verification_key

    def _open_segment(self, create: bool) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            self._fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise AuditLogError(f"cannot open {self.path}: {exc.strerror}") from exc

    def _write_recoveries(self) -> None:
        while self.recovered:
            fields: dict[str, int | str] = {"set_aside": self.recovered[0]}
            if self._skip is not None:
                fields["skipped"] = self._skip
            self.append("recovery", **fields)
            self.recovered.pop(0)
            self._skip = None

    # -- the reserve ---------------------------------------------------------------------------

    def _make_reserve(self) -> bool:
        path = self.directory / RESERVE_NAME
        try:
            if not path.exists() or path.stat().st_size < RESERVE_BYTES:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    os.posix_fallocate(fd, 0, RESERVE_BYTES)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            path.unlink(missing_ok=True)
            log.warning("cannot keep the log's reserve file: %s", exc.strerror or exc)
            return False
        self._low_space = False
        return True

    def _release_reserve(self) -> None:
        self._low_space = True
        try:
            (self.directory / RESERVE_NAME).unlink(missing_ok=True)
        except OSError:
            pass

    # -- writing -------------------------------------------------------------------------------

    def append(self, type_: str, **fields: int | str | BySeq) -> dict[str, Any]:
        """Write one record and make it durable. On AuditLogError the action must not happen; the
        file and head are as they were (if that cannot be ensured, every later append is refused).

        A field may be a function of the record's own seq (a file or request named by it): the
        seq is known only here, after any `segment` or `retention` record a rotation writes first."""
        if self._fd is None:
            raise AuditLogError("the log is not open")
        if self._unsealed:
            raise AuditLogError(self._unsealed)
        if self._broken:
            raise AuditLogError(f"the log could not be repaired after a failed write: {self._broken}")
        if type_ not in RECORD_TYPES:
            raise TypeError(f"{type_!r} is not a record type; add it to RECORD_TYPES and the README")
        clash = [k for k in fields if k in RESERVED_FIELDS]
        if clash:
            raise TypeError(f"log field {clash[0]!r} is set by the log itself")
        if self._low_space and type_ not in LOW_SPACE_TYPES and not self._make_reserve():
            raise AuditLogError(
                f"the disk holding {self.directory} is full; free some space. "
                "Nothing is recorded or sent until the log can be written"
            )
        if self._key_unsaved:
            self._save_key()
        if not self._low_space:
            if self._needs_link or self._rotation_due():
                self._rotate()
        return self._write(type_, fields)

    def _rotation_due(self) -> bool:
        if self.head.seq == 0 or self._segment_day is None:
            return False
        if int(self._wall() * 1000) // DAY_MS != self._segment_day:
            return True  # a new day (or a clock that jumped): a segment never spans two dates
        try:
            return os.fstat(self._fd).st_size >= self.rotation.segment_max_bytes  # type: ignore[arg-type]
        except OSError:
            return False

    def _rotate(self) -> None:
        previous = self.path
        if not self._needs_link:
            assert self._fd is not None
            new_number = self._number + 1
            try:
                fd = os.open(
                    self.directory / segment_name(new_number),
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                )
                fsync_dir(self.directory)
            except OSError as exc:
                raise AuditLogError(f"cannot start a new log segment: {exc.strerror or exc}") from exc
            os.close(self._fd)
            self._fd, self._number, self._needs_link = fd, new_number, True
            self._segment_day = None
        else:
            previous = self.directory / segment_name(self._number - 1)
        self._write(
            "segment",
            {"previous": previous.name, "previous_seq": self.head.seq, "previous_h": self.head.h},
        )
        self._needs_link = False
        self._apply_retention()

    def _apply_retention(self) -> None:
        """Delete the oldest closed segments beyond the policy, after a `retention` record."""
        closed = [p for p in segment_paths(self.directory) if (segment_number(p) or 0) < self._number]
        keep_from = len(closed)
        by_count = max(0, len(segment_paths(self.directory)) - self.rotation.max_segments)
        now_ms = int(self._wall() * 1000)
        for i, path in enumerate(closed):
            last = _last_record(path)
            too_old = last is not None and now_ms - int(last.get("wall_ms", now_ms)) > self.rotation.max_age_days * DAY_MS
            if i < by_count or too_old:
                continue
            keep_from = i
            break
        if keep_from == 0:
            return
        doomed = closed[:keep_from]
        last = _last_record(doomed[-1])
        if last is None:
            return
        self._write(
            "retention",
            {
                "deleted_from": doomed[0].name,
                "deleted_through": doomed[-1].name,
                "next_seq": int(last["seq"]) + 1,
                "next_prev": str(last["h"]),
            },
        )
        self._finish_retention()

    def _finish_retention(self) -> None:
        """Delete segments a durable `retention` record names (also after a crash mid-way)."""
        through = None
        if self._number > 1:
            for record in _records(self.path):
                if record.get("type") == "retention":
                    through = segment_number(self.directory / str(record.get("deleted_through")))
        if through is None:
            return
        deleted = False
        for path in segment_paths(self.directory):
            number = segment_number(path)
            if number is not None and number <= through and number < self._number:
                path.unlink(missing_ok=True)
                deleted = True
        if deleted:
            fsync_dir(self.directory)

    def _write(self, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        assert self._fd is not None and self._key is not None
        seq = self.head.seq + (2 if self._skip is not None and type_ == "recovery" else 1)
        body: dict[str, Any] = {k: v(seq) if callable(v) else v for k, v in fields.items()}
        body.update(
            type=type_,
            seq=seq,
            prev=self.head.h,
            wall_ms=int(self._wall() * 1000),
            mono_us=self._mono() // 1000,
            boot=self._boot,
        )
        body["h"] = record_hash(self.head.h, body)
        body["mac"] = sealing.seal(self._key, body["h"])
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
            if exc.errno == errno.ENOSPC and not self._low_space and not self._broken:
                self._record_disk_full(type_)
            raise AuditLogError(f"cannot write the log: {exc.strerror or exc}") from exc
        self.head = Head(body["seq"], body["h"])
        if self._segment_day is None:
            self._segment_day = body["wall_ms"] // DAY_MS
        # The record is durable: evolve the key and forget the old one.
        self._key = sealing.next_key(self._key)
        self._key_unsaved = True
        try:
            self._save_key()
        except AuditLogError as exc:
            # The record stands (open() recovers a key state one record behind); the next append
            # retries the save first and is refused if it still fails, so the lag stays at one.
            log.warning("%s", exc)
        return body

    def _record_disk_full(self, refused: str) -> None:
        """The disk is full: release the reserve and spend it on recording that, once."""
        self._release_reserve()
        try:
            self._write("fault", {"reason": f"disk full: the log cannot be written ({refused} refused)"})
        except AuditLogError as exc:
            log.error("cannot record the disk-full fault: %s", exc)

    def _save_key(self) -> None:
        assert self._key is not None
        try:
            sealing.save_state(self.key_dir, sealing.KeyState(self.head.seq + 1, self._key, self.head.h))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self._release_reserve()
            raise AuditLogError(f"cannot save the log's sealing key: {exc.strerror or exc}") from exc
        self._key_unsaved = False

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None
        self._key = None


def _last_line(path: Path) -> bytes | None:
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


def _last_record(path: Path) -> dict[str, Any] | None:
    line = _last_line(path)
    try:
        record = json.loads(line) if line else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _first_record(path: Path) -> dict[str, Any] | None:
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


def _records(path: Path) -> Iterator[dict[str, Any]]:
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


# -- reading and verifying -----------------------------------------------------------------------


def read_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record that parses, in file order (verify() says whether they can be trusted)."""
    for path in segment_paths(Path(directory)):
        yield from _records(path)


def verify(directory: Path, **kwargs: Any) -> tuple[int, list[Any]]:
    """Check the log; see guardd.auditlog.verify.verify (kept here for the callers of the first log)."""
    from guardd.auditlog.verify import verify as _verify

    return _verify(Path(directory), **kwargs)
