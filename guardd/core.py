"""The core loop's state: one thread owns it, every adapter is passed in, and time comes from an
injected clock, so `run`, `replay` and the tests drive exactly the same code.

Calls go one way. The core feeds frames to the Listener and requests, presses and results to the
Broker (which asks the Gate), and what Home Assistant says of its timers to Timers; each answers
with what happened, and the core tells it (events), hands approved jobs to the sender, rings
and shows the LED. Nothing below calls back up.

Invariants:
- a record is durable in the audit log before the action it describes (LED on, file kept, file
  deleted, request armed, payload released); if the log cannot be written the action does not
  happen and the LED shows a fault;
- the LED is never dark while audio after a wake word is being kept; its pattern is derived
  from the state every time the state changes (telling.py);
- audio is held only between a wake and the end of its utterance, plus a rolling history that
  never leaves memory unless a wake word keeps it, and is dropped on mute;
- a restart approves nothing: requests left without a decision are logged as aborted and their
  spooled payloads deleted;
- a timer's ring is silenced only by a press the gate calls idle (held_idle_since: no request
  armed when it began, or since), so the press that silences a ring approves nothing; no burst
  of the ring plays while a request asks or a wake word's audio is kept (timers.py).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Protocol

from guardd import __version__
from guardd.audioformat import PCM_TYPE, wav_pcm
from guardd.config.settings import Config
from guardd.confirm.broker import Broker, Outcome
from guardd.confirm.gate import Gate
from guardd.confirm.intake import home_assistant_link
from guardd.confirm.outbox import Caller, Outbox, Reply, Request
from guardd.confirm.sender import SendJob, SendResult
from guardd.device.mute import MuteSwitch
from guardd.device.panel import ButtonEdge, LedState
from guardd.errors import Refused
from guardd.faults import Faults, Health
from guardd.homeassistant.inputs import FromPeer
from guardd.homeassistant.link import Link
from guardd.homeassistant.satellite import NoPeer, Satellite, Told
from guardd.journal import Field, Journal, Recorder
from guardd.listen.endpoint import Vad
from guardd.listen.listener import Heard, Listener
from guardd.listen.recordings import Recordings
from guardd.listen.wake import WakeDetector
from guardd.speak.feed import Feed
from guardd.speak.news import Playing, Said, SpeakerNews, SpeakerReport
from guardd.speak.sentence import Announcement
from guardd.telling import Emit, Teller
from guardd.timers import Rung, Timers

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 60.0  # how often the retention rule runs, on the core's clock


def after_wake_payload(kept: bytes, upload_to: str) -> tuple[bytes, str]:
    """A kept utterance as its upload carries it: the WAV, or for a Home Assistant link the
    samples alone, so that what is approved is exactly what the audio frames carry."""
    return (wav_pcm(kept), PCM_TYPE) if home_assistant_link(upload_to) else (kept, "audio/wav")


class Sends(Protocol):
    """The sender as the core sees it: take a job; the result comes back as an input later."""

    def submit(self, job: SendJob) -> None: ...


class Speaks(Protocol):
    """The speaker as the core sees it: what to play; how it went comes back as inputs later."""

    def chime(self, name: str) -> None: ...

    def announce(self, said: Announcement) -> None: ...

    def stream(self, sound_id: str) -> Feed: ...

    def hush(self, request_id: str) -> None: ...  # the request was decided

    def ring(self) -> None: ...  # one burst of a timer's ring, after everything else

    def end_ring(self) -> None: ...  # the ring was silenced: what waits or plays of it stops


class Core:
    def __init__(self, config: Config, *, wake: WakeDetector, vad: Vad, journal: Journal, recordings: Recordings,
                 show: Callable[[LedState], None], clock: Callable[[], float], wall_clock: Callable[[], float],
                 emit: Emit, sender: Sends, speaker: Speaks, button_down: bool = False, muted: bool = False,
                 persist_mute: Callable[[bool], None] | None = None, peer: Link | None = None,
                 paused: bool = False, persist_pause: Callable[[bool], None] | None = None) -> None:
        self.config = config
        self.journal = journal
        self.record = Recorder(journal)
        self.listener = Listener(config, wake=wake, vad=vad, recordings=recordings, record=self.record)
        gate: Gate[Request] = Gate(config.confirm, button_down=button_down, now=clock())
        self.broker = Broker(config, gate=gate, outbox=Outbox(config.state_path / "outbox"),
                             record=self.record, clock=clock)
        self.faults = Faults()
        self.switch = MuteSwitch(muted, persist_mute, config.button.mute_press_s, record=self.record,
                                 drop_audio=lambda: self.listener.drop(history=True), paused=paused,
                                 persist_pause=persist_pause)
        self.timers = Timers(self.record)
        self.tell = Teller(show=show, emit=emit, chime=speaker.chime, listener=self.listener,
                           broker=self.broker, faults=self.faults, switch=self.switch, timers=self.timers,
                           clock=clock, wall_clock=wall_clock)
        self.health = Health(self.faults, record=self.record, tell=self.tell, listener=self.listener)
        self.sender = sender
        self.speaker = speaker
        self.peer = peer  # Home Assistant's link, when one serves it
        self.satellite = (peer.satellite(record=self.record, stream=speaker.stream) if peer is not None
                          else Satellite(NoPeer(), record=self.record, stream=speaker.stream))
        if peer is not None:
            peer.set_muted(self.switch.muted)
        self.clock = clock
        self.wall_clock = wall_clock
        self._next_retention = float("-inf")

    @property
    def recording(self) -> bool:
        return self.listener.recording

    @property
    def muted(self) -> bool:
        return self.switch.muted

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, *, reloaded: bool = False, **details: int | str) -> None:
        """Log the start (raising if the log cannot be written: nothing may run unlogged). After
        a reload the `reload` record already says what happened, and this process goes on."""
        if not reloaded:
            self.journal.append("start", version=__version__, pid=os.getpid(), **details)
        self.broker.close_unfinished(self.journal.records())
        self.listener.delete_strays()
        self._retention()
        self.tell.led()

    def stop(self, reason: str, *, reload: bool = False) -> None:
        """Deny what is pending and log the stop; for a reload, deny and discard as "reload" and
        log no stop (the process goes on with the new config, whose panel shows the state)."""
        why = "reload" if reload else "stopping"
        self._act(self.broker.abort_all(why))
        self._rang(self.timers.end(why, self.clock()))
        if self.listener.drop():
            self.note("discard", reason=why)
        if not reload:
            self.tell.led(LedState.OFF)
            self.note("stop", reason=reason)

    # -- inputs --------------------------------------------------------------------------------

    def on_audio(self, frame: bytes, captured: float | None = None) -> None:
        """A frame of the microphone, taken at `captured` on the core's clock (None: now)."""
        if self.muted:
            return  # a block already queued when the stream closed: never looked at
        was_recording = self.listener.recording
        heard = self.listener.feed(frame, self.clock() if captured is None else captured)
        if self.listener.recording and not was_recording:
            self.tell.led()  # the LED is on before the wake is told
        self._heard(heard)
        if was_recording and not self.listener.recording:
            self.tell.led()
        if self.clock() >= self._next_retention:
            self._retention()

    def take(self, item: ButtonEdge | SendResult | SpeakerNews | FromPeer) -> None:
        """An input that waited its turn in the inbox: a button edge, a send's result, news
        from the speaker (a sound began or ended; it failed, or plays again) or the link's."""
        if isinstance(item, ButtonEdge):
            log.debug("button %s at %.3f", "down" if item.pressed else "up", item.t)
            self._act(self.broker.on_edge(item.pressed, item.t))
            self._idle_press()
        elif isinstance(item, SendResult):
            self._act(self.broker.on_result(item))
        elif isinstance(item, FromPeer):  # satellite mode: Home Assistant's link
            self._satellite_told(self.satellite.take(item, self.clock()))
        elif isinstance(item, SpeakerReport):  # a fault of the speaker alone: listening goes on
            if item.failure is None:
                self.clear_fault("speaker")
            else:
                self.report_fault("speaker", item.failure)
        elif isinstance(item, Said):  # an announcement's first part was said: a press may count
            self._act(self.broker.on_speaker(item))
        else:  # one of guardd's sounds began or ended: the microphone is deaf to it, the gate goes by it
            if isinstance(item, Playing):
                self.clear_fault("speaker")  # (it plays: a speaker that was stuck is back)
            self.listener.own_sound.follow(item)
            self._act(self.broker.on_speaker(item))
            self._satellite_told(self.satellite.on_speaker(item))

    def submit(self, kind: str, destination: str, payload: bytes, caller: Caller, *,
               reply: Reply | None = None, client: int | None = None,
               content_type: str | None = None, kept: bool = False) -> Request:
        """Ask to send `payload` to a configured destination (`kept`: guardd's own kept
        utterance, after a wake). Raises Refused; nothing then waits."""
        try:
            outcome = self.broker.submit(kind, destination, payload, caller, reply=reply,
                                         client=client, content_type=content_type, kept=kept)
        finally:
            self._check_log()  # (a refusal because the log failed enters the log fault)
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
        self._satellite_told(self.satellite.tick(now))
        self._rang(self.timers.tick(now))
        self._idle_press()
        # A press that began with no request asking, and none since, toggles once when held.
        if self.switch.toggle_due(self.broker.held_idle_since(), now):
            (self.unmute if self.muted else self.mute)("button")
        if self.timers.burst_due(now, quiet=self.broker.armed is not None or self.listener.recording):
            self.speaker.ring()

    def mute(self, source: str) -> None:
        """The owner's mute: close the microphone (the daemon acts on `muted`); any local
        caller may do this."""
        if not self.switch.owner:
            self._mute_changed(self.switch.mute(source))

    def unmute(self, source: str) -> None:
        """Only the physical long press calls this: it lifts every hold (device/mute.py)."""
        if self.muted:
            self._mute_changed(self.switch.unmute(source))

    def _satellite_told(self, told: Told) -> None:
        """Home Assistant paused or resumed the satellite (its own hold, never the owner's
        mute); a run of its pipeline ended without an answer: the owner hears and sees it."""
        if told.hold == "pause" and not self.switch.paused:
            self._mute_changed(self.switch.pause(f"home assistant {told.by} from {told.peer}"))
        elif told.hold == "resume" and self.switch.paused:
            self._mute_changed(self.switch.resume(f"home assistant {told.by} from {told.peer}"))
        elif told.hold is not None and self.peer is not None:
            self.peer.set_muted(self.switch.muted)  # (asked for what already holds: the switch says so again)
        for ended in told.ended:
            self.tell.pipeline_ended(ended.request_id, ended.result, ended.code)
        if told.ended:
            self.tell.led()
        for change in told.timers:
            self._rang(self.timers.take(change, self.clock()))
        self._check_log()

    def _idle_press(self) -> None:
        """A press that began with no request asking, and none since, silences a ring (the
        gate refuses that very press for any request: timers.py)."""
        self._rang(self.timers.pressed(self.broker.held_idle_since(), self.clock()))

    def _rang(self, rung: Rung) -> None:
        """Tell what the timers did; a ring that ended is hushed, and the LED follows it."""
        self._check_log()
        self.tell.now(rung.events)
        if rung.changed:
            if not self.timers.ringing:
                self.speaker.end_ring()
            self.tell.led()

    # -- what the parts answered ---------------------------------------------------------------

    def _heard(self, heard: Heard) -> None:
        self._check_log()
        if heard.storage_fault is not None:
            self.report_fault("storage", heard.storage_fault)
        elif heard.kept is not None:
            self.clear_fault("storage")
        self.tell.events(heard.events)
        upload_to = self.config.after_wake.upload_to
        if heard.kept is not None and upload_to is not None:
            me = Caller(os.getuid(), os.getpid(), "guardd (after wake)")
            payload, content_type = after_wake_payload(heard.kept, upload_to)
            try:
                self.submit("upload", upload_to, payload, me, content_type=content_type, kept=True)
            except Refused as exc:
                log.warning("upload of %s not requested: %s", heard.kept_name, exc)

    def _act(self, outcome: Outcome) -> None:
        """Tell what the broker did, hand its approved job to the sender, show the new state."""
        self._check_log()
        if outcome.fault is not None:
            self.report_fault(*outcome.fault)
        for request_id in outcome.hush:
            self.speaker.hush(request_id)
        self.tell.outcome(outcome)
        if outcome.announce is not None:
            self.speaker.announce(outcome.announce)
        if outcome.send is not None:
            self.sender.submit(outcome.send)
        self.tell.led()

    def _mute_changed(self, save_failure: str | None) -> None:
        if self.peer is not None:
            self.peer.set_muted(self.switch.muted)  # a switch Home Assistant shows tells the truth
        self._check_log()
        if save_failure is not None:
            self.report_fault("storage", save_failure)
        self.tell.led()

    def _retention(self) -> None:
        self._next_retention = self.clock() + RETENTION_EVERY_S
        events = self.listener.retention(self.wall_clock())
        self._check_log()
        self.tell.events(events)

    # -- the log and faults --------------------------------------------------------------------

    def note(self, type_: str, **fields: Field) -> int | None:
        """Append to the log (for the daemon around the core too: a reload, say) and return the
        record's seq; on failure enter the log fault."""
        seq = self.record(type_, **fields)
        self._check_log()
        return seq

    def _check_log(self) -> None:
        """Enter the log fault when an append failed; leave it when one succeeded again."""
        failure = self.record.failure
        if failure is not None and "log" not in self.faults:
            self.report_fault("log", failure, loggable=False)
        elif failure is None and "log" in self.faults:
            self.clear_fault("log")
            self._act(self.broker.log_late_denials())

    def report_fault(self, kind: str, reason: str, *, loggable: bool = True) -> None:
        """A part failed ("audio": the microphone, say): logged once, shown until cleared."""
        if self.health.enter(kind, reason, loggable=loggable):
            # Deny at once what waits or is armed: a press must never approve into a fault.
            self._act(self.broker.abort_all(f"{kind} unavailable"))
        self._check_log()

    def clear_fault(self, kind: str) -> None:
        self.health.leave(kind)
        self._check_log()
