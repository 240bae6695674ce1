"""`guardd run`: the microphone, the panel and the core loop, until SIGTERM or SIGINT.

Threads: PortAudio's callback enqueues audio blocks, gpiozero's threads (or, with --simulate, a
stdin reader) enqueue button edges, signal handlers set a flag. Only the main thread touches the
core, so its state needs no locks.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import sys
import threading
import time
from typing import Any, TextIO

from guardd.listen.microphone import Microphone, import_sounddevice
from guardd.confirm.broker import Refused
from guardd.config import load as configmod
from guardd.config.settings import Config
from guardd.errors import ConfigError
from guardd.control.server import BadRequest, ClientCall, ClientGone, ControlServer, parse_submit
from guardd.core import Core
from guardd.errors import AudioError, GuarddError
from guardd.device.mute import read_muted, write_muted
from guardd.device.notify import Notifier
from guardd.device.panel import ButtonEdge, LedState, mock_factory
from guardd.pipeline import open_pipeline
from guardd.confirm.sender import Sender, SendResult

log = logging.getLogger(__name__)

POLL_S = 0.1  # the longest the loop waits for audio before looking at signals and the inbox
INBOX_LIMIT = 1024  # events waiting for the core (edges, client calls, send results)
FINAL = ("denied", "sent", "failed")  # a submit's last status; the connection closes after it

Inbox = queue.Queue  # of ButtonEdge | ClientCall | ClientGone | SendResult

LED_DRAWING = {
    LedState.OFF: "○ off        stopped: not listening",
    LedState.IDLE: "○ off        idle, listening for the wake word",
    LedState.RECORDING: "● on         recording after the wake word",
    LedState.AWAITING: "◐ blinking   a request asks for approval: press the button",
    LedState.SENDING: "◑ quick      sending the approved bytes",
    LedState.MUTED: "· blip       muted: the microphone is closed (hold the button 3 s to unmute)",
    LedState.FAULT: "◌ flicker    fault: see the fault line (only a log fault stops sending)",
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
    if kind == "decision":
        return f"request {event['id']} {event['decision']} ({event['reason']})"
    if kind in ("sent", "send_failed"):
        if not event.get("status"):  # no HTTP answer at all: refused, unreachable, timed out
            return f"request {event['id']} send failed: {event.get('error', 'no answer')}"
        outcome = "delivered" if event["delivered"] else f"not delivered: {event.get('error', '')}"
        return f"request {event['id']} sent, HTTP {event['status']}, {outcome}"
    return " ".join(f"{k}={v}" for k, v in event.items() if k != "t")


class Clients:
    """Turns control-socket calls into core actions and core events into client messages."""

    def __init__(self, core: Core, server: ControlServer) -> None:
        self.core = core
        self.server = server
        self.subscribers: set[int] = set()

    def handle(self, event: ClientCall | ClientGone) -> None:
        if isinstance(event, ClientGone):
            self.subscribers.discard(event.client)
            self.core.broker.cancel_client(event.client)
            return
        client, message = event.client, event.message
        call = message["call"]
        if call == "status":
            self.server.send(client, {"status": "ok", **self.core.status()})
        elif call == "mute":  # software can mute, never unmute
            caller = event.caller
            self.core.mute(f"socket uid={caller.uid} pid={caller.pid} exe={caller.exe}")
            self.server.send(client, {"status": "muted"}, close=True)
        elif call == "subscribe":
            self.subscribers.add(client)
            self.server.send(client, {"status": "subscribed"})
        elif call == "submit":
            self._submit(event)

    def _submit(self, event: ClientCall) -> None:
        client = event.client

        def reply(message: dict[str, Any]) -> None:
            self.server.send(client, message, close=message["status"] in FINAL)

        try:
            kind, to, payload, content_type = parse_submit(event.message)
            self.core.broker.submit(kind, to, payload, event.caller, reply=reply, client=client,
                                    content_type=content_type)
        except BadRequest as exc:
            self.server.send(client, {"status": "error", "code": "bad_request", "message": str(exc)}, close=True)
        except Refused as exc:
            self.server.send(client, {"status": "error", "code": exc.code, "message": str(exc)}, close=True)

    def publish(self, event: dict[str, Any]) -> None:
        for client in list(self.subscribers):
            self.server.send(client, event)


class MicrophoneKeeper:
    """Keeps the microphone open while unmuted and closed while muted (promise 5: closed, not
    ignored), and brings a lost one back: a stream that fails or stops delivering is a fault,
    logged once, and is reopened with backoff (PortAudio re-scanned, so a replugged USB
    microphone is found) until audio flows again."""

    STALL_S = 1.0  # no block for this long from an open stream: the microphone is lost
    BACKOFF_S = (0.25, 0.5, 1.0, 2.0)  # between reopen attempts; the last repeats

    def __init__(self, config: Config, core: Core) -> None:
        self.config = config
        self.core = core
        self.mic: Microphone | None = None
        self.failures = 0
        self.next_try = 0.0
        self.last_block = 0.0
        self.overflows = self.dropped = 0

    def read(self, now: float) -> bytes | None:
        """One block of audio, or None after waiting at most POLL_S."""
        if self.core.muted:
            self.close()
            time.sleep(POLL_S)
            return None
        if self.mic is None and not self._open(now):
            return None
        assert self.mic is not None
        try:
            block = self.mic.frames.get(timeout=POLL_S)
        except queue.Empty:
            if time.monotonic() - self.last_block > self.STALL_S or not self.mic.active:
                self._lost("the microphone stopped delivering audio")
            return None
        self.last_block = time.monotonic()
        if self.failures:
            self.failures = 0
            self.core.clear_fault("audio")
        return block

    def _open(self, now: float) -> bool:
        if now < self.next_try:
            time.sleep(min(POLL_S, self.next_try - now))
            return False
        try:
            mic = Microphone(self.config.audio.device, self.config.audio.queue_s, rescan=self.failures > 0)
            mic.start()
        except AudioError as exc:
            self._lost(str(exc))
            return False
        self.mic = mic
        self.last_block = time.monotonic()
        return True

    def _lost(self, reason: str) -> None:
        # The fault first: closing a stream whose capture thread is stuck in a read can take as
        # long as the device stays stuck, and the LED and the log must not wait for that.
        self.core.report_fault("audio", reason)  # logged the first time only
        self.close()
        self.next_try = time.monotonic() + self.BACKOFF_S[min(self.failures, len(self.BACKOFF_S) - 1)]
        self.failures += 1

    def close(self) -> None:
        if self.mic is not None:
            self.overflows += self.mic.overflows
            self.dropped += self.mic.dropped
            self.mic.stop()
            self.mic = None


class StopFlag:
    """Set by SIGTERM/SIGINT (stop) and SIGHUP (reload); the handler does nothing else."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.reload = False

    def __call__(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.signal = signum


def try_reload(config: Config, core: Core) -> Config | None:
    """The new config if it loads and differs; a bad one is reported and the old one kept."""
    try:
        new = configmod.load(config.source) if config.source != "<defaults>" else Config()
    except ConfigError as exc:
        problems = exc.problems
    except Exception as exc:  # noqa: BLE001 - no file on disk may end a running daemon
        problems = [f"{config.source}: could not be read ({type(exc).__name__}: {exc})"]
    else:
        problems = []
    if problems:
        for line in problems:
            log.error("reload refused, the running config stays: %s", line)
        core.note("reload", result="refused", reason=problems[0][-300:])
        return None
    if new == config:
        log.info("reload: %s is unchanged", config.source)
        core.note("reload", result="unchanged")
        return None
    core.note("reload", result="applied")
    return new


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


def run(config: Config, *, simulate: bool = False) -> int:
    """Serve until SIGTERM/SIGINT. SIGHUP with a valid, changed config starts everything again
    with it in this process (pending requests are denied first, as at any stop)."""
    stop = StopFlag()
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, stop) for s in handled}
    notifier = Notifier()
    button = SimulatedButton() if simulate else None
    try:
        current: Config | None = config
        reloaded = False
        while current is not None:
            current = _serve(current, button, stop, notifier, reloaded=reloaded)
            reloaded = True
            if current is not None:
                notifier.send("RELOADING=1", "STATUS=reloading the config")
    finally:
        notifier.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _serve(config: Config, button: SimulatedButton | None, stop: StopFlag, notifier: Notifier, *,
           reloaded: bool = False) -> Config | None:
    """One life of the pipeline; returns the config to restart with, or None to stop. After a
    reload the process goes on: no start record (the reload record says it), no stop line."""
    inbox: Inbox = queue.Queue(maxsize=INBOX_LIMIT)
    clients: Clients | None = None

    def deliver(item: Any) -> None:
        try:
            inbox.put_nowait(item)
        except queue.Full:
            if isinstance(item, SendResult):
                inbox.put(item)  # a result is never dropped: the core must log it
            else:
                log.warning("inbox full; %s dropped", type(item).__name__)

    def emit(event: dict[str, Any]) -> None:
        log.info("%s", describe(event))
        if event["event"] == "fault":
            notifier.status(f"fault: {event['reason']}")
        if clients is not None:
            clients.publish(event)

    import_sounddevice()  # a missing PortAudio is no fault to retry: say what to install, and stop
    sender = Sender(deliver, threaded=True)
    next_config: Config | None = None
    with open_pipeline(
        config,
        pin_factory=mock_factory() if button else None,
        clock=time.monotonic,
        on_edge=deliver,
        emit=emit,
        sender=sender,
        on_show=draw_led if button else None,
        muted=read_muted(config.state_path),
        persist_mute=functools.partial(write_muted, config.state_path),
    ) as p:
        core = p.core
        core.start(mode="simulate" if button else "run", config=config.source, muted=int(core.muted),
                   reloaded=reloaded)
        if core.muted:
            log.warning("muted: hold the button for %g s to unmute", config.button.mute_press_s)
        for warning in config.warnings:
            log.warning("config: %s", warning)
        server = ControlServer(config.socket, deliver)
        try:
            server.start()
        except GuarddError as exc:
            core.report_fault("socket", str(exc))
            core.stop("fault")
            raise
        microphone = MicrophoneKeeper(config, core)
        clients = Clients(core, server)
        sender.start()
        if button is not None:
            button.attach(p.panel.button.pin)
        listening = f"listening (models: {', '.join(config.wake.models)}; control socket {server.path})"
        log.info("%s", listening)
        notifier.ready(listening)
        try:
            while stop.signal is None:
                if stop.reload:
                    stop.reload = False
                    next_config = try_reload(config, core)
                    if next_config is not None:
                        break
                _drain(inbox, core, clients)
                frame = microphone.read(time.monotonic())
                if frame is not None:
                    core.on_audio(frame)
                core.tick()
                # Only a loop that got here is healthy: a stall anywhere above (a log write
                # stuck on the SD card, say) stops the pings and systemd restarts guardd.
                notifier.watchdog(time.monotonic())
        finally:
            notifier.stopping()
            microphone.close()
            if next_config is not None:
                reason = "reload"
            else:
                reason = signal.Signals(stop.signal).name if stop.signal else "error"
            core.stop(reason)
            server.stop()
            sender.stop()
            if microphone.overflows or microphone.dropped:
                log.warning("audio: %d overflows, %d blocks dropped", microphone.overflows, microphone.dropped)
        log.info("reloaded %s" if next_config is not None else "stopped (%s)",
                 config.source if next_config is not None else reason)
    return next_config


def _drain(inbox: Inbox, core: Core, clients: Clients) -> None:
    while True:
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, ButtonEdge):
            core.on_button(item)
        elif isinstance(item, SendResult):
            core.on_send_result(item)
        else:
            clients.handle(item)
