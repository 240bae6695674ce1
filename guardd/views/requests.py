"""Every outbound request as one row, joined from the log's records by request id: who asked,
where to, what and how much, whether it was announced, the decision and the result.

Only reads records (verify() says whether they can be trusted). Records from older versions
lack fields and requests may still be open: every field is optional here, and a value of the
wrong type is treated as missing, never as an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from guardd.audioformat import SAMPLE_RATE
from guardd.config.settings import WYOMING

AFTER_WAKE = "guardd (after wake)"  # the caller guardd names itself as for a kept utterance's upload
WAV_HEADER_BYTES = 44  # the plain header guardd writes around a kept utterance's samples
PCM_BYTES_PER_S = SAMPLE_RATE * 2  # 16-bit mono


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass
class RequestRow:
    """One request, as far as the log tells it."""

    seq: int  # of its `request` (or `refused`) record: the rows' order
    id: str  # r<seq>; "" for a request refused at the door (no id was given)
    wall_ms: int | None
    kind: str
    destination: str
    bytes: int | None
    sha256: str
    uid: int | None
    exe: str
    utterance: dict[str, Any] | None = None  # the kept utterance it uploads (after a wake)
    announced_ms: int | None = None  # its `announce` record: armed, and about to be said
    decision: str = ""  # approved | denied | refused; "" while open
    reason: str = ""
    decided_ms: int | None = None
    sending: bool = False  # a `send` record: its first byte may have left
    sent: dict[str, Any] | None = None
    unfinished: str = ""
    pipeline: list[str] = field(default_factory=list)  # Home Assistant's runs: "result: reason"

    @property
    def audio_s(self) -> float | None:
        """Seconds of audio, for an upload of a kept utterance (or to Home Assistant's link,
        which takes only bare 16 kHz 16-bit mono samples)."""
        if self.utterance is None:
            if self.destination == WYOMING and self.kind == "upload" and self.bytes is not None:
                return self.bytes / PCM_BYTES_PER_S
            return None
        start, end = as_int(self.utterance.get("start_ms")), as_int(self.utterance.get("end_ms"))
        if start is not None and end is not None and end >= start:
            return (end - start) / 1000
        size = as_int(self.utterance.get("bytes"))
        return max(size - WAV_HEADER_BYTES, 0) / PCM_BYTES_PER_S if size is not None else None

    @property
    def file(self) -> str:
        return as_str(self.utterance.get("file")) if self.utterance else ""

    @property
    def delivered(self) -> bool | None:
        """Whether the destination took it; None while unknown (not sent, or still sending)."""
        if self.sent is None:
            return None
        flag = as_int(self.sent.get("delivered"))
        if flag is not None:
            return bool(flag)
        # A `sent` record from before `delivered`: an HTTP status says; an error says it failed;
        # status 0 without an error (Home Assistant's link has no status) is not known.
        status = as_int(self.sent.get("status")) or 0
        if 200 <= status < 300:
            return True
        return False if status or as_str(self.sent.get("error")) else None

    @property
    def result(self) -> str:
        """What became of it, in a few words."""
        if self.decision in ("refused", "denied"):
            text = "not sent"
        elif not self.decision:
            text = "open: waiting for a press" if self.announced_ms is not None else "open: queued"
        elif self.sent is not None:
            status = as_int(self.sent.get("status")) or 0
            error = as_str(self.sent.get("error"))
            if self.delivered is None:
                text = "sent (this older log does not say whether it was delivered)"
            elif self.delivered:
                text = f"delivered (HTTP {status})" if status else "delivered"
            else:
                text = "failed" + (f" (HTTP {status})" if status else "") + (f": {error}" if error else "")
        elif self.unfinished:
            text = f"unfinished: {self.unfinished}"
        else:
            text = "sending" if self.sending else "approved, not yet sending"
        for run in self.pipeline:
            text += f"; Home Assistant run: {run}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "seq": self.seq, "wall_ms": self.wall_ms, "kind": self.kind,
            "destination": self.destination, "bytes": self.bytes, "sha256": self.sha256,
            "uid": self.uid, "exe": self.exe, "file": self.file or None, "audio_s": self.audio_s,
            "announced": self.announced_ms is not None, "announced_ms": self.announced_ms,
            "decision": self.decision or None, "reason": self.reason or None, "decided_ms": self.decided_ms,
            "delivered": self.delivered, "status": as_int(self.sent.get("status")) if self.sent else None,
            "error": (as_str(self.sent.get("error")) or None) if self.sent else None,
            "unfinished": self.unfinished or None, "pipeline": self.pipeline, "result": self.result,
        }


def request_rows(records: Iterable[dict[str, Any]]) -> list[RequestRow]:
    """The requests among `records` (in log order), each joined with what followed it."""
    rows: list[RequestRow] = []
    by_id: dict[str, RequestRow] = {}
    utterances: dict[str, dict[str, Any]] = {}  # by sha256 of the kept WAV
    last_utterance: dict[str, Any] | None = None
    for record in records:
        kind = record.get("type")
        seq = as_int(record.get("seq")) or 0
        wall = as_int(record.get("wall_ms"))
        if kind == "utterance":
            last_utterance = record
            utterances[as_str(record.get("sha256"))] = record
        elif kind in ("request", "refused"):
            row = RequestRow(
                seq=seq, id=as_str(record.get("id")) if kind == "request" else "", wall_ms=wall,
                kind=as_str(record.get("kind")), destination=as_str(record.get("destination")),
                bytes=as_int(record.get("bytes")), sha256=as_str(record.get("sha256")),
                uid=as_int(record.get("uid")), exe=as_str(record.get("exe")))
            row.utterance = _uploaded(row, utterances, last_utterance)
            if kind == "refused":
                row.decision, row.reason, row.decided_ms = "refused", as_str(record.get("code")), wall
            elif row.id:
                by_id[row.id] = row
            rows.append(row)
        else:
            row_of = by_id.get(as_str(record.get("id")))
            if row_of is not None:
                _follow(row_of, kind, record, wall)
    return rows


def _uploaded(row: RequestRow, by_sha: dict[str, dict[str, Any]], last: dict[str, Any] | None) -> dict[str, Any] | None:
    """The kept utterance an upload carries: the WAV itself (same SHA-256), or for Home
    Assistant's link the samples of the utterance guardd kept just before (its bytes less the header)."""
    if row.kind != "upload":
        return None
    if row.sha256 and row.sha256 in by_sha:
        return by_sha[row.sha256]
    if row.exe == AFTER_WAKE and last is not None:
        size = as_int(last.get("bytes"))
        if size is not None and row.bytes == size - WAV_HEADER_BYTES:
            return last
    return None


def _follow(row: RequestRow, kind: Any, record: dict[str, Any], wall: int | None) -> None:
    """A later record about a request."""
    if kind == "announce" and row.announced_ms is None:
        row.announced_ms = wall
    elif kind == "decision" and not row.decision:  # (a late duplicate denial changes nothing)
        row.decision = as_str(record.get("decision")) or "denied"
        row.reason, row.decided_ms = as_str(record.get("reason")), wall
    elif kind == "send":
        row.sending = True
    elif kind == "sent":
        row.sent = record
    elif kind == "unfinished":
        row.unfinished = as_str(record.get("outcome")) or "unknown"
    elif kind == "pipeline":
        result, reason = as_str(record.get("result")), as_str(record.get("reason"))
        row.pipeline.append(result + (f" ({reason})" if reason and result != "replied" else ""))
