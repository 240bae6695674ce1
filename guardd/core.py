"""The core loop's state: one thread owns it, every adapter is passed in, and time comes from an
injected clock, so `run`, `replay` and the tests drive exactly the same code.

Invariants:
- a record is durable in the audit log before the action it describes (LED on, file kept, file
  deleted, request armed, payload released); if the log cannot be written the action does not
  happen and the LED shows a fault;
- the LED is never dark while audio after a wake word is being kept; its pattern is derived
  from the state every time the state changes (fault, awaiting a press, sending, recording, idle);
- audio is held only between a wake and the end of its utterance, plus a rolling history of
  `utterance.pre_roll_s` + endpoint.WAKE_LOOKBACK_S (in whole frames) that never leaves memory
  unless a wake word keeps it, and is dropped on mute;
- a restart approves nothing: requests left without a decision are logged as aborted and their
  spooled payloads deleted.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Callable

import numpy as np

from guardd import __version__
from guardd.auditlog.writer import AuditLog, BySeq, read_records
from guardd.confirm.broker import Broker, Refused
from guardd.config.settings import Config
from guardd.listen.endpoint import WAKE_LOOKBACK_S, Endpointer, NoSpeech, Utterance, Vad
from guardd.errors import AuditLogError
from guardd.confirm.gate import Gate
from guardd.confirm.outbox import Caller, Outbox
from guardd.device.panel import ButtonEdge, LedState
from guardd.listen.recordings import Recordings, sha256_hex, wav_bytes
from guardd.confirm.sender import Sender, SendResult
from guardd.listen.wake import FRAME_SAMPLES, SAMPLE_RATE, WakeDetector

log = logging.getLogger(__name__)

FRAME_BYTES = FRAME_SAMPLES * 2
RETENTION_EVERY_S = 60.0  # how often the retention rule runs, on the core's clock
# Faults that stop every send. Without the log nothing can be recorded before it happens, so
# nothing may leave. A lost microphone, a full recordings disk or a broken socket stop only their
# own part: a request that still arrives is asked for by the LED like any other.
BLOCKING_FAULTS = frozenset({"log"})

Emit = Callable[[dict[str, Any]], None]


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class Core:
    def __init__(
        self,
        config: Config,
        *,
        wake: WakeDetector,
        vad: Vad,
        auditlog: AuditLog,
        recordings: Recordings,
        show: Callable[[LedState], None],
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        emit: Emit,
        sender: Sender | None = None,
        button_down: bool = False,
        muted: bool = False,
        persist_mute: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.wake = wake
        self.vad = vad
        self.log = auditlog
        self.recordings = recordings
        self._show = show
        self.clock = clock
        self.wall_clock = wall_clock
        self._sink = emit
        self.recent: deque[dict[str, Any]] = deque(maxlen=10)
        self.audio_t = 0.0  # seconds of audio processed
        self.frames = 0
        self.endpointer: Endpointer | None = None
        self.faults: dict[str, str] = {}  # kind ("log", "audio", "storage") -> reason
        # Mute: the daemon closes the microphone stream while this is set. Only a long press
        # (see tick) clears it; persist_mute keeps it across restarts (None in replay).
        self.muted = muted
        self._persist_mute = persist_mute
        self._toggled_press = float("-inf")  # the start time of the press that last toggled
        self._next_retention = float("-inf")
        history_s = config.utterance.pre_roll_s + WAKE_LOOKBACK_S
        history = int(history_s * SAMPLE_RATE * 2 / FRAME_BYTES) + 1
        self._history: deque[bytes] = deque(maxlen=history)
        self.broker = Broker(
            config,
            gate=Gate(config.confirm, button_down=button_down, now=clock()),
            outbox=Outbox(config.state_path / "outbox"),
            # Without a threaded sender (replay, tests), bytes are sent inline: time stands still.
            sender=sender or Sender(self.on_send_result, threaded=False),
            record=self._record,
            emit=self._emit_now,
            changed=self._refresh_led,
            clock=clock,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, *, reloaded: bool = False, **details: int | str) -> None:
        """Log the start (raising if the log cannot be written: nothing may run unlogged). After
        a reload the `reload` record already says what happened, and this process goes on."""
        if not reloaded:
            self.log.append("start", version=__version__, pid=os.getpid(), **details)
        self._abort_unfinished_requests()
        for stray in self.recordings.stray_temp_files():
            if self._record("deleted", file=stray.name, reason="incomplete"):
                stray.unlink(missing_ok=True)
        self._retention()
        self._refresh_led()

    def _abort_unfinished_requests(self) -> None:
        """Pending requests die with the process. At start-up each request the log left open is
        closed: undecided ones as denied ("aborted"); approved ones whose send never started, or
        whose send has no result, with an `unfinished` record saying what is known."""
        stage: dict[str, str] = {}
        for record in read_records(self.log.directory):
            kind, request_id = record.get("type"), str(record.get("id"))
            if kind == "request":
                stage[request_id] = "request"
            elif kind == "decision" and request_id in stage:
                stage[request_id] = "approved" if record.get("decision") == "approved" else "done"
            elif kind == "send" and request_id in stage:
                stage[request_id] = "send"
            elif kind in ("sent", "unfinished"):
                stage[request_id] = "done"
        for request_id, where in stage.items():
            if where == "request":
                self._record("decision", id=request_id, decision="denied", reason="aborted")
            elif where == "approved":
                self._record("unfinished", id=request_id, outcome="not sent")
            elif where == "send":
                self._record("unfinished", id=request_id, outcome="unknown: stopped while sending")
        for leftover in self.broker.outbox.leftovers():
            # A payload or a half-written copy from before the restart: logged, then deleted.
            try:
                size = leftover.lstat().st_size
            except OSError:
                continue
            if self._record("deleted", file=f"outbox/{leftover.name}", reason="leftover", bytes=size):
                if leftover.is_dir() and not leftover.is_symlink():
                    log.error("%s is a directory in the outbox; remove it by hand", leftover)
                else:
                    leftover.unlink(missing_ok=True)

    def stop(self, reason: str) -> None:
        """Deny what is pending and log the stop; a reload ("reload") denies and discards with
        that reason but logs no stop: the process goes on with the new config."""
        why = "reload" if reason == "reload" else "stopping"
        self.broker.abort_all(why)
        if self.endpointer is not None:
            self.endpointer = None
            self._record("discard", reason=why)
        if reason != "reload":  # (on a reload the new config's panel shows the state at once)
            self._show(LedState.OFF)
            self._record("stop", reason=reason)

    # -- inputs --------------------------------------------------------------------------------

    def on_audio(self, frame: bytes) -> None:
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"audio frames are {FRAME_BYTES} bytes, got {len(frame)}")
        if self.muted:
            return  # a block already queued when the stream closed: never looked at
        self.frames += 1
        self.audio_t = self.frames * FRAME_SAMPLES / SAMPLE_RATE
        # The model is fed every frame, also while recording, so its streaming state stays aligned.
        wake = self.wake.process(np.frombuffer(frame, dtype=np.int16), self.audio_t)
        # The history ends with this frame, as the wake's time does: a wake hands over the audio
        # up to audio_t, and the endpointer takes the frames after it.
        self._history.append(frame)
        if self.endpointer is not None:
            self._continue_utterance(frame)
        elif wake is not None:
            self._on_wake(wake.model, wake.score)
        if self.clock() >= self._next_retention:
            self._retention()

    def on_button(self, edge: ButtonEdge) -> None:
        log.debug("button %s at %.3f", "down" if edge.pressed else "up", edge.t)
        self.broker.on_edge(edge.pressed, edge.t)

    def on_send_result(self, result: SendResult) -> None:
        self.broker.on_result(result)

    def tick(self) -> None:
        """Let the clock act: confirmation timeouts, long presses, stuck buttons, mute toggles."""
        now = self.clock()
        self.broker.tick(now)
        gate = self.broker.gate
        held_since = gate.down_since
        if (
            gate.button_down
            and self.broker.armed is None
            and held_since > self.broker.last_activity  # began with no request asking, and none since
            and held_since > self._toggled_press
            and now - held_since >= self.config.button.mute_press_s
        ):
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
        self.endpointer = None  # audio being kept is dropped, not finished
        self._history.clear()  # and the pre-roll: audio before a mute is never joined to audio after
        if self._persist_mute is not None:
            try:
                self._persist_mute(True)
            except OSError as exc:
                self._set_fault("storage", f"cannot save the mute state: {exc.strerror}")
        self._refresh_led()

    def unmute(self, source: str) -> None:
        """Only the physical long press calls this. Fails closed: unlogged or unsaved, still muted."""
        if not self.muted:
            return
        if self._record("unmute", source=source) is None:
            return
        if self._persist_mute is not None:
            try:
                self._persist_mute(False)
            except OSError as exc:
                self._set_fault("storage", f"cannot save the mute state: {exc.strerror}")
                return
        self.muted = False
        self._refresh_led()

    # -- the listening pipeline ----------------------------------------------------------------

    def _on_wake(self, model: str, score: float) -> None:
        if not self._record("wake", model=model, score=f"{score:.4f}", audio_ms=_ms(self.audio_t)):
            return  # unlogged: nothing is kept
        self.endpointer = Endpointer(
            self.config.utterance, self.vad, b"".join(self._history), self.audio_t
        )
        self._refresh_led()
        self._emit({"event": "wake", "t": self.audio_t, "model": model, "score": round(score, 4)})

    def _continue_utterance(self, frame: bytes) -> None:
        assert self.endpointer is not None
        outcome = self.endpointer.feed(frame)
        if outcome is None:
            return
        self.endpointer = None
        if isinstance(outcome, NoSpeech):
            self._record("discard", reason="no_speech", audio_ms=_ms(outcome.t))
            self._emit({"event": "discard", "t": self.audio_t, "reason": "no_speech"})
        else:
            self._keep(outcome)
        self._refresh_led()

    def _keep(self, utt: Utterance) -> None:
        data = wav_bytes(utt.pcm)
        digest = sha256_hex(data)
        fields: dict[str, int | str | BySeq] = {
            "file": lambda seq: self.recordings.path_for(seq).name,  # named by its own record's seq
            "sha256": digest,
            "bytes": len(data),
            "start_ms": _ms(utt.start),
            "end_ms": _ms(utt.end),
            "cut": int(utt.cut),
        }
        seq = self._record("utterance", **fields)
        if seq is None:
            return
        name = self.recordings.path_for(seq).name
        try:
            self.recordings.keep(seq, data)
        except OSError as exc:
            self._set_fault("storage", f"cannot keep {name}: {exc.strerror or exc}")
            return
        self.clear_fault("storage")
        self._emit(
            {
                "event": "utterance",
                "t": self.audio_t,
                "start": round(utt.start, 3),
                "end": round(utt.end, 3),
                "sha256": digest,
                "bytes": len(data),
                "file": name,
            }
        )
        upload_to = self.config.after_wake.upload_to
        if upload_to is not None:
            me = Caller(os.getuid(), os.getpid(), "guardd (after wake)")
            try:
                self.broker.submit("upload", upload_to, data, me, content_type="audio/wav")
            except Refused as exc:
                log.warning("upload of %s not requested: %s", name, exc)

    def _retention(self) -> None:
        self._next_retention = self.clock() + RETENTION_EVERY_S
        for rec, reason in self.recordings.due_for_deletion(self.wall_clock()):
            if not self._record("deleted", file=rec.path.name, reason=reason, bytes=rec.size):
                return  # a deletion is never unlogged
            rec.path.unlink(missing_ok=True)
            self._emit({"event": "deleted", "t": self.audio_t, "file": rec.path.name, "reason": reason})

    # -- the log and faults --------------------------------------------------------------------

    def note(self, type_: str, **fields: int | str) -> int | None:
        """Log a record for the daemon around the core (a reload, say); its seq or None."""
        return self._record(type_, **fields)

    def _emit(self, event: dict[str, Any]) -> None:
        self.recent.append(event)
        self._sink(event)

    def _emit_now(self, event: dict[str, Any]) -> None:
        self._emit({**event, "t": self.audio_t})

    def status(self) -> dict[str, Any]:
        """What `guardd status` shows: the state, the armed request, the queue, recent events."""
        return {
            "state": self._led_state().name.lower(),
            "fault": self.fault,
            "recording": self.endpointer is not None,
            "muted": self.muted,
            "audio_s": round(self.audio_t, 2),
            **self.broker.status(),
            "recent_events": list(self.recent),
        }

    def _refresh_led(self) -> None:
        self._show(self._led_state())

    def _led_state(self) -> LedState:
        # Whenever a press can approve, the LED asks: only a fault that blocks sending (and so
        # has denied whatever was armed) outranks the blink.
        if self.blocking_fault:
            state = LedState.FAULT
        elif self.broker.armed:
            state = LedState.AWAITING
        elif self.broker.sending:
            state = LedState.SENDING
        elif self.fault:
            state = LedState.FAULT
        elif self.endpointer is not None:
            state = LedState.RECORDING
        elif self.muted:
            state = LedState.MUTED
        else:
            state = LedState.IDLE
        return state

    def _record(self, type_: str, **fields: int | str | BySeq) -> int | None:
        """Append to the log and return the record's seq; on failure enter the log fault."""
        try:
            seq = int(self.log.append(type_, **fields)["seq"])
        except AuditLogError as exc:
            self._set_fault("log", str(exc), loggable=False)
            return None
        if "log" in self.faults:
            self.clear_fault("log")  # the log writes again
            self.broker.log_late_denials()
        return seq

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
        self.endpointer = None  # nothing is kept while something is wrong
        self._refresh_led()
        if first:
            log.error("fault: %s", reason)
            self._emit({"event": "fault", "t": self.audio_t, "reason": reason})
            if loggable:
                self._record("fault", kind=kind, reason=reason)
            if kind in BLOCKING_FAULTS:
                # Deny at once what waits or is armed: a press must never approve into a fault.
                self.broker.abort_all(f"{kind} unavailable")
                self._refresh_led()
