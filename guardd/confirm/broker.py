"""The broker: every outbound request, from submission through the gate to the sender's result.

Write-ahead order, which the tests check record by record:
  request (logged before arming) -> announce (logged before the speaker says it) -> decision
  (logged before the payload is released or dropped) -> send (logged before the first byte
  leaves) -> sent (the result).
If any of these log writes fails, the request is denied and nothing is sent. One request is
armed at a time; the next waits (bounded) until the previous one's send has finished.

Calls go one way: the core calls the broker, the broker calls the gate, and each answers with
what happened. Every method that changes something returns an Outcome: the events and the
messages to the asking clients, in the order they happened, for the core to tell, and the
approved job the core hands to the sender. The broker writes its records through the core's
Recorder and never calls back into the core.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from guardd.config.settings import Config
from guardd.confirm.gate import ANNOUNCE_START_S, Decision, Gate
from guardd.confirm import messages
from guardd.confirm.intake import take_in
from guardd.confirm.outbox import Caller, Outbox, Reply, Request
from guardd.confirm.sender import SendJob, SendResult
from guardd.confirm.unfinished import close_unfinished
from guardd.journal import Recorder
from guardd.speak.news import Played, Playing, Said
from guardd.speak.sentence import Announcement

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ToClient:
    """A message for the client that submitted a request, on its own stream."""

    reply: Reply
    request_id: str
    message: dict[str, Any]


@dataclass
class Outcome:
    """What one call to the broker did, for the core to act on."""

    # To tell, in order: events (a dict, without the time yet) and messages to clients.
    told: list[dict[str, Any] | ToClient] = field(default_factory=list)
    send: SendJob | None = None  # an approved request's job, for the sender
    request: Request | None = None  # the request a submit queued
    announce: Announcement | None = None  # what the speaker is to say now
    hush: list[str] = field(default_factory=list)  # requests decided: their announcements stop, their asking ends
    fault: tuple[str, str] | None = None  # a part's fault to report (kind, why)


class Broker:
    def __init__(self, config: Config, *, gate: Gate, outbox: Outbox, record: Recorder,
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.gate = gate
        self.outbox = outbox
        self._record = record
        self._clock = clock
        self.waiting: deque[Request] = deque()
        self.sending: Request | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=10)  # recent decisions, for status
        self._unlogged: list[tuple[str, str]] = []  # denials the log could not take: (id, reason)
        self._out = Outcome()

    @property
    def armed(self) -> Request | None:
        """The request the gate is asking about (the gate alone holds it)."""
        return self.gate.armed

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.armed or self.sending)

    def close_unfinished(self, records: Iterable[dict[str, Any]]) -> None:
        """At start-up: close what the log left open, and empty the outbox (a restart approves
        nothing)."""
        close_unfinished(records, self._record, self.outbox)

    def _done(self) -> Outcome:
        out, self._out = self._out, Outcome()
        return out

    # -- submission ----------------------------------------------------------------------------

    def submit(self, kind: str, destination: str, payload: bytes, caller: Caller, *, reply: Reply | None = None,
               client: int | None = None, content_type: str | None = None, kept: bool = False) -> Outcome:
        """Copy the payload in, log the request, queue it (Outcome.request). Raises Refused;
        nothing then waits. `kept`: the payload is guardd's own kept utterance (after a wake)."""
        full = len(self.waiting) >= self.config.confirm.queue and bool(self.armed or self.sending)
        request = take_in(self.config, self.outbox, self._record, kind, destination, payload, caller,
                          queue_full=full, reply=reply, client=client, content_type=content_type, kept=kept,
                          now=self._clock())
        self._out.told.append(messages.request_event(request, len(self.waiting) + (1 if self.armed or self.sending else 0)))
        self.waiting.append(request)
        self._arm_next()
        if request is not self.armed:
            self._reply(request, messages.queued(request, len(self.waiting)))
        self._out.request = request
        return self._done()

    def _arm_next(self) -> None:
        if self.armed or self.sending or not self.waiting or self._record.failure:
            return  # (while the log is down the core denies what waits: nothing is armed)
        request = self.waiting.popleft()
        said = request.announcement
        assert said is not None
        self.gate.arm(request, self._clock(), announced=True)
        if self._record("announce", id=request.id, sha256=said.sha256, playback=int(said.clip is not None)) is None:
            self._decided(self.gate.cancel(self._clock(), "log unavailable"))
            return  # (the log fault denies what waits)
        self._out.told.append(messages.asking_event(request, self.config.confirm.timeout_s))
        self._out.announce = said
        if request.reply:
            request.extra["told"] = self._clock()
            self._reply(request, messages.asking(request, self.config.confirm.timeout_s))

    # -- inputs --------------------------------------------------------------------------------

    def on_edge(self, pressed: bool, t: float) -> Outcome:
        self._decided(self.gate.edge(pressed, t))
        return self._done()

    def on_speaker(self, news: Playing | Said | Played) -> Outcome:
        """The armed request's announcement began, said its first part, or ended: the gate's
        press window and timeout follow it. News of any other sound is not the broker's."""
        request = self.armed
        if request is None or request.id != news.request_id:
            return self._done()
        said = request.announcement
        assert said is not None
        if isinstance(news, Playing):
            self.gate.announcing(news.started, news.ends)
            request.extra["playing"] = True
            asks = news.ends if news.asks_at is None else news.asks_at
            self._out.told.append(messages.announce_event(said, news.ends - news.started, asks - news.started))
        elif isinstance(news, Said):
            self.gate.said(news.at)
        else:
            self.gate.announced(news.ended)
            request.extra["announced"] = True
            if not request.extra.get("playing"):  # it could not play: the words are still told
                self._out.told.append(messages.announce_event(said, 0.0, 0.0, spoken=False))
        return self._done()

    def tick(self, now: float) -> Outcome:
        self._decided(self.gate.advance(now))
        request = self.armed
        if request is not None and request.reply and now - request.extra.get("told", -1.0) >= 1.0:
            request.extra["told"] = now  # the client hears it is still waiting, once a second
            self._reply(request, messages.still_asking(request, self._seconds_left(now),
                                                       not request.extra.get("announced")))
        return self._done()

    def _seconds_left(self, now: float) -> float:
        """Until the armed request times out (the whole timeout while it is being announced)."""
        deadline = self.gate.deadline
        return self.config.confirm.timeout_s if deadline is None else deadline - now

    def held_idle_since(self) -> float | None:
        """When the press now held began, if nothing was asking then or since (a mute press)."""
        return self.gate.held_idle_since()

    def cancel_client(self, client: int) -> Outcome:
        """A client went away: its requests are cancelled (denied, logged), never sent."""
        for request in [r for r in self.waiting if r.client == client]:
            self.waiting.remove(request)
            request.reply = None
            self._finish_denied(request, "cancelled")
        armed = self.armed
        if armed is not None and armed.client == client:
            armed.reply = None
            self._decided(self.gate.cancel(self._clock(), "cancelled"))
        return self._done()

    def abort_all(self, reason: str) -> Outcome:
        """Shutting down, or a fault that stops sending: everything pending is denied and
        logged; nothing is sent."""
        for request in list(self.waiting):
            self.waiting.remove(request)
            self._finish_denied(request, reason)
        if self.armed:
            self._decided(self.gate.cancel(self._clock(), reason))
        return self._done()

    # -- decisions and results -----------------------------------------------------------------

    def _decided(self, decision: Decision[Request] | None) -> None:
        """After every call to the gate: its decision, if it made one (logged, told, sent on)."""
        stuck, self.gate.fell_back = self.gate.fell_back, None
        if stuck is not None:  # only a logged fault of the speaker lets the LED ask alone
            self._out.fault = ("speaker", f"the speaker did not begin announcing {stuck.id} within "
                                          f"{ANNOUNCE_START_S:g} s, so the LED alone asks for it")
        if decision is None:
            return
        request, approved, reason = decision.request, decision.approved, decision.reason
        self._out.hush.append(request.id)  # decided: the question is no longer asked, and other sounds may play
        if self._record("decision", id=request.id, decision=messages.verdict(approved), reason=reason) is None:
            approved, reason = False, "log unavailable"
            self._unlogged.append((request.id, reason))
        if approved and self._record("send", id=request.id, destination=request.destination,
                                     sha256=request.sha256, bytes=request.size) is None:
            approved, reason = False, "log unavailable"
        self._told_decision(request, approved, reason)
        self.history.append({"id": request.id, "decision": messages.verdict(approved), "reason": reason})
        if not approved:
            self.outbox.discard(request.id)
            self._arm_next()
            return
        self.sending = request
        dest = self.config.destination(request.destination)
        assert dest is not None
        self._out.send = SendJob(request.id, dest, request.spool, request.sha256, request.content_type)

    def _finish_denied(self, request: Request, reason: str) -> None:
        if self._record("decision", id=request.id, decision="denied", reason=reason) is None:
            log.error("could not log the denial of %s (%s); it is logged when the log writes again",
                      request.id, reason)
            self._unlogged.append((request.id, reason))
        self._told_decision(request, False, reason)
        self.outbox.discard(request.id)

    def _told_decision(self, request: Request, approved: bool, reason: str) -> None:
        self._out.told.append(messages.decision_event(request.id, approved, reason))
        self._reply(request, messages.decision_reply(request.id, approved, reason))

    def log_late_denials(self) -> Outcome:
        """The log writes again: record the denials it missed, so every request has its end,
        and arm what waited."""
        while self._unlogged:
            request_id, reason = self._unlogged[0]
            if self._record("decision", id=request_id, decision="denied", reason=reason) is None:
                return self._done()
            self._unlogged.pop(0)
        self._arm_next()
        return self._done()

    def on_result(self, result: SendResult) -> Outcome:
        request = self.sending
        if request is None or request.id != result.request_id:
            log.error("a send result for %s arrived unexpectedly", result.request_id)
            return self._done()
        self.sending = None
        self._record("sent", **messages.sent_fields(request, result))
        self._out.told.append(messages.result_event(request, result))
        self._reply(request, messages.result_reply(request, result))
        self.outbox.discard(request.id)
        self._arm_next()
        return self._done()

    def _reply(self, request: Request, message: dict[str, Any]) -> None:
        if request.reply is not None:
            self._out.told.append(ToClient(request.reply, request.id, message))

    # -- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return messages.status(self.armed, self._seconds_left(self._clock()), self.sending, self.waiting,
                               self.history)
