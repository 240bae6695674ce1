"""The audit log writer: canonical JSON lines, hash-chained, sealed under a forward-secure key,
durable (fdatasync) before append() returns, rotated into segments and pruned only after a
`retention` record. README.md ("The audit log") is the format's specification, format.py its code;
verify.py checks it.

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
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from guardd.auditlog import sealing
from guardd.auditlog.format import (
    GENESIS, MAX_LINE_BYTES, RECORD_TYPES, RESERVED_FIELDS, Head, canonical, record_hash,
    segment_name, segment_number, segment_paths,
)
from guardd.auditlog.reading import last_record, read_records
from guardd.auditlog.recovery import check_key, find_head, set_aside, torn_tail
from guardd.auditlog.segments import DAY_MS, delete_retained, past_retention
from guardd.config.settings import LogConfig
from guardd.durable import fsync_dir
from guardd.errors import AuditLogError, KeyStateError
from guardd.journal import Field

log = logging.getLogger(__name__)

RESERVE_NAME = ".reserve"
RESERVE_BYTES = 64 * 1024  # room for the fault record (and the key state) when the disk is full
LOW_SPACE_TYPES = ("fault", "stop")  # what is still written while the reserve is in use
REINIT = "run `guardd log init` (with guardd stopped) to start a new sealing key, and keep the key it prints"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


class AuditLog:
    """The single writer of one log directory (an exclusive lock keeps a second one out)."""

    def __init__(
        self,
        directory: Path,
        *,
        key_dir: Path | None = None,
        rotation: LogConfig = LogConfig(),
        wall_clock: Callable[[], float] = time.time,
        mono_clock: Callable[[], int] = time.monotonic_ns,
        announce_key: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.key_dir = Path(key_dir) if key_dir is not None else self.directory.parent / "keys"
        self.rotation = rotation  # when segments are closed and old ones deleted
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
        torn = torn_tail(self.path)
        self.head, self._last_record, first = find_head(segments, self.path)
        self._check_key_state(torn=bool(torn))
        if torn and self._unsealed is None:
            self.recovered.append(set_aside(self.path, torn, self._wall()))
        self._segment_day = None if first is None else int(first.get("wall_ms", 0)) // DAY_MS
        self._needs_link = first is None and self._number > 1
        self._open_segment(create=not segments)
        self._make_reserve()
        self._finish_retention()
        if self._unsealed is None:
            self._write_recoveries()

    def _check_key_state(self, torn: bool) -> None:
        try:
            state = sealing.load_state(self.key_dir)
        except FileNotFoundError:
            if self.head.seq == 0 and not torn and not self._has_history():
                self._start_epoch(1, GENESIS)
                return
            self._unsealed = f"the sealing key state ({self.key_dir / sealing.STATE_NAME}) is missing; {REINIT}"
            return
        except (KeyStateError, OSError) as exc:
            self._unsealed = f"the sealing key state is unreadable: {exc}; {REINIT}"
            return
        found = check_key(state, self.head, self._last_record, torn)
        if found.wrong is not None:
            self._unsealed = f"{found.wrong}; run `guardd verify`. guardd will not write to this log; {REINIT}"
            return
        self._key, self._skip = found.key, found.skip
        if found.evolved:
            self._save_key()

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
        torn = torn_tail(self.path)
        if torn:  # a torn tail left at open (unsealed logs are not touched) goes first
            self.recovered.append(set_aside(self.path, torn, self._wall()))
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

    # -- the reserve: room for the fault record when the disk fills ----------------------------

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

    def append(self, type_: str, **fields: Field) -> int:
        """Write one record, make it durable and return its seq. On AuditLogError the action must not happen; the
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
        return int(self._write(type_, fields)["seq"])

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
        doomed = past_retention(self.directory, self._number, self.rotation, int(self._wall() * 1000))
        if not doomed:
            return
        last = last_record(doomed[-1])
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
        if self._number > 1:
            delete_retained(self.path, self._number)

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

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of this log that parses, in order (for the core's start-up)."""
        return read_records(self.directory)

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None
        self._key = None


