"""Reading the audit log for a person: the head, one line per event in local time, filters,
following new records across segments, and the owner's export of recordings and log.

Everything here only reads the log (never takes the writer's lock), so it works while guardd runs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

from guardd.auditlog.format import GENESIS, Head, segment_paths
from guardd.auditlog.reading import last_line, parse_records
from guardd.durable import open_regular, read_regular

HIDDEN = ("seq", "prev", "h", "mac", "type", "wall_ms", "mono_us", "boot")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def head_of(directory: Path) -> Head:
    """The last complete record's (seq, h), read without the writer's lock."""
    for path in reversed(segment_paths(directory)):
        line = last_line(path)
        if line:
            record = json.loads(line)
            return Head(int(record["seq"]), str(record["h"]))
    return Head(0, GENESIS)


def parse_time(text: str, now: float | None = None) -> float:
    """`2026-11-03`, `2026-11-03T14:00` (local time) or `30m`, `2h`, `7d` ago: wall seconds."""
    m = _RELATIVE.match(text.strip())
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use 2026-11-03, 2026-11-03T14:00 or 30m, 2h, 7d") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as the log is shown
    return moment.timestamp()


def local_time(wall_ms: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(wall_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "????-??-?? ??:??:??"


def describe(record: dict[str, Any]) -> str:
    """One line for a person: seq, local time, type and the record's own fields."""
    fields = " ".join(f"{k}={v}" for k, v in sorted(record.items()) if k not in HIDDEN)
    wall = record.get("wall_ms")
    when = local_time(wall) if isinstance(wall, int) and not isinstance(wall, bool) else "????-??-?? ??:??:??"
    return f"{record.get('seq', '?'):>6} {when} {record.get('type', '?'):<10} {fields}".rstrip()


def matches(record: dict[str, Any], types: Iterable[str] | None, since: float | None, until: float | None) -> bool:
    if types and record.get("type") not in types:
        return False
    wall = record.get("wall_ms")
    if not isinstance(wall, int):
        return since is None and until is None
    if since is not None and wall < since * 1000:
        return False
    return not (until is not None and wall >= until * 1000)


class Follower:
    """New complete lines as they are appended, moving to the next segment when one starts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path: Path | None = None
        self.offset = 0

    def skip_to_end(self) -> None:
        paths = segment_paths(self.directory)
        if paths:
            self.path, self.offset = paths[-1], paths[-1].stat().st_size
            self.offset -= len(_partial(self.path))

    def poll(self) -> Iterator[dict[str, Any]]:
        paths = segment_paths(self.directory)
        if self.path is not None and self.path not in paths:
            self.path = None  # deleted by retention
        todo = paths if self.path is None else paths[paths.index(self.path) :]
        for path in todo:
            if path != self.path:
                self.path, self.offset = path, 0
            with open_regular(path) as f:
                f.seek(self.offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self.offset += end
            yield from parse_records(data[:end].splitlines())


def _partial(path: Path) -> bytes:
    with open_regular(path) as f:
        f.seek(max(0, path.stat().st_size - 65536))
        tail = f.read()
    return tail[tail.rfind(b"\n") + 1 :]


def follow(directory: Path, show: Callable[[dict[str, Any]], None], *, interval_s: float = 0.5,
           stop: Callable[[], bool] = lambda: False) -> None:
    """Show records appended from now on, until `stop()` (or Ctrl-C)."""
    follower = Follower(directory)
    follower.skip_to_end()
    while not stop():
        for record in follower.poll():
            show(record)
        time.sleep(interval_s)


def export(state_dir: Path, log_dir: Path, out: Path, keys: list[str], report: TextIO) -> tuple[int, int, int]:
    """Copy the owner's recordings and the log to `out` with a verification report.
    Returns (recordings copied, log records, problems)."""
    from guardd.auditlog.verify import verify

    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; export into a new directory")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    (out / "log").mkdir(mode=0o700)
    refused = []  # what is not a regular file inside its directory is named, never copied
    for path in [*segment_paths(log_dir), *sorted(log_dir.glob("torn-*.bin"))]:
        try:
            _copy(read_regular(path), out / "log" / path.name)
        except OSError as exc:
            refused.append(f"REFUSED log/{path.name}: {exc.strerror}: not copied")
    announced = {}
    from guardd.auditlog.reading import read_records

    for record in read_records(out / "log"):
        if record.get("type") == "utterance":
            announced[str(record.get("file"))] = record
    rec_dir = state_dir / "recordings"
    (out / "recordings").mkdir(mode=0o700)
    lines = []
    copied = 0
    for wav in sorted(rec_dir.glob("utterance-*.wav")) if rec_dir.is_dir() else []:
        try:
            data = read_regular(wav)  # a symlink to a file outside recordings/ is not the owner's
        except OSError as exc:
            refused.append(f"REFUSED recordings/{wav.name}: {exc.strerror}: not copied")
            continue
        _copy(data, out / "recordings" / wav.name)
        digest = hashlib.sha256(data).hexdigest()
        said = announced.get(wav.name)
        status = "matches its log record" if said and said.get("sha256") == digest else (
            f"DIFFERS from log record {said.get('seq')}" if said else "no log record names it")
        lines.append(f"{wav.name} {len(data)} bytes sha256 {digest}: {status}")
        copied += 1
    count, problems = verify(out / "log", keys=keys)
    head = head_of(out / "log")
    with open(out / "verification.txt", "w") as f:
        f.write(f"guardd export of {state_dir}, {local_time(int(time.time() * 1000))}\n")
        f.write(f"log: {count} records, head {head} (check with: guardd verify --dir log [--key KEY])\n")
        f.write(f"seals: {'checked with the given key' if keys else 'not checked (no key given)'}\n")
        for p in problems:
            f.write(f"FAIL {p}\n")
        f.write("verdict: " + ("ok" if not problems else f"{len(problems)} problem(s)") + "\n\n")
        f.write(f"recordings: {copied}\n")
        for line in lines + refused:
            f.write(line + "\n")
    for line in refused:
        print(line, file=report)
    print(f"exported {copied} recording(s) and {count} log records to {out}; "
          f"log {'ok' if not problems else f'{len(problems)} problem(s)'} (see verification.txt)", file=report)
    return copied, count, len(problems) + len(refused)


def _copy(data: bytes, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
