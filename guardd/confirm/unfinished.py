"""A restart approves nothing: what the log left open is closed at start-up.

Undecided requests are denied as "aborted"; approved ones whose send never started, or whose send
has no result, get an `unfinished` record saying what is known. Every payload left in the outbox
(spooled or half-written) is logged and deleted.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from guardd.confirm.outbox import Outbox
from guardd.journal import Recorder

log = logging.getLogger(__name__)


def close_unfinished(records: Iterable[dict[str, Any]], record: Recorder, outbox: Outbox) -> None:
    stage: dict[str, str] = {}
    for rec in records:
        kind, request_id = rec.get("type"), str(rec.get("id"))
        if kind == "request":
            stage[request_id] = "request"
        elif kind == "decision" and request_id in stage:
            stage[request_id] = "approved" if rec.get("decision") == "approved" else "done"
        elif kind == "send" and request_id in stage:
            stage[request_id] = "send"
        elif kind in ("sent", "unfinished"):
            stage[request_id] = "done"
    for request_id, where in stage.items():
        if where == "request":
            record("decision", id=request_id, decision="denied", reason="aborted")
        elif where == "approved":
            record("unfinished", id=request_id, outcome="not sent")
        elif where == "send":
            record("unfinished", id=request_id, outcome="unknown: stopped while sending")
    for leftover in outbox.leftovers():
        try:
            size = leftover.lstat().st_size
        except OSError:
            continue
        if record("deleted", file=f"outbox/{leftover.name}", reason="leftover", bytes=size):
            if leftover.is_dir() and not leftover.is_symlink():
                log.error("%s is a directory in the outbox; remove it by hand", leftover)
            else:
                leftover.unlink(missing_ok=True)
