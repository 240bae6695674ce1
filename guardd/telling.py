"""What the core shows and says: the LED pattern, derived from the state every time it changes
(and how the last request ended, for ENDING_S, when nothing else is going on, with its tone on
the speaker); events, to the daemon's sink (the last ten are kept for `guardd status`); and the
broker's replies to its clients, in the order the broker gave them.

An upload to Home Assistant ends twice: `sent` when Home Assistant took the audio, and then its
pipeline run. A run that got no answer (Home Assistant's pipeline ended with an error such as
`stt-no-text-recognized`, none came, or the link dropped) has an ending of its own,
"not_understood": its tone and LED pattern, and a `pipeline` event naming the request. Should
that come before the `sent` (the two travel different ways), the `sent` tone is not played over it.

A timer that rings (timers.py) shows its own pattern under everything that concerns a request
or the microphone: asking, sending, a fault, recording, and how the last request ended.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable

from guardd.confirm.broker import Broker, Outcome, ToClient
from guardd.confirm.messages import outcome_of
from guardd.device.mute import MuteSwitch
from guardd.device.panel import ENDING_S, LedState
from guardd.faults import Faults
from guardd.listen.listener import Listener
from guardd.homeassistant.satellite import UNANSWERED
from guardd.timers import Timers

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]


ENDINGS = {"approved": LedState.APPROVED, "denied": LedState.DENIED, "sent": LedState.SENT,
           "failed": LedState.FAILED,  # messages.outcome_of -> the LED's ending
           "not_understood": LedState.NOT_UNDERSTOOD}  # a pipeline run Home Assistant did not answer


class Teller:
    def __init__(self, *, show: Callable[[LedState], None], emit: Emit, chime: Callable[[str], None],
                 listener: Listener, broker: Broker, faults: Faults, switch: MuteSwitch, timers: Timers,
                 clock: Callable[[], float], wall_clock: Callable[[], float] = time.time) -> None:
        self._show = show
        self._chime = chime
        self._clock = clock
        self._wall_clock = wall_clock
        self._ending: tuple[LedState, float] | None = None  # the pattern, and until when
        self._sink = emit
        self._listener = listener
        self._broker = broker
        self._faults = faults
        self._switch = switch
        self._timers = timers
        self.recent: deque[dict[str, Any]] = deque(maxlen=10)
        self._unanswered: deque[str] = deque(maxlen=8)  # request ids whose run ended unanswered

    def event(self, event: dict[str, Any]) -> None:
        # `guardd status` shows when each recent event happened by the wall clock (`t` is audio time)
        self.recent.append({**event, "wall_ms": int(self._wall_clock() * 1000)})
        self._sink(event)

    def events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.event(event)

    def now(self, events: tuple[dict[str, Any], ...]) -> None:
        """Events of this moment (a timer's), stamped with the audio time."""
        for event in events:
            self.event({**event, "t": self._listener.audio_t})

    def outcome(self, outcome: Outcome) -> None:
        """The broker's events and client replies, in its order (the events stamped with the audio time)."""
        for told in outcome.told:
            if isinstance(told, ToClient):
                try:
                    told.reply(told.message)
                except Exception:  # a client's stream failing must not stop the core
                    log.exception("reply to %s failed", told.request_id)
            else:
                step = outcome_of(told) or ""
                if step in ENDINGS and not (step == "sent" and told.get("id") in self._unanswered):
                    self._end(step)  # how a request ended: its LED pattern, and its tone
                self.event({**told, "t": self._listener.audio_t})

    def pipeline_ended(self, request_id: str, result: str, code: str = "") -> None:
        """How Home Assistant's pipeline run of an upload ended (wyoming/satellite.py)."""
        event: dict[str, Any] = {"event": "pipeline", "id": request_id, "result": result}
        if code:
            event["code"] = code
        if result in UNANSWERED:
            self._unanswered.append(request_id)
            self._end("not_understood")
        self.event({**event, "t": self._listener.audio_t})

    def _end(self, step: str) -> None:
        self._ending = (ENDINGS[step], self._clock() + ENDING_S)
        self._chime(step)

    def led(self, state: LedState | None = None) -> None:
        """Show `state`, or the one the state of the parts calls for."""
        self._show(state if state is not None else self.led_state())

    def led_state(self) -> LedState:
        ending = self._ending[0] if self._ending is not None and self._clock() < self._ending[1] else None
        return LedState.of(blocking_fault=bool(self._faults.blocking), asking=bool(self._broker.armed),
                           sending=bool(self._broker.sending), fault=bool(self._faults.first),
                           recording=self._listener.recording, muted=self._switch.owner, ending=ending,
                           paused=self._switch.paused, ringing=self._timers.ringing)

    def status(self) -> dict[str, Any]:
        """What `guardd status` shows: the state, the armed request, the queue, recent events."""
        return {
            "state": self.led_state().name.lower(),
            "fault": self._faults.first,
            "recording": self._listener.recording,
            "muted": self._switch.muted,  # the microphone is closed: by the owner, or Home Assistant
            "owner_muted": self._switch.owner,  # only the long press lifts it
            "ha_paused": self._switch.paused,  # Home Assistant's pause: its run-satellite lifts it
            "audio_s": round(self._listener.audio_t, 2),
            **self._broker.status(),
            "timers": self._timers.status(self._clock()),
            "recent_events": list(self.recent),
        }
