"""What a request tells as it goes, one function a step: the events (for the daemon's sink and
`guardd status`) and the messages to the client that asked, on its own stream. The broker says
when each is told; control/protocol.py names the statuses that end a request.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from guardd.confirm.outbox import Request
from guardd.confirm.sender import SendResult
from guardd.speak.sentence import Announcement

Message = dict[str, Any]


def verdict(approved: bool) -> str:
    return "approved" if approved else "denied"


def request_event(request: Request, ahead: int) -> Message:
    return {"event": "request", **request.describe(), "queued": ahead}


def outcome_of(event: Message) -> str | None:
    """Which step of a request an event tells: "asking", or how it ended ("approved", "denied",
    "sent", "failed"); None for any other event. The LED's endings and the sounds both go by it."""
    kind = event.get("event")
    if kind == "asking":
        return "asking"
    if kind == "decision":
        return "approved" if event.get("decision") == "approved" else "denied"
    if kind in ("sent", "send_failed"):
        return "sent" if event.get("delivered") else "failed"
    return None


def asking_event(request: Request, timeout_s: float) -> Message:
    """The request is armed: from now the LED asks, and a fresh press approves it."""
    return {"event": "asking", "id": request.id, "destination": request.destination, "timeout_s": timeout_s}


def announce_event(said: Announcement, duration_s: float, asks_after_s: float, *, spoken: bool = True) -> Message:
    """The speaker began saying what the request is; a fresh press counts once `asks_after_s`
    of it have played (where to, and how much: its first part). When the speaker could not
    play it (`spoken` false: a logged fault), it is told all the same, and the LED alone asks."""
    event = {"event": "announce", "id": said.request_id, "text": said.text, "duration_s": round(duration_s, 2),
             "asks_after_s": math.ceil(round(asks_after_s * 100, 6)) / 100}  # (rounded up: never early)
    return event if spoken else {**event, "spoken": False}


def queued(request: Request, position: int) -> Message:
    return {"status": "queued", "id": request.id, "position": position}


def asking(request: Request, timeout_s: float) -> Message:
    """The request is armed: the LED asks and the speaker announces it; a press counts once it
    has said where to and how much, and within timeout_s of its end."""
    return {"status": "waiting", "id": request.id, "destination": request.destination,
            "sha256": request.sha256, "bytes": request.size, "seconds_left": timeout_s,
            "announcing": True}


def still_asking(request: Request, left_s: float, announcing: bool) -> Message:
    """Once a second: while `announcing` the timeout has not begun to run."""
    return {"status": "waiting", "id": request.id, "seconds_left": round(max(left_s, 0), 1),
            "announcing": announcing}


def decision_event(request_id: str, approved: bool, reason: str) -> Message:
    return {"event": "decision", "id": request_id, "decision": verdict(approved), "reason": reason}


def decision_reply(request_id: str, approved: bool, reason: str) -> Message:
    if approved:
        return {"status": "approved", "id": request_id}
    return {"status": "denied", "id": request_id, "reason": reason}


def sent_fields(request: Request, result: SendResult) -> dict[str, int | str]:
    """The `sent` record's fields (its destination too, so `guardd log --type sent` says where)."""
    return {"id": result.request_id, "destination": request.destination, "status": result.status,
            "delivered": int(result.delivered),
            "bytes": result.bytes_sent, "duration_ms": int(result.duration_s * 1000), "error": result.error}


def result_event(request: Request, result: SendResult) -> Message:
    answered = result.status or result.delivered  # (Home Assistant's link has no HTTP status)
    event: Message = {"event": "sent" if answered else "send_failed", "id": request.id,
                      "status": result.status, "delivered": result.delivered}
    if result.error:
        event["error"] = result.error
    if request.kind == "upload":  # an assistant subscribes to read, say, the transcript
        event["body"] = result.body.decode("utf-8", errors="replace")
    return event


def result_reply(request: Request, result: SendResult) -> Message:
    return {"status": "sent" if result.delivered else "failed", "id": request.id,
            "http_status": result.status, "error": result.error,
            "body": result.body.decode("utf-8", errors="replace")}


def status(armed: Request | None, seconds_left: float, sending: Request | None, waiting: Iterable[Request],
           history: Iterable[Message]) -> Message:
    """What `guardd status` shows of the requests: the armed one (how long it has, and whether it
    is still being announced), the one sending, the queue and the last decisions."""
    asking = None
    if armed is not None:
        asking = {**armed.describe(), "seconds_left": round(seconds_left, 1),
                  "announcing": not armed.extra.get("announced")}
    return {"armed": asking, "sending": sending.describe() if sending else None,
            "queue": [r.describe() for r in waiting], "recent": list(history)}
