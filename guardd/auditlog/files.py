"""The files the log writer holds: the segment it appends to and the reserve that keeps room for
a fault record when the disk fills. Every system call the writer makes on them is here.

- A record is one os.write() of one whole line on an O_APPEND descriptor, then fdatasync; a
  write that fails is cut back off the file, so the file never holds a record the writer did not
  count. If the cut-back itself fails, `broken` says why and the writer refuses every later append.
- A new segment is created with O_EXCL and its directory entry made durable before the old
  segment's descriptor is closed.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from guardd.auditlog.format import segment_name
from guardd.auditlog.segments import DAY_MS
from guardd.durable import fsync_dir
from guardd.errors import AuditLogError

log = logging.getLogger(__name__)

RESERVE_NAME = ".reserve"
RESERVE_BYTES = 64 * 1024  # room for the fault record (and the key state) when the disk is full
_OPEN = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


def lock_directory(directory: Path) -> int:
    """Make the log directory and take its exclusive lock; the lock's descriptor."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise AuditLogError(f"cannot open the log directory {directory}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AuditLogError(
            f"another guardd process is writing the log in {directory}; "
            "stop it first (systemctl stop guardd) or use another state_dir"
        ) from None
    return fd


@dataclass
class Segment:
    """The segment file that records are appended to now."""

    directory: Path
    number: int
    fd: int | None = None
    day: int | None = None  # the date (days since 1970) of its first record
    broken: str | None = None  # why a failed write could not be cut back

    @property
    def path(self) -> Path:
        return self.directory / segment_name(self.number)

    def open(self, create: bool) -> None:
        try:
            self.fd = os.open(self.path, _OPEN | (os.O_CREAT if create else 0), 0o600)
        except OSError as exc:
            raise AuditLogError(f"cannot open {self.path}: {exc.strerror}") from exc

    def full(self, now_ms: int, max_bytes: int) -> bool:
        """True when the next record belongs in a new segment: a segment never spans two dates
        (a clock that jumps counts as a new day) and stops growing at max_bytes."""
        if self.day is None:
            return False
        if now_ms // DAY_MS != self.day:
            return True
        try:
            return os.fstat(self.fd).st_size >= max_bytes  # type: ignore[arg-type]
        except OSError:
            return False

    def start_next(self) -> None:
        """Create the next segment and append to it from now on."""
        assert self.fd is not None
        try:
            fd = os.open(self.directory / segment_name(self.number + 1), _OPEN | os.O_CREAT | os.O_EXCL, 0o600)
            fsync_dir(self.directory)
        except OSError as exc:
            raise AuditLogError(f"cannot start a new log segment: {exc.strerror or exc}") from exc
        os.close(self.fd)
        self.fd, self.number, self.day = fd, self.number + 1, None

    def append_line(self, line: bytes) -> None:
        """Write one line and make it durable. Raises OSError with the file as it was before."""
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        try:
            written = os.write(self.fd, line)
            if written != len(line):
                raise OSError(errno.EIO, "short write to the log")
            os.fdatasync(self.fd)
        except OSError:
            # The writer's head stays where it was, so the file must too: a record whose append
            # failed would otherwise be followed by a second record with the same seq. A partial
            # line left by a failed cut-back is a torn tail for the next start.
            try:
                os.ftruncate(self.fd, size)
                os.fdatasync(self.fd)
            except OSError as undo:
                self.broken = undo.strerror or str(undo)
            raise

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd = None


class Reserve:
    """A file of RESERVE_BYTES, released when the disk is full so the fault can be recorded."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / RESERVE_NAME
        self.released = False

    def make(self) -> bool:
        """Make (or re-make) the reserve; False if there is no room for it yet."""
        try:
            if not self.path.exists() or self.path.stat().st_size < RESERVE_BYTES:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    os.posix_fallocate(fd, 0, RESERVE_BYTES)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            log.warning("cannot keep the log's reserve file: %s", exc.strerror or exc)
            return False
        self.released = False
        return True

    def release(self) -> None:
        self.released = True
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
