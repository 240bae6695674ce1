"""The owner's views as lines of text: a request or a kept recording as a row of cells, and rows
as aligned columns. `guardd history` and `recordings` print them; the report puts them in tables."""

from __future__ import annotations

from guardd.auditlog.view import local_time
from guardd.views.kept import KeptRow
from guardd.views.requests import AFTER_WAKE, RequestRow

HISTORY_HEADER = ("TIME", "ID", "FROM", "TO", "WHAT", "ANNOUNCED", "DECISION", "RESULT")
RECORDINGS_HEADER = ("FILE", "LENGTH", "KEPT", "DELETED BY", "SENT")


def shown(text: str) -> str:
    """A logged string as it may be printed: a client chose some of them (its program's path, a
    destination it asked for), so control characters are escaped, never sent to the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def table(rows: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; the last is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)] if rows else []
    return ["  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip() for r in rows]


def when(wall_ms: int | None) -> str:
    return local_time(wall_ms) if wall_ms is not None else "????-??-?? ??:??:??"


def what(row: RequestRow) -> str:
    size = f"{row.bytes} bytes" if row.bytes is not None else "? bytes"
    seconds = row.audio_s
    if seconds is not None:
        return f"{row.kind}, {seconds:.1f} s of audio ({size})"
    return f"{row.kind or '?'}, {size}"


def who(row: RequestRow) -> str:
    if row.exe == AFTER_WAKE or row.uid is None:
        return shown(row.exe) or "?"
    return f"{shown(row.exe) or '?'} (uid {row.uid})"


def history_line(row: RequestRow) -> tuple[str, ...]:
    announced = f"yes {when(row.announced_ms)[11:]}" if row.announced_ms is not None else "no"
    decision = (f"{row.decision} ({shown(row.reason)})" if row.reason else row.decision) if row.decision else "open"
    return (when(row.wall_ms), row.id or "-", who(row), shown(row.destination) or "?", what(row), announced,
            decision, shown(row.result))


def recordings_line(row: KeptRow) -> tuple[str, ...]:
    length = f"{row.seconds:.1f} s" if row.seconds is not None else "not a WAV"
    deletes = f"due now ({row.due})" if row.due else when(row.deletes_ms)
    return (row.name, length, when(row.kept_ms), deletes, shown(row.sent))
