"""A day's timeline as inline SVG: one lane each for wakes, kept utterances, requests, decisions,
results and mute, a mark per record at its local time, each mark titled with what it was.
Every string from the log is escaped: some of them a client chose."""

from __future__ import annotations

import datetime
from html import escape
from typing import Any, Iterable

from guardd.views.requests import as_int, as_str

WIDTH = 960  # user units of the drawing; it scales to the page
LEFT = 90  # room for the lane names
LANE_H = 28
TOP = 24  # room for the hour labels

# lane, the record types drawn in it
LANES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wake", ("wake", "discard")),
    ("kept", ("utterance", "deleted")),
    ("request", ("request", "refused", "announce")),
    ("decision", ("decision",)),
    ("result", ("send", "sent", "unfinished", "pipeline")),
    ("mute", ("mute", "unmute")),
)
LANE_OF = {t: i for i, (_, types) in enumerate(LANES) for t in types}


def mark_class(record: dict[str, Any]) -> str:
    """The mark's class, which the page's CSS colours: good, bad, quiet or plain."""
    kind = record.get("type")
    if kind == "decision":
        return "good" if record.get("decision") == "approved" else "bad"
    if kind == "sent":
        return "good" if as_int(record.get("delivered")) or as_int(record.get("status")) in range(200, 300) else "bad"
    if kind in ("refused", "unfinished"):
        return "bad"
    if kind in ("discard", "deleted", "unmute"):
        return "quiet"
    return "plain"


def title(record: dict[str, Any]) -> str:
    """What a mark says when pointed at."""
    kind = as_str(record.get("type"))
    fields = ("id", "model", "score", "file", "destination", "kind", "bytes", "decision", "reason", "status",
              "error", "code", "source", "result", "outcome")
    said = " ".join(f"{k}={record[k]}" for k in fields if isinstance(record.get(k), (int, str)))
    wall = as_int(record.get("wall_ms"))
    at = datetime.datetime.fromtimestamp(wall / 1000).strftime("%H:%M:%S") if wall is not None else "?"
    return f"{at} {kind} {said}".strip()


def timeline_svg(records: Iterable[dict[str, Any]], start: float, end: float) -> str:
    """The SVG element for the records of the day [start, end) (wall seconds)."""
    span = end - start
    plot = WIDTH - LEFT - 24  # (room on the right for the 24:00 label)
    height = TOP + LANE_H * len(LANES) + 6
    parts = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="the day\'s wakes, requests and decisions by the hour">']
    for hour in range(0, 25, 3):
        x = LEFT + plot * hour / 24
        parts.append(f'<line class="hour" x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{height - 6}"/>')
        parts.append(f'<text class="hour" x="{x:.1f}" y="{TOP - 8}" text-anchor="middle">{hour:02d}:00</text>')
    for i, (lane, _) in enumerate(LANES):
        y = TOP + LANE_H * i + LANE_H / 2
        parts.append(f'<text class="lane" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{lane}</text>')
        parts.append(f'<line class="lane" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot}" y2="{y:.1f}"/>')
    for record in records:
        lane = LANE_OF.get(as_str(record.get("type")))
        wall = as_int(record.get("wall_ms"))
        if lane is None or wall is None or not start <= wall / 1000 < end:
            continue
        x = LEFT + plot * (wall / 1000 - start) / span
        y = TOP + LANE_H * lane + LANE_H / 2
        parts.append(f'<circle class="mark {mark_class(record)}" cx="{x:.1f}" cy="{y:.1f}" r="5">'
                     f'<title>{escape(title(record))}</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)
