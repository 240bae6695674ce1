"""Hands back memory that loading touched once: library code run only while starting (mapped
from its file, so it reads back from the page cache if it is ever run again) and the free space
that loading the models left in malloc's heap. docs/performance.md has the figures ("Memory of
the running daemon").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

MADV_DONTNEED = 4  # Linux: drop these pages from this process; file pages fault back from the file


class _Libc:
    """glibc's malloc_trim and madvise, or None where there are none (not Linux, or musl)."""

    def __init__(self) -> None:
        self.malloc_trim = self.madvise = None
        if not sys.platform.startswith("linux"):
            return
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            return
        madvise = getattr(libc, "madvise", None)
        if madvise is not None:
            madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            madvise.restype = ctypes.c_int
            self.madvise = madvise
        trim = getattr(libc, "malloc_trim", None)  # glibc only
        if trim is not None:
            trim.argtypes = [ctypes.c_size_t]
            trim.restype = ctypes.c_int
            self.malloc_trim = trim


_libc: _Libc | None = None


def _read_only_file_mappings() -> list[tuple[int, int, int]]:
    """(start, end, resident kB) of each private, non-writable mapping of a file that holds no
    page of its own (every page is the file's, unchanged): dropping those loses nothing."""
    found: list[tuple[int, int, int]] = []
    start = end = rss = 0
    eligible = False
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as smaps:
        for line in smaps:
            field = line.split(maxsplit=2)
            if not field[0].endswith(":"):  # a mapping's header: range perms offset dev inode path
                if eligible and rss:
                    found.append((start, end, rss))
                first, _, last = field[0].partition("-")
                start, end, rss = int(first, 16), int(last, 16), 0
                rest = line.split(maxsplit=5)
                perms, path = rest[1], rest[5].strip() if len(rest) > 5 else ""
                eligible = (perms[1] == "-" and perms[3] == "p" and path.startswith("/")
                            and not path.startswith("/dev/") and not path.endswith(" (deleted)"))
            elif field[0] == "Rss:":
                rss = int(field[1])
            elif field[0] == "Anonymous:" and int(field[1]) > 0:
                eligible = False  # a page written since it was mapped (a relocation): keep it
    if eligible and rss:
        found.append((start, end, rss))
    return found


def hand_back() -> int:
    """Return what loading touched once to the system; the kB of file pages unmapped.

    Safe at any time: a dropped file page is read back from the page cache on its next use, and
    malloc_trim frees only pages no allocation uses. Does nothing where Linux's /proc or glibc
    is missing."""
    global _libc
    if _libc is None:
        _libc = _Libc()
    if _libc.malloc_trim is not None:
        _libc.malloc_trim(0)
    if _libc.madvise is None:
        return 0
    try:
        mappings = _read_only_file_mappings()
    except (OSError, ValueError, IndexError) as exc:
        log.debug("memory: cannot read /proc/self/smaps: %s", exc)
        return 0
    dropped = 0
    for start, end, rss in mappings:
        if _libc.madvise(start, end - start, MADV_DONTNEED) == 0:
            dropped += rss
    return dropped
