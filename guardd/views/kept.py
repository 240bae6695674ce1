"""The recordings kept on the device, each with its length, when it was kept, when the retention
rule will delete it, and where it was sent (joined from the log).

Reads only: the directory listing, each WAV's header (never through a symlink) and the records.
"""

from __future__ import annotations

import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from guardd.config.settings import RetentionConfig
from guardd.durable import open_regular
from guardd.listen.recordings import Recording, Recordings
from guardd.views.requests import RequestRow, as_int, as_str


@dataclass
class KeptRow:
    name: str
    bytes: int
    seconds: float | None  # None: the file is not a WAV guardd can read
    kept_ms: int  # its `utterance` record's time, else the file's mtime
    deletes_ms: int  # when max_age_h has passed, by the file's mtime (what the daemon goes by)
    due: str  # "" or why the next retention pass deletes it: max_age, max_total
    logged: bool  # a `utterance` record names it
    requests: list[RequestRow] = field(default_factory=list)  # uploads of it

    @property
    def sent(self) -> str:
        """Where it went, or that it did not."""
        if not self.requests:
            return "not sent (no request)"
        told = []
        for r in self.requests:
            if r.delivered:
                told.append(f"sent to {r.destination} ({r.id})")
            elif r.sent is not None and r.delivered is None:
                told.append(f"sent to {r.destination} ({r.id}; whether it was delivered is not logged)")
            elif r.decision == "approved" and r.delivered is False:
                told.append(f"send to {r.destination} failed ({r.id})")
            else:
                told.append(f"not sent to {r.destination} ({r.id}: {r.decision or 'open'}"
                            + (f", {r.reason}" if r.reason else "") + ")")
        return "; ".join(told)

    def as_json(self) -> dict[str, Any]:
        return {"file": self.name, "bytes": self.bytes, "seconds": self.seconds, "kept_ms": self.kept_ms,
                "deletes_ms": self.deletes_ms, "due": self.due or None, "logged": self.logged,
                "sent_to": [r.destination for r in self.requests if r.delivered],
                "requests": [r.id for r in self.requests], "sent": self.sent}


def kept_rows(state_dir: Path, retention: RetentionConfig, records: Iterable[dict[str, Any]],
              rows: Iterable[RequestRow], now: float | None = None) -> list[KeptRow]:
    """Each kept recording, oldest first."""
    now = time.time() if now is None else now
    recordings = Recordings(state_dir / "recordings", retention)
    try:
        listing = recordings.listing()
        due = {rec.path.name: reason for rec, reason in recordings.due_for_deletion(now)}
    except OSError:  # a dangling symlink among them (not guardd's): list without following links
        listing = [Recording(p, st.st_size, st.st_mtime) for p in sorted(recordings.directory.glob("utterance-*.wav"))
                   if (st := p.lstat())]
        due = {}
    logged = {as_str(r.get("file")): r for r in records if r.get("type") == "utterance"}
    uploads: dict[str, list[RequestRow]] = {}
    for row in rows:
        if row.file:
            uploads.setdefault(row.file, []).append(row)
    found = []
    for rec in listing:
        record = logged.get(rec.path.name)
        wall = as_int(record.get("wall_ms")) if record else None
        found.append(KeptRow(
            name=rec.path.name, bytes=rec.size, seconds=wav_seconds(rec.path),
            kept_ms=wall if wall is not None else int(rec.mtime * 1000),
            deletes_ms=int((rec.mtime + retention.max_age_h * 3600) * 1000),
            due=due.get(rec.path.name, ""), logged=record is not None,
            requests=uploads.get(rec.path.name, [])))
    return found


def wav_seconds(path: Path) -> float | None:
    """A WAV's length from its header; None for anything else (a symlink included)."""
    try:
        with open_regular(path) as f, wave.open(f, "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate else None
    except (OSError, EOFError, wave.Error):
        return None


def total_bytes(rows: Iterable[KeptRow]) -> int:
    return sum(r.bytes for r in rows)


def describe_retention(retention: RetentionConfig) -> str:
    return (f"each is deleted {retention.max_age_h:g} h after it was kept (retention.max_age_h), "
            f"the oldest first when all of them pass {retention.max_total_mb:g} MB (retention.max_total_mb)")


