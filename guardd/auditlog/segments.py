"""Which closed segments of a log the owner's limits let go, and deleting them only after a
durable `retention` record names them (also after a crash mid-way).
"""

from __future__ import annotations

from pathlib import Path

from guardd.auditlog.format import segment_number, segment_paths
from guardd.auditlog.reading import last_record, segment_records
from guardd.config.settings import LogConfig
from guardd.durable import fsync_dir

DAY_MS = 86_400_000


def past_retention(directory: Path, current: int, rotation: LogConfig, now_ms: int) -> list[Path]:
    """The oldest closed segments beyond max_segments or older than max_age_days, in order."""
    closed = [p for p in segment_paths(directory) if (segment_number(p) or 0) < current]
    by_count = max(0, len(segment_paths(directory)) - rotation.max_segments)
    for i, path in enumerate(closed):
        last = last_record(path)
        too_old = last is not None and now_ms - int(last.get("wall_ms", now_ms)) > rotation.max_age_days * DAY_MS
        if i >= by_count and not too_old:
            return closed[:i]
    return closed


def retention_fields(directory: Path, current: int, rotation: LogConfig, now_ms: int) -> dict[str, int | str] | None:
    """The `retention` record that lets the segments past the owner's limits go, or None."""
    doomed = past_retention(directory, current, rotation, now_ms)
    last = last_record(doomed[-1]) if doomed else None
    if last is None:
        return None
    return {
        "deleted_from": doomed[0].name,
        "deleted_through": doomed[-1].name,
        "next_seq": int(last["seq"]) + 1,
        "next_prev": str(last["h"]),
    }


def delete_retained(current_path: Path, current: int) -> None:
    """Delete the closed segments the current segment's `retention` record names."""
    directory = current_path.parent
    through = None
    for record in segment_records(current_path):
        if record.get("type") == "retention":
            through = segment_number(directory / str(record.get("deleted_through")))
    if through is None:
        return
    deleted = False
    for path in segment_paths(directory):
        number = segment_number(path)
        if number is not None and number <= through and number < current:
            path.unlink(missing_ok=True)
            deleted = True
    if deleted:
        fsync_dir(directory)
