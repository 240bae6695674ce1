"""What is wrong now, by kind, in the order it went wrong: "log" (the audit log cannot be
written), "audio" (the microphone), "speaker" (guardd's own sounds cannot play), "storage"
(recordings or the mute state), "socket", "wyoming" (Home Assistant's listener).

Only the log's fault stops every send (BLOCKING_FAULTS): without the log nothing can be recorded
before it happens, so nothing may leave. The others stop only their own part: a request that
still arrives is asked for by the LED like any other.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from guardd.journal import Recorder
from guardd.listen.listener import Listener

log = logging.getLogger(__name__)

BLOCKING_FAULTS = frozenset({"log"})


class Tells(Protocol):
    """What a fault needs of the teller (telling.py): show the LED, tell an event."""

    def led(self) -> None: ...

    def event(self, event: dict[str, Any]) -> None: ...


class Faults:
    def __init__(self) -> None:
        self.standing: dict[str, str] = {}  # kind -> reason

    def __contains__(self, kind: str) -> bool:
        return kind in self.standing

    @property
    def first(self) -> str | None:
        """The first fault still standing, for status and the LED; None when all is well."""
        return next(iter(self.standing.values()), None)

    @property
    def blocking(self) -> str | None:
        """The first standing fault that stops every send, or None."""
        return next((why for kind, why in self.standing.items() if kind in BLOCKING_FAULTS), None)

    def enter(self, kind: str, reason: str) -> bool:
        """Note the fault (the latest reason wins); True if it is new."""
        new = kind not in self.standing
        self.standing[kind] = reason
        return new

    def leave(self, kind: str) -> bool:
        """True if the fault stood until now."""
        return self.standing.pop(kind, None) is not None


class Health:
    """Entering and leaving faults: each change is logged (but the log's own fault, which cannot
    be), told as an event and shown; nothing is kept while something is wrong."""

    def __init__(self, faults: Faults, *, record: Recorder, tell: Tells, listener: Listener) -> None:
        self.faults = faults
        self._record = record
        self._tell = tell
        self._listener = listener

    def enter(self, kind: str, reason: str, *, loggable: bool = True) -> bool:
        """True if this fault is new and stops every send: what waits must then be denied."""
        first = self.faults.enter(kind, reason)
        self._listener.drop()
        self._tell.led()
        if first:
            log.error("fault: %s", reason)
            self._tell.event({"event": "fault", "t": self._listener.audio_t, "reason": reason})
            if loggable:
                self._record("fault", kind=kind, reason=reason)
        return first and kind in BLOCKING_FAULTS

    def leave(self, kind: str) -> None:
        if not self.faults.leave(kind):
            return
        if kind != "log":
            self._record("recovered", fault=kind)
        log.info("recovered: %s", kind)
        self._tell.event({"event": "recovered", "t": self._listener.audio_t, "fault": kind})
        self._tell.led()
