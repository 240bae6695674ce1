"""The broker: every outbound request, from submission through the gate to the sender's result.

Write-ahead order, which the tests check record by record:
  request (logged before arming) -> decision (logged before the payload is released or dropped)
  -> send (logged before the first byte leaves) -> sent (the result).
If any of these log writes fails, the request is denied and nothing is sent. One request is
armed at a time; the next waits (bounded) until the previous one's send has finished.
"""

from __future__ import annotations

import errno
import logging
from collections import deque
from typing import Any, Callable

from guardd.config.settings import Config
from guardd.confirm.gate import Decision, Gate
from guardd.confirm.outbox import Caller, Outbox, Reply, Request
from guardd.confirm.sender import Sender, SendJob, SendResult

log = logging.getLogger(__name__)

Record = Callable[..., "int | None"]  # append a log record; its seq, or None if it failed

CONTENT_TYPES = {"message": "text/plain; charset=utf-8", "upload": "application/octet-stream"}
# Why a payload could not be copied in, by errno: the refusal's code. Anything else: spool_failed.
SPOOL_ERRORS = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EFBIG: "too_large"}


class Refused(Exception):
    """A request that cannot even be queued: unknown destination, too large, busy, log down."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Broker:
    def __init__(
        self,
        config: Config,
        *,
        gate: Gate,
        outbox: Outbox,
        sender: Sender,
        record: Record,
        emit: Callable[[dict[str, Any]], None],
        changed: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.gate = gate
        self.outbox = outbox
        self.sender = sender
        self._record = record
        self._emit = emit
        self._changed = changed  # the LED may need another pattern
        self._clock = clock
        self.waiting: deque[Request] = deque()
        self.armed: Request | None = None
        self.sending: Request | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=10)  # recent decisions, for status
        self.last_activity = float("-inf")  # when a request was last armed or decided
        self._unlogged: list[tuple[str, str]] = []  # denials the log could not take: (id, reason)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.armed or self.sending)

    # -- submission ----------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        destination: str,
        payload: bytes,
        caller: Caller,
        *,
        reply: Reply | None = None,
        client: int | None = None,
        content_type: str | None = None,
    ) -> Request:
        """Copy the payload in, log the request, queue it. Raises Refused; nothing then waits."""
        try:
            return self._submit(kind, destination, payload, caller, reply, client, content_type)
        except Refused as exc:
            self._record("refused", kind=kind, destination=destination[:64], bytes=len(payload),
                         code=exc.code, **caller.fields())
            raise

    def _submit(
        self,
        kind: str,
        destination: str,
        payload: bytes,
        caller: Caller,
        reply: Reply | None,
        client: int | None,
        content_type: str | None,
    ) -> Request:
        dest = self.config.destination(destination)
        if dest is None:
            names = ", ".join(d.name for d in self.config.destinations) or "none are configured"
            raise Refused("unknown_destination", f"no destination named {destination!r} (configured: {names})")
        if len(payload) > dest.max_bytes:
            raise Refused("too_large", f"{len(payload)} bytes is over {dest.name}'s max_bytes of {dest.max_bytes}")
        if len(self.waiting) >= self.config.confirm.queue and (self.armed or self.sending):
            raise Refused("busy", "another request is being confirmed and the queue is full; try again later")
        incoming = self.outbox.incoming_name()  # the id comes from the request record's seq
        try:
            spool, digest = self.outbox.spool(incoming, payload)
        except OSError as exc:
            code = SPOOL_ERRORS.get(exc.errno or 0, "spool_failed")
            raise Refused(code, f"cannot copy the {len(payload)}-byte payload into the outbox: "
                                f"{exc.strerror or exc}") from None
        seq = self._record(
            "request", id=lambda seq: f"r{seq}", kind=kind, destination=dest.name, sha256=digest,
            bytes=len(payload), **caller.fields(),
        )
        if seq is None:
            self.outbox.discard(incoming)
            raise Refused("log_unavailable", "the audit log cannot be written, so nothing can be sent")
        request_id = f"r{seq}"
        try:
            spool = self.outbox.claim(incoming, request_id)
        except OSError as exc:
            self.outbox.discard(incoming)
            self._record("decision", id=request_id, decision="denied", reason="spool_failed")
            raise Refused("spool_failed", f"cannot name the spooled payload {request_id}: "
                                          f"{exc.strerror or exc}") from None
        request = Request(
            request_id, kind, dest.name, digest, len(payload),
            content_type or CONTENT_TYPES[kind], spool, caller, reply, client, self._clock(),
        )
        ahead = len(self.waiting) + (1 if self.armed or self.sending else 0)
        self._emit({"event": "request", **request.describe(), "queued": ahead})
        self.waiting.append(request)
        self._arm_next()
        if request is not self.armed:
            self._reply(request, {"status": "queued", "id": request.id, "position": len(self.waiting)})
        return request

    def _arm_next(self) -> None:
        if self.armed or self.sending or not self.waiting:
            return
        request = self.waiting.popleft()
        self.armed = request
        self.last_activity = self._clock()
        self.gate.arm(request.id, self.last_activity)
        self._changed()
        if request.reply:
            request.extra["told"] = self._clock()
            self._reply(request, {"status": "waiting", "id": request.id, "destination": request.destination,
                                  "sha256": request.sha256, "bytes": request.size,
                                  "seconds_left": self.config.confirm.timeout_s})

    # -- inputs --------------------------------------------------------------------------------

    def on_edge(self, pressed: bool, t: float) -> None:
        self._decided(self.gate.edge(pressed, t))

    def tick(self, now: float) -> None:
        self._decided(self.gate.advance(now))
        request = self.armed
        if request is not None and request.reply and now - request.extra.get("told", -1.0) >= 1.0:
            request.extra["told"] = now  # the client hears it is still waiting, once a second
            left = self.gate.armed_at + self.config.confirm.timeout_s - now
            self._reply(request, {"status": "waiting", "id": request.id, "seconds_left": round(max(left, 0), 1)})

    def cancel_client(self, client: int) -> None:
        """A client went away: its requests are cancelled (denied, logged), never sent."""
        for request in [r for r in self.waiting if r.client == client]:
            self.waiting.remove(request)
            request.reply = None
            self._finish_denied(request, "cancelled")
        if self.armed and self.armed.client == client:
            self.armed.reply = None
            self._decided(self.gate.cancel(self._clock(), "cancelled"))

    def abort_all(self, reason: str) -> None:
        """Shutting down: everything pending is denied and logged; nothing is sent."""
        for request in list(self.waiting):
            self.waiting.remove(request)
            self._finish_denied(request, reason)
        if self.armed:
            self._decided(self.gate.cancel(self._clock(), reason))

    # -- decisions and results -----------------------------------------------------------------

    def _decided(self, decision: Decision | None) -> None:
        if decision is None:
            return
        request = self.armed
        assert request is not None and request.id == decision.request_id
        self.armed = None
        self.last_activity = max(self.last_activity, decision.t, self._clock())
        approved = decision.approved
        reason = decision.reason
        if self._record("decision", id=request.id, decision="approved" if approved else "denied",
                        reason=reason) is None:
            approved, reason = False, "log unavailable"
            self._unlogged.append((request.id, reason))
        if approved and self._record("send", id=request.id, destination=request.destination,
                                     sha256=request.sha256, bytes=request.size) is None:
            approved, reason = False, "log unavailable"
        self._emit({"event": "decision", "id": request.id,
                    "decision": "approved" if approved else "denied", "reason": reason})
        self.history.append({"id": request.id, "decision": "approved" if approved else "denied",
                             "reason": reason})
        if not approved:
            self._reply(request, {"status": "denied", "id": request.id, "reason": reason})
            self.outbox.discard(request.id)
            self._changed()
            self._arm_next()
            return
        self._reply(request, {"status": "approved", "id": request.id})
        self.sending = request
        self._changed()
        dest = self.config.destination(request.destination)
        assert dest is not None
        self.sender.submit(SendJob(request.id, dest, request.spool, request.sha256, request.content_type))

    def _finish_denied(self, request: Request, reason: str) -> None:
        if self._record("decision", id=request.id, decision="denied", reason=reason) is None:
            log.error("could not log the denial of %s (%s); it is logged when the log writes again",
                      request.id, reason)
            self._unlogged.append((request.id, reason))
        self._emit({"event": "decision", "id": request.id, "decision": "denied", "reason": reason})
        self._reply(request, {"status": "denied", "id": request.id, "reason": reason})
        self.outbox.discard(request.id)

    def log_late_denials(self) -> None:
        """The log writes again: record the denials it missed, so every request has its end."""
        while self._unlogged:
            request_id, reason = self._unlogged[0]
            if self._record("decision", id=request_id, decision="denied", reason=reason) is None:
                return
            self._unlogged.pop(0)

    def on_result(self, result: SendResult) -> None:
        request = self.sending
        if request is None or request.id != result.request_id:
            log.error("a send result for %s arrived unexpectedly", result.request_id)
            return
        self.sending = None
        self._record("sent", id=request.id, status=result.status, delivered=int(result.delivered),
                     bytes=result.bytes_sent, duration_ms=int(result.duration_s * 1000),
                     error=result.error)
        event: dict[str, Any] = {"event": "sent" if result.status else "send_failed", "id": request.id,
                                 "status": result.status, "delivered": result.delivered}
        if result.error:
            event["error"] = result.error
        if request.kind == "upload":  # an assistant subscribes to read, say, the transcript
            event["body"] = result.body.decode("utf-8", errors="replace")
        self._emit(event)
        body = result.body.decode("utf-8", errors="replace")
        self._reply(request, {"status": "sent" if result.delivered else "failed", "id": request.id,
                              "http_status": result.status, "error": result.error, "body": body})
        self.outbox.discard(request.id)
        self._changed()
        self._arm_next()

    def _reply(self, request: Request, message: dict[str, Any]) -> None:
        if request.reply is not None:
            try:
                request.reply(message)
            except Exception:  # a client's stream failing must not stop the broker
                log.exception("reply to %s failed", request.id)

    # -- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self._clock()
        armed = None
        if self.armed:
            armed = {**self.armed.describe(),
                     "seconds_left": round(self.gate.armed_at + self.config.confirm.timeout_s - now, 1)}
        return {"armed": armed, "sending": self.sending.describe() if self.sending else None,
                "queue": [r.describe() for r in self.waiting], "recent": list(self.history)}
