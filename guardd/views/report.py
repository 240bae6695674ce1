"""`guardd report --html FILE`: one self-contained page of a day, for the owner: the timeline of
wakes, requests and decisions, the day's requests, the counts per destination, what is kept and
when it goes, and whether the log verifies.

Self-contained means it loads nothing: inline CSS and SVG, no script, no font, no image, and a
Content-Security-Policy that forbids every fetch, so a page opened years later, or on another
machine, tells nobody it was read. Every string from the log or the file system is escaped.
"""

from __future__ import annotations

import datetime
import socket
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from guardd import __version__
from guardd.auditlog.view import describe, local_time
from guardd.config.settings import RetentionConfig
from guardd.views.kept import KeptRow, describe_retention, total_bytes
from guardd.views.lines import HISTORY_HEADER, RECORDINGS_HEADER, history_line, recordings_line
from guardd.views.requests import RequestRow
from guardd.views.timeline import LANE_OF, timeline_svg

CSP = "default-src 'none'; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { text-align: left; padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #176b2c; font-weight: 600; } .fail { color: #a3161b; font-weight: 600; }
svg.timeline { width: 100%; height: auto; background: #fafafa; border: 1px solid #e4e4e4; }
svg line.hour { stroke: #ddd; } svg line.lane { stroke: #eee; }
svg text { font: 11px system-ui, sans-serif; fill: #666; }
svg .mark { stroke: #fff; stroke-width: 1; } svg .plain { fill: #3a6ea5; } svg .good { fill: #1f8a3b; }
svg .bad { fill: #c62828; } svg .quiet { fill: #9e9e9e; }
.none { color: #777; font-style: italic; }
"""


@dataclass
class Report:
    day: datetime.date
    start: float  # the day's start and end, wall seconds (local midnight to midnight)
    end: float
    state_dir: Path
    records: list[dict[str, Any]]  # the day's records
    requests: list[RequestRow]  # the day's requests
    kept: list[KeptRow]  # every recording kept now
    retention: RetentionConfig
    verified: int  # records the verifier read
    problems: list[str]  # what it found; none: intact
    seals_checked: bool
    made: float  # when the page was made, wall seconds


def _cell(value: object, numeric: bool = False) -> str:
    return f'<td{" class=n" if numeric else ""}>{escape(str(value))}</td>'


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]], numeric: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v, i in numeric) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _none(text: str) -> str:
    return f'<p class="none">{escape(text)}</p>'


def _verification(report: Report) -> str:
    if report.problems:
        items = "".join(f"<li>{escape(p)}</li>" for p in report.problems[:50])
        more = f"<li>… and {len(report.problems) - 50} more</li>" if len(report.problems) > 50 else ""
        return (f'<p class="fail">The log does not verify: {len(report.problems)} problem(s) in '
                f'{report.verified} records.</p><ul>{items}{more}</ul>'
                '<p>Keep the log as it is, as evidence; <code>guardd verify</code> shows the same.</p>')
    seals = "and every seal checked with your key" if report.seals_checked else \
        "(seals not checked: <code>guardd report --key KEY</code> checks them)"
    return f'<p class="ok">The log verifies: {report.verified} records, the hash chain intact {seals}.</p>'


def _requests(report: Report) -> str:
    if not report.requests:
        return _none("No requests this day.")
    return _table(HISTORY_HEADER, [history_line(r) for r in report.requests])


def _counts(report: Report) -> str:
    per: dict[str, Counter[str]] = {}
    for r in report.requests:
        c = per.setdefault(r.destination or "?", Counter())
        c["requests"] += 1
        c[r.decision or "open"] += 1
        if r.delivered is not None:
            c["delivered" if r.delivered else "failed"] += 1
    if not per:
        return _none("Nothing was asked to leave this day.")
    columns = ("requests", "approved", "denied", "refused", "open", "delivered", "failed")
    rows = [(name, *(c[k] for k in columns)) for name, c in sorted(per.items())]
    return _table(("destination", *columns), rows, numeric=tuple(range(1, len(columns) + 1)))


def _kept(report: Report) -> str:
    summary = (f"<p>{len(report.kept)} recording(s), {total_bytes(report.kept) / 1e6:.1f} MB; "
               f"{escape(describe_retention(report.retention))}.</p>")
    if not report.kept:
        return summary + _none("No recordings are kept now.")
    return summary + _table(RECORDINGS_HEADER, [recordings_line(k) for k in report.kept])


def _events(report: Report) -> str:
    shown = [r for r in report.records if r.get("type") in LANE_OF or r.get("type") in ("start", "stop", "fault")]
    if not shown:
        return _none("No events this day.")
    rows = []
    for r in shown:
        line = describe(r).split(None, 4)  # seq, date, time, type, fields
        rows.append((line[0], line[2] if len(line) > 2 else "", r.get("type", "?"), line[4] if len(line) > 4 else ""))
    return _table(("seq", "time", "type", "details"), rows, numeric=(0,))


def render(report: Report) -> str:
    day = report.day.isoformat()
    wakes = sum(1 for r in report.records if r.get("type") == "wake")
    sent = sum(1 for r in report.requests if r.delivered)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>guardd on {escape(socket.gethostname())}: {day}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>What guardd did on {day}</h1>
<p class="sub">{escape(socket.gethostname())}, state in {escape(str(report.state_dir))}; made
{escape(local_time(int(report.made * 1000)))} by guardd {escape(__version__)}. Times are local.</p>
<p>{wakes} wake(s), {len(report.requests)} request(s), {sent} delivered.</p>
<h2>The log</h2>
{_verification(report)}
<h2>Timeline</h2>
{timeline_svg(report.records, report.start, report.end)}
<h2>Requests</h2>
{_requests(report)}
<h2>Per destination</h2>
{_counts(report)}
<h2>Kept recordings</h2>
{_kept(report)}
<h2>Events</h2>
{_events(report)}
</body>
</html>
"""
