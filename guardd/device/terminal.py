"""The terminal as the device, for `guardd run --simulate` and `guardd replay`: the LED drawn as
a line of text, each event told in words, and each line on standard input a button press."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from guardd.device.panel import LedState

LED_DRAWING = {
    LedState.OFF: "○ off        stopped: not listening",
    LedState.IDLE: "○ off        idle, listening for the wake word",
    LedState.RECORDING: "● on         recording after the wake word",
    LedState.AWAITING: "◐ blinking   a request asks for approval: press the button",
    LedState.SENDING: "◑ quick      sending the approved bytes",
    LedState.MUTED: "· blip       muted: the microphone is closed (hold the button 3 s to unmute)",
    LedState.PAUSED: "· blip 1.5s  paused by Home Assistant: the microphone is closed until it runs the satellite again",
    LedState.FAULT: "◌ flicker    fault: see the fault line (only a log fault stops sending)",
    LedState.APPROVED: "◉ pulses     approved by the press",
    LedState.DENIED: "◦ blips      denied: nothing was sent",
    LedState.SENT: "◉ long       sent: the destination took it",
    LedState.FAILED: "◌ stutter    the send failed: nothing is sent again without a new press",
    LedState.NOT_UNDERSTOOD: "◉ one glow   Home Assistant took it and had no answer (not understood)",
    LedState.RINGING: "⁑ double     a timer is ringing: press the button to stop it",
}


PIPELINE_ENDS = {
    "replied": "Home Assistant answered, and its reply played",
    "error": "Home Assistant took it but did not understand it",
    "no_reply": "Home Assistant took it and never answered",
    "disconnected": "Home Assistant went away before it answered",
    "superseded": "a newer request took its place at Home Assistant",
}


def draw_led(state: LedState, out: TextIO = sys.stderr) -> None:
    print(f"[LED {LED_DRAWING[state]}]", file=out, flush=True)


def describe(event: dict[str, Any]) -> str:
    kind = event["event"]
    if kind == "wake":
        return f"wake word {event['model']} (score {event['score']:.2f})"
    if kind == "utterance":
        return (
            f"kept {event['file']}: {event['end'] - event['start']:.1f} s, "
            f"{event['bytes']} bytes, sha256 {event['sha256'][:16]}…"
        )
    if kind == "request":
        ahead = event.get("queued", 0)
        then = (f"queued: {ahead} ahead of it, it asks for a press when they are decided" if ahead
                else "waiting for a press")
        return (
            f"request {event['id']}: {event['kind']} of {event['bytes']} bytes to "
            f"{event['destination']} (sha256 {event['sha256'][:16]}…), {then}"
        )
    if kind == "asking":
        return f"request {event['id']} asks for a press now ({event['timeout_s']:g} s)"
    if kind == "announce":
        if event.get("spoken") is False:
            return f"request {event['id']} is not announced (the speaker failed); the LED alone asks: “{event['text']}”"
        return (f"request {event['id']} is announced ({event['duration_s']:g} s; a press counts after "
                f"{event['asks_after_s']:g} s): “{event['text']}”")
    if kind == "decision":
        return f"request {event['id']} {event['decision']} ({event['reason']})"
    if kind in ("sent", "send_failed"):
        if event.get("delivered") and not event.get("status"):  # Home Assistant's link: no HTTP
            return f"request {event['id']} sent: Home Assistant took it"
        if not event.get("status"):  # no HTTP answer at all: refused, unreachable, timed out
            return f"request {event['id']} send failed: {event.get('error', 'no answer')}"
        outcome = "delivered" if event["delivered"] else f"not delivered: {event.get('error', '')}"
        return f"request {event['id']} sent, HTTP {event['status']}, {outcome}"
    if kind == "pipeline":
        return f"request {event['id']}: {PIPELINE_ENDS.get(event['result'], event['result'])}" + (
            f" ({event['code']})" if event.get("code") else "")
    if kind == "timer":
        return describe_timer(event)
    return " ".join(f"{k}={v}" for k, v in event.items() if k != "t")


SILENCED_BY = {"press": "the button was pressed", "cancelled": "Home Assistant cancelled it",
               "running again": "Home Assistant runs it again", "timeout": "nobody pressed"}


def describe_timer(event: dict[str, Any]) -> str:
    """A timer's event (timers.py) in words; never its name, which guardd does not even hold."""
    what, timer = event.get("what"), f"timer {event.get('timer', '')}"
    if what == "started":
        return f"{timer}: started, {event['seconds']} s"
    if what == "updated":
        return f"{timer}: {'running' if event.get('active') else 'paused'}, {event['seconds']} s left"
    if what == "cancelled":
        return f"{timer}: cancelled"
    if what == "finished":
        if not event.get("rings"):
            return f"{timer}: finished (it rang already)"
        late = " (by guardd's clock: Home Assistant said nothing)" if event.get("by") == "clock" else ""
        return f"{timer}: finished{late}: ringing, press the button to stop it"
    if what == "silenced":
        why = SILENCED_BY.get(str(event.get("reason")), str(event.get("reason")))
        return f"the timer's ring stopped after {event.get('rang_ms', 0) / 1000:.1f} s: {why}"
    return f"a {event.get('kind', 'timer')} frame was refused: {event.get('reason')}"


MAX_HOLD_S = 30.0  # a simulated hold longer than this is a typo, not a mute


class SimulatedButton:
    """--simulate: each line on stdin is a press, on whichever panel is current (a reload
    builds a new one): an empty line for a short press, `hold SECONDS` to hold it down.

    Whatever is typed, the reader goes on reading and the button ends up released: a line that
    is not a press is answered on stderr and changes nothing."""

    def __init__(self) -> None:
        self.pin: Any = None
        self._thread: threading.Thread | None = None

    def attach(self, pin: Any) -> None:
        self.pin = pin
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, args=(sys.stdin,), daemon=True)
            self._thread.start()

    def _read(self, lines: TextIO) -> None:
        for line in lines:
            try:
                self.press(line)
            except Exception as exc:  # noqa: BLE001 - one bad line must not end the simulation
                print(f"simulate: that line did nothing ({exc})", file=sys.stderr)

    @staticmethod
    def hold_for(line: str) -> float | str:
        """Seconds to hold the button for `line`, or the message that says why it is no press."""
        words = line.split()
        if not words:
            return 0.1
        if words[0] != "hold" or len(words) != 2:
            return "an empty line presses the button; `hold SECONDS` holds it"
        try:
            hold_s = float(words[1])
        except ValueError:
            return f"cannot read {words[1]!r} as seconds"
        if not 0 < hold_s <= MAX_HOLD_S:  # also refuses nan and inf
            return f"hold takes seconds between 0 and {MAX_HOLD_S:g}, not {words[1]}"
        return hold_s

    def press(self, line: str) -> None:
        hold_s = self.hold_for(line)
        if isinstance(hold_s, str):
            print(f"simulate: {hold_s}", file=sys.stderr)
            return
        pin = self.pin
        try:
            pin.drive_low()
            time.sleep(hold_s)
        finally:
            pin.drive_high()
