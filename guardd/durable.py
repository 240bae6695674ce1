"""Files that survive a power cut: written whole or not at all, on disk before the call returns.

Every state file guardd keeps (recordings, spooled payloads, the mute state, the log's key) goes
through write_atomically: a temporary file, fsync, rename over the target, fsync the directory.
After a crash the target is either the old file or the new one, never a torn mix.

The temporary file is one guardd made itself: a fresh random name opened with O_CREAT | O_EXCL |
O_NOFOLLOW, so a file or symlink planted in the state directory is never written through, and
the rename replaces a planted symlink instead of following it. read_regular reads only a regular
file, never through a symlink and never blocking on a FIFO; open_regular opens one so.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` (created with `mode`), durably. Raises OSError; on any error
    the temporary file is gone and `path` is as it was."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    fd = os.open(tmp, _CREATE, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file (not a symlink, FIFO or device). Raises
    OSError: FileNotFoundError if missing, errno ELOOP/EINVAL naming what it is otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symlink, not a regular file", str(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file; raises as open_regular does."""
    with open_regular(path) as f:
        return f.read()
