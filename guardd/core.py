"""The core loop's state: one thread owns it, every adapter is passed in, and time comes from an
injected clock, so `run`, `replay` and the tests drive exactly the same code.

Calls go one way. The core feeds frames to the Listener and requests, presses and results to the
Broker (which asks the Gate); each answers with what happened, and the core tells it (events),
hands approved jobs to the sender and shows the LED. Nothing below calls back up.

Invariants:
- a record is durable in the audit log before the action it describes (LED on, file kept, file
  deleted, request armed, payload released); if the log cannot be written the action does not
  happen and the LED shows a fault;
- the LED is never dark while audio after a wake word is being kept; its pattern is derived
  from the state every time the state changes (fault, awaiting a press, sending, recording, idle);
- audio is held only between a wake and the end of its utterance, plus a rolling history that
  never leaves memory unless a wake word keeps it, and is dropped on mute;
- a restart approves nothing: requests left without a decision are logged as aborted and their
  spooled payloads deleted.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Callable, Protocol

from guardd import __version__
from guardd.config.settings import Config
from guardd.confirm.broker import Broker, Outcome, ToClient
from guardd.confirm.gate import Gate
from guardd.confirm.outbox import Caller, Outbox, Reply, Request
from guardd.confirm.sender import SendJob, SendResult
from guardd.device.panel import ButtonEdge, LedState
from guardd.errors import Refused
from guardd.journal import Field, Journal, Recorder
from guardd.listen.endpoint import Vad
from guardd.listen.listener import Heard, Listener
from guardd.listen.recordings import Recordings
from guardd.listen.wake import WakeDetector

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 60.0  # how often the retention rule runs, on the core's clock
# Faults that stop every send. Without the log nothing can be recorded before it happens, so
# nothing may leave. A lost microphone, a full recordings disk or a broken socket stop only their
# own part: a request that still arrives is asked for by the LED like any other.
BLOCKING_FAULTS = frozenset({"log"})

Emit = Callable[[dict[str, Any]], None]


class Sends(Protocol):
    """The sender as the core sees it: take a job; the result comes back as an input later."""

    def submit(self, job: SendJob) -> None: ...


class Core:
    def __init__(
        self,
        config: Config,
        *,
        wake: WakeDetector,
        vad: Vad,
        journal: Journal,
        recordings: Recordings,
        show: Callable[[LedState], None],
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        emit: Emit,
        sender: Sends,
        button_down: bool = False,
        muted: bool = False,
        persist_mute: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.record = Recorder(journal)
        self.listener = Listener(config, wake=wake, vad=vad, recordings=recordings, record=self.record)
        gate: Gate[Request] = Gate(config.confirm, button_down=button_down, now=clock())
        self.broker = Broker(config, gate=gate, outbox=Outbox(config.state_path / "outbox"),
                             record=self.record, clock=clock)
        self.sender = sender
        self._show = show
        self.clock = clock
        self.wall_clock = wall_clock
        self._sink = emit
        self.recent: deque[dict[str, Any]] = deque(maxlen=10)
        self.faults: dict[str, str] = {}  # kind ("log", "audio", "storage") -> reason
        # Mute: the daemon closes the microphone stream while this is set. Only a long press
        # (see tick) clears it; persist_mute keeps it across restarts (None in replay).
        self.muted = muted
        self._persist_mute = persist_mute
        self._toggled_press = float("-inf")  # the start time of the press that last toggled
        self._next_retention = float("-inf")

    @property
    def audio_t(self) -> float:
        return self.listener.audio_t

    @property
    def recording(self) -> bool:
        return self.listener.recording

    @property
    def busy(self) -> bool:
        """A request waits, asks or is being sent."""
        return self.broker.busy

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, *, reloaded: bool = False, **details: int | str) -> None:
        """Log the start (raising if the log cannot be written: nothing may run unlogged). After
        a reload the `reload` record already says what happened, and this process goes on."""
        if not reloaded:
            self.journal.append("start", version=__version__, pid=os.getpid(), **details)
        self.broker.close_unfinished(self.journal.records())
        self.listener.delete_strays()
        self._retention()
        self._refresh_led()

    def stop(self, reason: str, *, reload: bool = False) -> None:
        """Deny what is pending and log the stop. For a reload, deny and discard with the reason
        "reload" and log no stop: the process goes on with the new config, whose panel shows the
        state at once."""
        why = "reload" if reload else "stopping"
        self._act(self.broker.abort_all(why))
        if self.listener.drop():
            self._record("discard", reason=why)
        if not reload:
            self._show(LedState.OFF)
            self._record("stop", reason=reason)

    # -- inputs --------------------------------------------------------------------------------

    def on_audio(self, frame: bytes) -> None:
        if self.muted:
            return  # a block already queued when the stream closed: never looked at
        was_recording = self.listener.recording
        heard = self.listener.feed(frame)
        if self.listener.recording and not was_recording:
            self._refresh_led()  # the LED is on before the wake is told
        self._heard(heard)
        if was_recording and not self.listener.recording:
            self._refresh_led()
        if self.clock() >= self._next_retention:
            self._retention()

    def take(self, item: ButtonEdge | SendResult) -> None:
        """An input that waited its turn in the inbox: a button edge or a send's result."""
        if isinstance(item, ButtonEdge):
            self.on_button(item)
        else:
            self.on_send_result(item)

    def on_button(self, edge: ButtonEdge) -> None:
        log.debug("button %s at %.3f", "down" if edge.pressed else "up", edge.t)
        self._act(self.broker.on_edge(edge.pressed, edge.t))

    def on_send_result(self, result: SendResult) -> None:
        self._act(self.broker.on_result(result))

    def submit(self, kind: str, destination: str, payload: bytes, caller: Caller, *,
               reply: Reply | None = None, client: int | None = None,
               content_type: str | None = None) -> Request:
        """Ask to send `payload` to a configured destination. Raises Refused; nothing then waits."""
        try:
            outcome = self.broker.submit(kind, destination, payload, caller, reply=reply,
                                         client=client, content_type=content_type)
        except Refused:
            self._check_log()  # (a refusal because the log failed enters the log fault)
            raise
        self._act(outcome)
        assert outcome.request is not None
        return outcome.request

    def cancel_client(self, client: int) -> None:
        """A client went away: its requests are denied as cancelled, never sent."""
        self._act(self.broker.cancel_client(client))

    def tick(self) -> None:
        """Let the clock act: confirmation timeouts, long presses, stuck buttons, mute toggles."""
        now = self.clock()
        self._act(self.broker.tick(now))
        held_since = self.broker.held_idle_since()  # began with no request asking, and none since
        if (held_since is not None and held_since > self._toggled_press
                and now - held_since >= self.config.button.mute_press_s):
            self._toggled_press = held_since
            if self.muted:
                self.unmute("button")
            else:
                self.mute("button")

    def mute(self, source: str) -> None:
        """Close the microphone (the daemon acts on `muted`); any caller may do this."""
        if self.muted:
            return
        self._record("mute", source=source)  # logged or not, muting is the safe direction
        self.muted = True
        self.listener.drop(history=True)  # audio being kept is dropped, and the pre-roll with it
        self._save_mute(True)
        self._refresh_led()

    def unmute(self, source: str) -> None:
        """Only the physical long press calls this. Fails closed: unlogged or unsaved, still muted."""
        if not self.muted or self._record("unmute", source=source) is None:
            return
        if self._save_mute(False):
            self.muted = False
            self._refresh_led()

    def _save_mute(self, muted: bool) -> bool:
        try:
            if self._persist_mute is not None:
                self._persist_mute(muted)
        except OSError as exc:
            self._set_fault("storage", f"cannot save the mute state: {exc.strerror}")
            return False
        return True

    # -- what the parts answered ---------------------------------------------------------------

    def _heard(self, heard: Heard) -> None:
        self._check_log()
        if heard.storage_fault is not None:
            self._set_fault("storage", heard.storage_fault)
        elif heard.kept is not None:
            self.clear_fault("storage")
        for event in heard.events:
            self._emit(event)
        upload_to = self.config.after_wake.upload_to
        if heard.kept is not None and upload_to is not None:
            me = Caller(os.getuid(), os.getpid(), "guardd (after wake)")
            try:
                self.submit("upload", upload_to, heard.kept, me, content_type="audio/wav")
            except Refused as exc:
                log.warning("upload of %s not requested: %s", heard.kept_name, exc)

    def _act(self, outcome: Outcome) -> None:
        """Tell what the broker did, hand its approved job to the sender, show the new state."""
        self._check_log()
        for told in outcome.told:
            if isinstance(told, ToClient):
                try:
                    told.reply(told.message)
                except Exception:  # a client's stream failing must not stop the core
                    log.exception("reply to %s failed", told.request_id)
            else:
                self._emit({**told, "t": self.audio_t})
        if outcome.send is not None:
            self.sender.submit(outcome.send)
        self._refresh_led()

    def _retention(self) -> None:
        self._next_retention = self.clock() + RETENTION_EVERY_S
        events = self.listener.retention(self.wall_clock())
        self._check_log()
        for event in events:
            self._emit(event)

    # -- the log and faults --------------------------------------------------------------------

    def note(self, type_: str, **fields: int | str) -> int | None:
        """Log a record for the daemon around the core (a reload, say); its seq or None."""
        return self._record(type_, **fields)

    def _record(self, type_: str, **fields: Field) -> int | None:
        """Append to the log and return the record's seq; on failure enter the log fault."""
        seq = self.record(type_, **fields)
        self._check_log()
        return seq

    def _check_log(self) -> None:
        """Enter the log fault when an append failed; leave it when one succeeded again."""
        failure = self.record.failure
        if failure is not None and "log" not in self.faults:
            self._set_fault("log", failure, loggable=False)
        elif failure is None and "log" in self.faults:
            self.clear_fault("log")
            self._act(self.broker.log_late_denials())

    def _emit(self, event: dict[str, Any]) -> None:
        self.recent.append(event)
        self._sink(event)

    @property
    def fault(self) -> str | None:
        """The first fault still standing, for status and the LED; None when all is well."""
        return next(iter(self.faults.values()), None)

    @property
    def blocking_fault(self) -> str | None:
        """The first standing fault that stops every send (BLOCKING_FAULTS), or None."""
        return next((why for kind, why in self.faults.items() if kind in BLOCKING_FAULTS), None)

    def report_fault(self, kind: str, reason: str) -> None:
        """An adapter failed ("audio": the microphone, say): logged once, shown until cleared."""
        self._set_fault(kind, reason)

    def clear_fault(self, kind: str) -> None:
        if self.faults.pop(kind, None) is not None:
            if kind != "log":
                self._record("recovered", fault=kind)
            log.info("recovered: %s", kind)
            self._emit({"event": "recovered", "t": self.audio_t, "fault": kind})
            self._refresh_led()

    def _set_fault(self, kind: str, reason: str, loggable: bool = True) -> None:
        first = kind not in self.faults
        self.faults[kind] = reason
        self.listener.drop()  # nothing is kept while something is wrong
        self._refresh_led()
        if first:
            log.error("fault: %s", reason)
            self._emit({"event": "fault", "t": self.audio_t, "reason": reason})
            if loggable:
                self._record("fault", kind=kind, reason=reason)
            if kind in BLOCKING_FAULTS:
                # Deny at once what waits or is armed: a press must never approve into a fault.
                self._act(self.broker.abort_all(f"{kind} unavailable"))

    # -- what it shows -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What `guardd status` shows: the state, the armed request, the queue, recent events."""
        return {
            "state": self._led_state().name.lower(),
            "fault": self.fault,
            "recording": self.listener.recording,
            "muted": self.muted,
            "audio_s": round(self.audio_t, 2),
            **self.broker.status(),
            "recent_events": list(self.recent),
        }

    def _refresh_led(self) -> None:
        self._show(self._led_state())

    def _led_state(self) -> LedState:
        return LedState.of(blocking_fault=bool(self.blocking_fault), asking=bool(self.broker.armed),
                           sending=bool(self.broker.sending), fault=bool(self.fault),
                           recording=self.listener.recording, muted=self.muted)
