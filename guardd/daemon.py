"""`guardd run`: the microphone, the panel and the core loop, until SIGTERM or SIGINT.

Threads: PortAudio's callback enqueues audio blocks, gpiozero's threads (or, with --simulate, a
stdin reader) enqueue button edges, signal handlers set a flag. Only the main thread touches the
core, so its state needs no locks.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from typing import Any, TextIO

from guardd.audio import Microphone
from guardd.config import Config
from guardd.errors import AudioError
from guardd.panel import ButtonEdge, LedState, mock_factory
from guardd.pipeline import open_pipeline

log = logging.getLogger(__name__)

POLL_S = 0.1  # the longest the loop waits for audio before looking at signals and the inbox
INBOX_LIMIT = 256  # button edges waiting for the core; more than this is a stuck or noisy line

LED_DRAWING = {
    LedState.IDLE: "○ off        idle, listening for the wake word",
    LedState.RECORDING: "● on         recording after the wake word",
    LedState.FAULT: "◌ flicker    fault: nothing will be kept or sent",
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
    return " ".join(f"{k}={v}" for k, v in event.items() if k != "t")


class StopFlag:
    """Set by SIGTERM/SIGINT; the handler does nothing else."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        self.signal = signum


def simulate_button(pin: Any, lines: TextIO) -> None:
    """Each line on stdin is a press: empty for a short one, `hold SECONDS` to hold it down."""
    for line in lines:
        words = line.split()
        hold_s = 0.1
        if words[:1] == ["hold"] and len(words) == 2:
            try:
                hold_s = float(words[1])
            except ValueError:
                print(f"simulate: cannot read {words[1]!r} as seconds", file=sys.stderr)
                continue
        elif words:
            print("simulate: an empty line presses the button; `hold SECONDS` holds it", file=sys.stderr)
            continue
        pin.drive_low()
        time.sleep(hold_s)
        pin.drive_high()


def run(config: Config, *, simulate: bool = False) -> int:
    stop = StopFlag()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    inbox: queue.Queue[ButtonEdge] = queue.Queue(maxsize=INBOX_LIMIT)

    def on_edge(edge: ButtonEdge) -> None:
        try:
            inbox.put_nowait(edge)
        except queue.Full:
            log.warning("button inbox full; edge dropped")

    def emit(event: dict[str, Any]) -> None:
        log.info("%s", describe(event))

    try:
        with open_pipeline(
            config,
            pin_factory=mock_factory() if simulate else None,
            clock=time.monotonic,
            on_edge=on_edge,
            emit=emit,
            on_show=draw_led if simulate else None,
        ) as p:
            p.core.start(mode="simulate" if simulate else "run", config=config.source)
            try:
                mic = Microphone(config.audio.device, config.audio.queue_s)
                mic.start()
            except AudioError as exc:
                p.core.report_fault(str(exc))
                p.core.stop("fault")
                raise
            if simulate:
                threading.Thread(
                    target=simulate_button, args=(p.panel.button.pin, sys.stdin), daemon=True
                ).start()
            log.info("listening (models: %s)", ", ".join(config.wake.models))
            try:
                while stop.signal is None:
                    while not inbox.empty():
                        p.core.on_button(inbox.get_nowait())
                    try:
                        frame = mic.frames.get(timeout=POLL_S)
                    except queue.Empty:
                        continue
                    p.core.on_audio(frame)
            finally:
                mic.stop()
                reason = signal.Signals(stop.signal).name if stop.signal else "error"
                p.core.stop(reason)
                if mic.overflows or mic.dropped:
                    log.warning("audio: %d overflows, %d blocks dropped", mic.overflows, mic.dropped)
            log.info("stopped (%s)", reason)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
