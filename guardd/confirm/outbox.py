"""Outbound requests and their payloads, copied into the daemon's own state.

A client's bytes are copied into `<state_dir>/outbox/<id>.bin` (mode 0600) the moment they
arrive; guardd never keeps a path a client gave it. The SHA-256 taken then is what the owner
approves, and the sender hashes the spooled bytes again just before they leave. Spooled payloads
die with the process: at start-up everything left in the outbox (payloads and half-written
temporary files alike) is logged and deleted, and its request logged as aborted, so a restart can
never send anything.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from guardd.durable import write_atomically
from guardd.speak.sentence import Announcement

Reply = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Caller:
    """Who asked, from SO_PEERCRED on the control socket (or guardd itself after a wake)."""

    uid: int
    pid: int
    exe: str

    def fields(self) -> dict[str, int | str]:
        return {"uid": self.uid, "pid": self.pid, "exe": self.exe}


@dataclass
class Request:
    id: str
    kind: str  # "upload" or "message"
    destination: str
    sha256: str
    size: int  # bytes
    content_type: str
    spool: Path
    caller: Caller
    reply: Reply | None = None  # the submitting client's stream; None for after-wake uploads
    client: int | None = None  # the control connection that owns it; its loss cancels it
    submitted_at: float = 0.0
    announcement: Announcement | None = None  # what the speaker says as it asks
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "destination": self.destination,
                "sha256": self.sha256, "bytes": self.size}


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, request_id: str) -> Path:
        return self.directory / f"{request_id}.bin"

    def spool(self, request_id: str, payload: bytes) -> tuple[Path, str]:
        """Copy a payload in (0600, durable) and return its path and SHA-256."""
        path = self.path_for(request_id)
        write_atomically(path, payload)
        return path, hashlib.sha256(payload).hexdigest()

    @staticmethod
    def incoming_name() -> str:
        """A name for a payload being copied in, before its request has an id."""
        return f"incoming-{secrets.token_hex(8)}"

    def claim(self, incoming: str, request_id: str) -> Path:
        """Give a spooled payload its request's name (a rename in one directory)."""
        path = self.path_for(request_id)
        os.replace(self.path_for(incoming), path)
        return path

    def discard(self, request_id: str) -> None:
        self.path_for(request_id).unlink(missing_ok=True)

    def leftovers(self) -> list[Path]:
        """Everything in the outbox: at start-up none of it belongs to a live request."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.iterdir())
