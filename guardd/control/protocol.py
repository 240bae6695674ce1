"""The control socket's wire format, shared by the daemon's server and the clients.

One JSON object per line each way. A client sends one call, `{"call": ...}`: `submit` (a
message's `text`, or an upload's base64 `data`, to a configured destination `to`), `status`,
`subscribe` or `mute`. The daemon answers with lines that each carry a `status`; after a submit's
final status (FINAL) it closes the connection. A refusal is `{"status": "error", "code": ...,
"message": ...}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from guardd.errors import BadRequest

CALLS = ("submit", "status", "subscribe", "mute")
HOLDING_CALLS = ("submit", "subscribe")  # the connection stays open for what the core does next
FINAL = ("denied", "sent", "failed")  # a submit's last status; the connection closes after it


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, sort_keys=True).encode() + b"\n"


def error(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "code": code, "message": message}


def parse_call(line: bytes) -> dict[str, Any]:
    """The call a request line holds, or BadRequest saying what is wrong with it."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise BadRequest("each line must be one JSON object") from None
    if not isinstance(message, dict) or message.get("call") not in CALLS:
        raise BadRequest(f"\"call\" must be one of: {', '.join(CALLS)}")
    return message


def submit_call(destination: str, payload: bytes, *, text: bool, content_type: str | None) -> dict[str, Any]:
    """The submit call for `payload`: a text message, or an upload in base64."""
    if text:
        return {"call": "submit", "to": destination, "kind": "message", "text": payload.decode("utf-8")}
    call = {"call": "submit", "to": destination, "kind": "upload",
            "data": base64.b64encode(payload).decode("ascii")}
    if content_type:
        call["content_type"] = content_type
    return call


def parse_submit(message: dict[str, Any]) -> tuple[str, str, bytes, str | None]:
    """(kind, destination, payload, content type) of a submit call, or BadRequest."""
    to = message.get("to")
    if not isinstance(to, str) or not to or len(to) > 64:
        raise BadRequest("submit needs \"to\": the name of a configured destination")
    kind = message.get("kind", "message" if "text" in message else "upload")
    if kind == "message":
        text = message.get("text")
        if not isinstance(text, str):
            raise BadRequest("a message needs \"text\": a string")
        try:
            return kind, to, text.encode("utf-8"), None
        except UnicodeEncodeError:  # JSON allows "\ud800", a lone surrogate UTF-8 cannot hold
            raise BadRequest("\"text\" is not valid Unicode") from None
    if kind == "upload":
        data = message.get("data")
        if not isinstance(data, str):
            raise BadRequest("an upload needs \"data\": the payload in base64")
        try:
            payload = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("\"data\" is not valid base64") from None
        content_type = message.get("content_type")
        if content_type is not None and (not isinstance(content_type, str) or not content_type.isprintable()
                                         or len(content_type) > 100):
            raise BadRequest("\"content_type\" must be a short printable string")
        return kind, to, payload, content_type
    raise BadRequest("\"kind\" must be \"message\" or \"upload\"")
