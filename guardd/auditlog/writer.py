"""The audit log writer: canonical JSON lines, hash-chained, sealed under a forward-secure key,
durable (fdatasync) before append() returns, rotated into segments and pruned only after a
`retention` record. docs/log.md is the format's specification, format.py its code;
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
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from guardd.auditlog.files import Reserve, Segment, lock_directory
from guardd.auditlog.format import (
    GENESIS, MAX_LINE_BYTES, Head, canonical, check_fields, record_hash, segment_name, segment_number,
    segment_paths,
)
from guardd.auditlog.keys import DiskFull, SealingKey
from guardd.auditlog.reading import read_records
from guardd.auditlog.recovery import find_head, has_history, set_aside, torn_tail
from guardd.auditlog.segments import DAY_MS, delete_retained, retention_fields
from guardd.config.settings import LogConfig
from guardd.errors import AuditLogError
from guardd.journal import Field

log = logging.getLogger(__name__)

LOW_SPACE_TYPES = ("fault", "stop")  # what is still written while the reserve is in use


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
        self.rotation = rotation  # when segments are closed and old ones deleted
        self._wall = wall_clock
        self._mono = mono_clock
        self._boot = boot_id()
        self._key = SealingKey(Path(key_dir) if key_dir is not None else self.directory.parent / "keys", announce_key)
        self._segment = Segment(self.directory, 1)
        self._reserve = Reserve(self.directory)
        self._lock_fd: int | None = None
        self._needs_link = False  # the current segment has no `segment` record yet
        self.head = Head(0, GENESIS)
        self.recovered: list[str] = []  # names of torn tails set aside at open

    @property
    def path(self) -> Path:
        return self._segment.path

    @property
    def unsealed(self) -> str | None:
        """Why appends are refused for want of a usable key (None when the key is fine)."""
        return self._key.unsealed

    @property
    def verification_key(self) -> str | None:
        """Set when open() or rekey() made a new key."""
        return self._key.verification_key

    # -- opening -------------------------------------------------------------------------------

    def open(self) -> None:
        """Lock, recover a torn tail, find the head, check the key state. A missing or corrupt
        key leaves the log open but unsealed: every append raises until `rekey()`."""
        self._lock_fd = lock_directory(self.directory)
        try:
            self._open_locked()
        except BaseException:
            self.close()
            raise

    def _open_locked(self) -> None:
        segments = segment_paths(self.directory)
        self._segment.number = segment_number(segments[-1]) if segments else 1
        torn = torn_tail(self.path)
        self.head, last, first = find_head(segments, self.path)
        self._key.find(self.head, last, torn=bool(torn), fresh=self.head.seq == 0 and not torn and not has_history(self.directory))
        if torn and self.unsealed is None:
            self.recovered.append(set_aside(self.path, torn, self._wall()))
        self._segment.day = None if first is None else int(first.get("wall_ms", 0)) // DAY_MS
        self._needs_link = first is None and self._segment.number > 1
        self._segment.open(create=not segments)
        self._reserve.make()
        self._finish_retention()
        if self.unsealed is None:
            self._write_recoveries()

    def rekey(self, reason: str) -> str:
        """Start a new sealing epoch at head+1 after the key state was lost or found wrong: the
        `rekey` record is the first sealed with the new key. Returns the new verification key."""
        if self._segment.fd is None:
            raise AuditLogError("the log is not open")
        if self.unsealed is None:
            raise AuditLogError("the sealing key is intact; there is nothing to re-initialise")
        torn = torn_tail(self.path)
        if torn:  # a torn tail left at open (unsealed logs are not touched) goes first
            self.recovered.append(set_aside(self.path, torn, self._wall()))
        verification_key = self._key.start_epoch(self.head)
        self.append("rekey", reason=reason)
        self._write_recoveries()
        return verification_key

    def _write_recoveries(self) -> None:
        while self.recovered:
            fields: dict[str, int | str] = {"set_aside": self.recovered[0]}
            if self._key.skip is not None:
                fields["skipped"] = self._key.skip
            self.append("recovery", **fields)
            self.recovered.pop(0)
            self._key.skip = None

    # -- writing -------------------------------------------------------------------------------

    def append(self, type_: str, **fields: Field) -> int:
        """Write one record, make it durable and return its seq. On AuditLogError the action must not happen; the
        file and head are as they were (if that cannot be ensured, every later append is refused).

        A field may be a function of the record's own seq (a file or request named by it): the
        seq is known only here, after any `segment` or `retention` record a rotation writes first."""
        if self._segment.fd is None:
            raise AuditLogError("the log is not open")
        if self.unsealed:
            raise AuditLogError(self.unsealed)
        if self._segment.broken:
            raise AuditLogError(f"the log could not be repaired after a failed write: {self._segment.broken}")
        check_fields(type_, fields)
        if self._reserve.released and type_ not in LOW_SPACE_TYPES and not self._reserve.make():
            raise AuditLogError(
                f"the disk holding {self.directory} is full; free some space. "
                "Nothing is recorded or sent until the log can be written"
            )
        if self._key.unsaved:
            self._save_key()
        full = self.head.seq > 0 and self._segment.full(int(self._wall() * 1000), self.rotation.segment_max_bytes)
        if not self._reserve.released and (self._needs_link or full):
            self._rotate()
        return self._write(type_, fields)

    def _rotate(self) -> None:
        if self._needs_link:  # a segment made before a crash, still without its first record
            previous = self.directory / segment_name(self._segment.number - 1)
        else:
            previous = self.path
            self._segment.start_next()
        self._write("segment", {"previous": previous.name, "previous_seq": self.head.seq, "previous_h": self.head.h})
        self._needs_link = False
        retention = retention_fields(self.directory, self._segment.number, self.rotation, int(self._wall() * 1000))
        if retention is not None:  # delete the oldest closed segments only after a durable record
            self._write("retention", retention)
            self._finish_retention()

    def _finish_retention(self) -> None:
        """Delete segments a durable `retention` record names (also after a crash mid-way)."""
        if self._segment.number > 1:
            delete_retained(self.path, self._segment.number)

    def _write(self, type_: str, fields: dict[str, Any]) -> int:
        seq = self.head.seq + (2 if self._key.skip is not None and type_ == "recovery" else 1)
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
        body["mac"] = self._key.seal(body["h"])
        line = canonical(body) + b"\n"
        if len(line) > MAX_LINE_BYTES:
            raise AuditLogError(f"log record {type_} is {len(line)} bytes, over the limit")
        try:
            self._segment.append_line(line)
        except OSError as exc:
            if exc.errno == errno.ENOSPC and not self._reserve.released and not self._segment.broken:
                self._record_disk_full(type_)
            raise AuditLogError(f"cannot write the log: {exc.strerror or exc}") from exc
        self.head = Head(seq, body["h"])
        if self._segment.day is None:
            self._segment.day = body["wall_ms"] // DAY_MS
        try:
            self._key.advance(self.head)
        except AuditLogError as exc:
            # The record stands (open() recovers a key state one record behind); the next append
            # retries the save first and is refused if it still fails, so the lag stays at one.
            if isinstance(exc, DiskFull):
                self._reserve.release()
            log.warning("%s", exc)
        return seq

    def _record_disk_full(self, refused: str) -> None:
        """The disk is full: release the reserve and spend it on recording that, once."""
        self._reserve.release()
        try:
            self._write("fault", {"reason": f"disk full: the log cannot be written ({refused} refused)"})
        except AuditLogError as exc:
            log.error("cannot record the disk-full fault: %s", exc)

    def _save_key(self) -> None:
        try:
            self._key.save(self.head)
        except DiskFull:
            self._reserve.release()
            raise

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of this log that parses, in order (for the core's start-up)."""
        return read_records(self.directory)

    def close(self) -> None:
        self._segment.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._lock_fd = None
        self._key.forget()
