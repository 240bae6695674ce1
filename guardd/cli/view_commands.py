"""`guardd history`, `guardd recordings` and `guardd report`: what the speaker did, for its owner.
They read the log and the recordings as they are (never the daemon, never the writer's lock), so
they work while guardd runs and after it stopped, and with a config that has a problem."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from guardd.auditlog.reading import read_records
from guardd.auditlog.view import parse_time
from guardd.cli.common import EXIT_FAILURE, EXIT_USAGE, load_config_or_salvage, state_and_log_dirs
from guardd.views.kept import describe_retention, kept_rows, total_bytes
from guardd.views.lines import HISTORY_HEADER, RECORDINGS_HEADER, history_line, recordings_line, table
from guardd.views.requests import RequestRow, request_rows

def _since(args: argparse.Namespace) -> float | None:
    return parse_time(args.since) if getattr(args, "since", None) else None


# The records the views join (the others, wakes and a satellite's frame records above all, are
# read past: a year of log is far more than a Pi should hold in memory at once).
JOINED = frozenset({"utterance", "request", "refused", "announce", "decision", "send", "sent", "unfinished",
                    "pipeline"})


def _records(log_dir: Path, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
    """The records the views join, and with `start`, `end` every record of that span of time."""
    found = []
    for r in read_records(log_dir):
        wall = r.get("wall_ms")
        in_span = start is not None and end is not None and isinstance(wall, int) and start * 1000 <= wall < end * 1000
        if in_span or r.get("type") in JOINED:
            found.append(r)
    return found


def _requests(log_dir: Path, since: float | None) -> tuple[list[dict[str, Any]], list[RequestRow]]:
    records = _records(log_dir)
    rows = request_rows(records)
    if since is not None:
        rows = [r for r in rows if r.wall_ms is not None and r.wall_ms >= since * 1000]
    return records, rows


def cmd_history(args: argparse.Namespace) -> int:
    try:
        since = _since(args)
    except ValueError as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _, log_dir = state_and_log_dirs(args)
    if not log_dir.is_dir():
        print(f"no log yet in {log_dir}", file=sys.stderr)
        return 0
    _, rows = _requests(log_dir, since)
    if args.last is not None:
        rows = rows[len(rows) - args.last :] if args.last else []
    if args.json:
        for row in rows:
            print(json.dumps(row.as_json(), sort_keys=True))
        return 0
    if not rows:
        print("no requests" + (" since then" if since is not None else " in the log"), file=sys.stderr)
        return 0
    for line in table([HISTORY_HEADER, *(history_line(r) for r in rows)]):
        print(line)
    return 0


def cmd_recordings(args: argparse.Namespace) -> int:
    config, _ = load_config_or_salvage(args)
    state_dir, log_dir = state_and_log_dirs(args, config)
    records = _records(log_dir)
    rows = kept_rows(state_dir, config.retention, records, request_rows(records))
    if args.json:
        for row in rows:
            print(json.dumps(row.as_json(), sort_keys=True))
        return 0
    if rows:
        for line in table([RECORDINGS_HEADER, *(recordings_line(r) for r in rows)]):
            print(line)
    print(f"{len(rows)} recording(s), {total_bytes(rows) / 1e6:.1f} MB in {state_dir / 'recordings'}; "
          f"{describe_retention(config.retention)}")
    return 0


def day_bounds(day: str | None) -> tuple[datetime.date, float, float]:
    """The local day `YYYY-MM-DD` (default today) and its start and end, as wall seconds."""
    try:
        date = datetime.date.fromisoformat(day) if day else datetime.date.today()
    except ValueError:
        raise ValueError(f"{day!r} is not a day: use YYYY-MM-DD, such as 2026-11-03") from None
    start = datetime.datetime.combine(date, datetime.time()).astimezone()
    end = datetime.datetime.combine(date + datetime.timedelta(days=1), datetime.time()).astimezone()
    return date, start.timestamp(), end.timestamp()


def cmd_report(args: argparse.Namespace) -> int:
    from guardd.auditlog.verify import verify
    from guardd.cli.log_commands import key_values
    from guardd.views.report import Report, render

    try:
        date, start, end = day_bounds(args.day)
    except ValueError as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config, _ = load_config_or_salvage(args)
    state_dir, log_dir = state_and_log_dirs(args, config)
    records = _records(log_dir, start, end)
    requests = request_rows(records)
    keys = key_values(args)
    count, problems = verify(log_dir, keys=keys, key_dir=_key_dir(state_dir))
    report = Report(
        day=date, start=start, end=end, state_dir=state_dir, records=_on_day(records, start, end),
        requests=[r for r in requests if r.wall_ms is not None and start * 1000 <= r.wall_ms < end * 1000],
        kept=kept_rows(state_dir, config.retention, records, requests), retention=config.retention,
        verified=count, problems=[str(p) for p in problems], seals_checked=bool(keys), made=time.time())
    out = Path(args.html)
    try:  # mode 0600: the page tells what the owner's speaker heard and sent
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render(report))
    except OSError as exc:
        print(f"guardd: error: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wrote {out}: {date.isoformat()}, {len(report.requests)} request(s), {len(report.kept)} recording(s) "
          f"kept, log {'intact' if not problems else f'{len(problems)} problem(s)'}")
    return 0


def _key_dir(state_dir: Path) -> Path | None:
    keys = state_dir / "keys"
    return keys if keys.is_dir() else None


def _on_day(records: Iterable[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    found = []
    for r in records:
        wall = r.get("wall_ms")
        if isinstance(wall, int) and not isinstance(wall, bool) and start * 1000 <= wall < end * 1000:
            found.append(r)
    return found
