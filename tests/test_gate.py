"""Promise 1: nothing leaves without a press.

Every test drives the real pipeline (the core, the broker, the gate, the sender, the audit log on
real files with fdatasync) with a real gpiozero Button on MockFactory pins and an injected clock,
and checks three things: what a real HTTP server on loopback received (byte for byte), what the
audit log says (and in which order), and what the LED shows.

The daemon-level test at the end does the same across a SIGKILL and a restart of `guardd run`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import signal
import subprocess
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from conftest import GUARDD, ROOT, Receiver, alsa_env, wait_until, write_config
from harness import FailingJournal

from guardd.auditlog.reading import read_records
from guardd.errors import Refused
from guardd.config.settings import Config, ConfirmConfig, DestinationConfig
from guardd.confirm.gate import Gate
from guardd.confirm.outbox import Caller, Request
from guardd.device.panel import ButtonEdge, LedState
from guardd.pipeline import open_pipeline
from guardd.confirm.sender import Sender, SendResult

T0 = 100.0  # the injected clock starts here
TIMEOUT_S = 30.0  # confirm.timeout_s in these tests (the default)
ME = Caller(1000, 4242, "/usr/bin/test-client")
WAIT_S = 10.0  # the longest any real-time wait in this file may take (subprocess test aside)


# -- the destination: a real HTTP server on loopback that keeps everything that arrives -------------


@dataclass
class Arrival:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    log_at_arrival: list[tuple[str, str]]  # (type, id) of every log record when the bytes arrived


class Inbox:
    """http.server on 127.0.0.1, port 0, in a thread. Counts connections as well as requests, so
    "zero bytes" means nobody even connected."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.connections = 0
        self.log_dir: Path | None = None  # when set, the log is read the moment bytes arrive
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                snapshot = []
                if inbox.log_dir is not None:
                    snapshot = [(str(r["type"]), str(r.get("id", ""))) for r in read_records(inbox.log_dir)]
                inbox.arrivals.append(Arrival(self.command, self.path, dict(self.headers), body, snapshot))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                inbox.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/in"
        self.thread = threading.Thread(target=self.server.serve_forever, name="inbox", daemon=True)
        self.thread.start()

    @property
    def bodies(self) -> list[bytes]:
        return [a.body for a in self.arrivals]

    def assert_nothing_arrived(self) -> None:
        assert self.arrivals == []
        assert self.connections == 0, "something connected to the destination"

    def assert_received_exactly(self, *bodies: bytes) -> None:
        assert self.bodies == list(bodies)
        assert self.connections == len(bodies)
        for a in self.arrivals:
            assert (a.method, a.path) == ("POST", "/in")
            assert int(a.headers["Content-Length"]) == len(a.body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT_S)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    server = Inbox()
    yield server
    server.close()


# -- the device: the real pipeline on mock pins, on a clock the test moves ---------------------------


@dataclass
class Submitted:
    request: Request
    replies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def final(self) -> dict[str, Any]:
        return self.replies[-1]


class Device:
    def __init__(self, config: Config, inbox: Inbox, stack: contextlib.ExitStack,
                 sender: Sender | None = None) -> None:
        self.config = config
        self.inbox = inbox
        self.clock = [T0]
        self.edges: list[ButtonEdge] = []
        self.events: list[dict[str, Any]] = []
        self.leds: list[LedState] = []
        self.on_edge: Callable[[ButtonEdge], None] = self.edges.append
        self.p = stack.enter_context(open_pipeline(
            config, pin_factory=MockFactory(), clock=lambda: self.clock[0],
            on_edge=lambda e: self.on_edge(e), emit=self.events.append, sender=sender,
            on_show=self.leds.append, journal=FailingJournal,
        ))
        self.core = self.p.core
        self.journal: FailingJournal = self.core.journal  # type: ignore[assignment]
        self.pin = self.p.panel.button.pin
        self.log_dir = config.state_path / "log"
        inbox.log_dir = self.log_dir
        self.core.start(mode="test")

    # time and the button

    @property
    def now(self) -> float:
        return self.clock[0]

    def at(self, t: float) -> None:
        """Let the clock reach t and the core act on it (timeouts, debouncing, stuck buttons)."""
        assert t >= self.clock[0], "time only moves forward"
        self.clock[0] = t
        self.core.tick()
        self.p.inputs.drain(self.core)  # a send approved just now: its result is the next input

    def _feed(self) -> None:
        while self.edges:
            self.core.on_button(self.edges.pop(0))
        self.p.inputs.drain(self.core)

    def down(self, t: float) -> None:
        self.clock[0] = t
        self.pin.drive_low()  # pull-up button: low is pressed; gpiozero calls back synchronously
        self._feed()

    def up(self, t: float) -> None:
        self.clock[0] = t
        self.pin.drive_high()
        self._feed()

    def press(self, t: float, hold: float = 0.1) -> None:
        """A clean short press at t, released hold seconds later, and the release debounced."""
        self.down(t)
        self.up(t + hold)
        self.at(t + hold + 0.1)

    # requests

    def submit(self, payload: bytes, *, to: str = "inbox", client: int = 1, kind: str = "message",
               at: float | None = None) -> Submitted:
        """A client asks (at time `at`, if given: the core handles the call then, before any tick)."""
        if at is not None:
            assert at >= self.clock[0]
            self.clock[0] = at
        replies: list[dict[str, Any]] = []
        request = self.core.submit(kind, to, payload, ME, reply=replies.append, client=client)
        return Submitted(request, replies)

    # what the log says

    def records(self, type_: str | None = None, id_: str | None = None) -> list[dict[str, Any]]:
        return [r for r in read_records(self.log_dir)
                if (type_ is None or r["type"] == type_) and (id_ is None or r.get("id") == id_)]

    def story(self, request_id: str) -> list[str]:
        """The types of the records about one request, in log order."""
        return [r["type"] for r in self.records(id_=request_id)]

    def decision(self, request_id: str) -> dict[str, Any]:
        [d] = self.records("decision", request_id)
        return d

    @property
    def led(self) -> LedState | None:
        return self.p.panel.state

    @property
    def spooled(self) -> list[str]:
        outbox = self.config.state_path / "outbox"
        return sorted(p.name for p in outbox.glob("*.bin")) if outbox.is_dir() else []

    # the promise, as assertions

    def assert_denied(self, s: Submitted, reason: str) -> None:
        assert self.story(s.id) == ["request", "decision"]
        d = self.decision(s.id)
        assert (d["decision"], d["reason"]) == ("denied", reason)
        assert s.final == {"status": "denied", "id": s.id, "reason": reason}
        assert f"{s.id}.bin" not in self.spooled, "a denied payload stays spooled"

    def assert_approved_and_sent(self, s: Submitted, payload: bytes) -> None:
        # Write-ahead: request, then the approval, then `send`, then the result, one record each.
        assert self.story(s.id) == ["request", "decision", "send", "sent"]
        d = self.decision(s.id)
        assert (d["decision"], d["reason"]) == ("approved", "pressed")
        [req] = self.records("request", s.id)
        [send] = self.records("send", s.id)
        [sent] = self.records("sent", s.id)
        assert req["seq"] < d["seq"] < send["seq"] < sent["seq"]
        assert req["sha256"] == send["sha256"] == _sha256(payload)
        assert req["bytes"] == send["bytes"] == len(payload)
        assert (sent["delivered"], sent["status"], sent["bytes"]) == (1, 200, len(payload))
        # The bytes arrived after `send` was durable, and before `sent` was written.
        [arrival] = [a for a in self.inbox.arrivals if (("send", s.id) in a.log_at_arrival)]
        assert arrival.body == payload
        assert ("sent", s.id) not in arrival.log_at_arrival
        assert s.replies[-2:] == [{"status": "approved", "id": s.id},
                                  {"status": "sent", "id": s.id, "http_status": 200, "error": "",
                                   "body": '{"ok":true}'}]
        assert f"{s.id}.bin" not in self.spooled


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def device(tmp_path: Path, inbox: Inbox) -> Iterator[Callable[..., Device]]:
    """make(confirm=..., sender=..., **dest) -> a Device whose one destination is the inbox."""
    with contextlib.ExitStack() as stack:

        def make(confirm: ConfirmConfig = ConfirmConfig(timeout_s=TIMEOUT_S), sender: Sender | None = None,
                 **dest: Any) -> Device:
            config = Config(
                state_dir=str(tmp_path / "state"),
                destinations=(DestinationConfig(url=inbox.url, name="inbox", **dest),),
                confirm=confirm,
            )
            return Device(config, inbox, stack, sender)

        yield make


# -- 1. a press that began before the request asked -------------------------------------------------


def test_press_held_through_arming_approves_nothing(device, inbox):
    d = device()
    d.down(T0 - 1.0)  # the button goes down a second before the request exists
    s = d.submit(b"secret", at=T0)
    assert d.led is LedState.AWAITING
    assert s.replies[0]["status"] == "waiting"
    d.at(T0 + 5.0)
    d.up(T0 + 5.0)  # released well before the deadline, and never pressed again
    d.at(T0 + 5.2)
    assert d.led is LedState.AWAITING
    assert d.story(s.id) == ["request"]  # still asking: the release was not an approval
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    assert d.led is LedState.IDLE
    inbox.assert_nothing_arrived()


def test_button_held_past_stuck_limit_denies_as_stuck(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, stuck_s=10.0))
    d.down(T0 - 1.0)
    s = d.submit(b"secret", at=T0)
    d.at(T0 + 9.9)
    assert d.led is LedState.AWAITING and d.story(s.id) == ["request"]
    d.at(T0 + 10.0)
    d.assert_denied(s, "stuck")
    d.up(T0 + 12.0)  # letting go afterwards changes nothing
    d.at(T0 + 12.5)
    inbox.assert_nothing_arrived()
    assert d.led is LedState.IDLE


def test_press_released_just_before_arming_approves_nothing(device, inbox):
    d = device()
    d.down(T0 - 0.5)
    d.up(T0 - 0.01)  # the release edge is 10 ms before the request arrives (inside the debounce)
    s = d.submit(b"secret", at=T0)
    assert d.led is LedState.AWAITING
    d.at(T0 + 0.5)
    assert d.story(s.id) == ["request"]
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


def test_glitch_just_before_arming_approves_nothing(device, inbox):
    d = device()
    d.down(T0 - 0.02)  # a 10 ms blip, too short to be a press, ending 10 ms before arming
    d.up(T0 - 0.01)
    s = d.submit(b"secret", at=T0)
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


# -- 3. timeouts, with an exclusive bound ---------------------------------------------------------


def test_no_press_times_out_and_nothing_leaves(device, inbox):
    d = device()
    s = d.submit(b"secret")
    d.at(T0 + TIMEOUT_S - 0.001)
    assert d.led is LedState.AWAITING and d.story(s.id) == ["request"]
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    assert d.led is LedState.IDLE
    d.press(T0 + TIMEOUT_S + 1)  # too late: nothing is armed any more
    assert d.story(s.id) == ["request", "decision"]
    inbox.assert_nothing_arrived()


def test_press_starting_exactly_at_the_deadline_is_too_late(device, inbox):
    d = device()
    s = d.submit(b"secret")
    d.at(T0 + 10.0)  # the core was ticking; no tick lands on the deadline itself
    d.press(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


def test_press_starting_50_ms_before_the_deadline_approves_even_if_released_after_it(device, inbox):
    d = device()
    s = d.submit(b"in time")
    d.down(T0 + TIMEOUT_S - 0.05)
    d.at(T0 + TIMEOUT_S)  # the deadline passes while the button is down
    d.at(T0 + TIMEOUT_S + 0.3)
    assert d.story(s.id) == ["request"]
    d.up(T0 + TIMEOUT_S + 0.5)
    d.at(T0 + TIMEOUT_S + 0.6)
    d.assert_approved_and_sent(s, b"in time")
    inbox.assert_received_exactly(b"in time")


def test_press_starting_during_debounce_window_at_deadline_approves(device, inbox):
    """The press starts 10 ms before the deadline and is still being debounced when a tick lands
    on the deadline: it started in time, so it is let finish."""
    d = device()
    s = d.submit(b"in time")
    d.down(T0 + TIMEOUT_S - 0.01)
    d.at(T0 + TIMEOUT_S)
    assert d.story(s.id) == ["request"]
    d.up(T0 + TIMEOUT_S + 0.2)
    d.at(T0 + TIMEOUT_S + 0.3)
    d.assert_approved_and_sent(s, b"in time")
    inbox.assert_received_exactly(b"in time")


# -- 4. bouncing contacts ---------------------------------------------------------------------------


def test_bouncing_contacts_approve_exactly_one_request(device, inbox):
    d = device()
    first = d.submit(b"first")
    second = d.submit(b"second")
    assert second.replies == [{"status": "queued", "id": second.id, "position": 1}]
    t = T0 + 1.0
    for i, pressed in enumerate([True, False, True, False, True]):  # five raw edges in 4 ms
        d.clock[0] = t + i * 0.001
        (d.pin.drive_low if pressed else d.pin.drive_high)()
    assert [e.pressed for e in d.edges] == [True, False, True, False, True]  # MockPin ignores bounce_time
    d._feed()
    d.up(t + 0.104)  # a clean release 100 ms after the last bounce
    d.at(t + 0.2)
    d.assert_approved_and_sent(first, b"first")
    assert d.led is LedState.AWAITING  # the second request now asks, and no press is left over
    d.at(t + 0.2 + TIMEOUT_S - 0.001)
    assert d.story(second.id) == ["request"]
    d.at(t + 0.2 + TIMEOUT_S)
    d.assert_denied(second, "timeout")
    inbox.assert_received_exactly(b"first")


# -- 5. one press per request -----------------------------------------------------------------------


def test_two_presses_approve_two_requests_in_order(device, inbox):
    d = device()
    a = d.submit(b"alpha")
    b = d.submit(b"bravo")
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(a, b"alpha")
    assert d.story(b.id) == ["request"] and d.led is LedState.AWAITING
    d.press(T0 + 2.0)
    d.assert_approved_and_sent(b, b"bravo")
    inbox.assert_received_exactly(b"alpha", b"bravo")
    assert [a_.headers["Content-Type"] for a_ in inbox.arrivals] == ["text/plain; charset=utf-8"] * 2
    assert d.led is LedState.IDLE
    assert LedState.SENDING in d.leds


def test_one_press_while_two_requests_wait_approves_only_the_first(device, inbox):
    d = device()
    a = d.submit(b"alpha")
    b = d.submit(b"bravo")
    d.press(T0 + 1.0)
    d.at(T0 + 1.0 + TIMEOUT_S + 1)
    d.assert_approved_and_sent(a, b"alpha")
    d.assert_denied(b, "timeout")
    inbox.assert_received_exactly(b"alpha")


# -- 6. long press ----------------------------------------------------------------------------------


def test_long_press_denies(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, long_press_s=2.0))
    s = d.submit(b"secret")
    d.down(T0 + 1.0)
    d.at(T0 + 2.9)
    assert d.story(s.id) == ["request"]
    d.at(T0 + 3.0)  # held for long_press_s: denied while still held
    d.assert_denied(s, "long press")
    d.up(T0 + 4.0)
    d.at(T0 + 4.1)
    inbox.assert_nothing_arrived()


def test_long_press_without_a_tick_in_between_denies(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, long_press_s=2.0))
    s = d.submit(b"secret")
    d.down(T0 + 1.0)
    d.up(T0 + 3.5)  # the core saw nothing between the two edges
    d.at(T0 + 3.6)
    d.assert_denied(s, "long press")
    inbox.assert_nothing_arrived()


# -- 7. the client goes away ------------------------------------------------------------------------


def test_client_disconnect_while_armed_cancels(device, inbox):
    d = device()
    s = d.submit(b"secret", client=7)
    queued = d.submit(b"queued", client=7)
    other = d.submit(b"other", client=8)
    d.core.cancel_client(7)
    for gone in (s, queued):
        assert d.story(gone.id) == ["request", "decision"]
        assert (d.decision(gone.id)["decision"], d.decision(gone.id)["reason"]) == ("denied", "cancelled")
        assert f"{gone.id}.bin" not in d.spooled
    # The press afterwards belongs to the next client's request, never to the cancelled ones.
    assert d.led is LedState.AWAITING
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(other, b"other")
    inbox.assert_received_exactly(b"other")


def test_press_after_the_only_client_disconnected_sends_nothing(device, inbox):
    d = device()
    s = d.submit(b"secret", client=7)
    d.at(T0 + 1.0)
    d.core.cancel_client(7)
    assert d.story(s.id) == ["request", "decision"]
    assert d.decision(s.id)["reason"] == "cancelled"
    assert d.led is LedState.IDLE
    d.press(T0 + 2.0)
    d.at(T0 + TIMEOUT_S + 5)
    inbox.assert_nothing_arrived()
    assert d.spooled == []


# -- 8. presence is never cached --------------------------------------------------------------------


def test_same_payload_resubmitted_after_approval_needs_a_new_press(device, inbox):
    d = device()
    first = d.submit(b"same bytes")
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(first, b"same bytes")
    again = d.submit(b"same bytes")
    assert again.request.sha256 == first.request.sha256 and again.id != first.id
    assert d.led is LedState.AWAITING
    d.at(d.now + TIMEOUT_S)
    d.assert_denied(again, "timeout")
    inbox.assert_received_exactly(b"same bytes")


# -- 9. the approved bytes, and only those ----------------------------------------------------------


def test_payload_changed_after_approval_is_not_sent(device, inbox):
    results: list[SendResult] = []
    sender = Sender(results.append, threaded=True)
    try:
        d = device(sender=sender)
        s = d.submit(b"what the owner approved")
        d.press(T0 + 1.0)
        assert d.story(s.id) == ["request", "decision", "send"]
        assert d.led is LedState.SENDING
        s.request.spool.write_bytes(b"something else entirely")  # the job waits in the queue
        sender.start()
        deadline = time.monotonic() + WAIT_S
        while not results and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(results) == 1, "the sender gave no result"
        d.core.on_send_result(results[0])
    finally:
        sender.stop()
    inbox.assert_nothing_arrived()
    assert d.story(s.id) == ["request", "decision", "send", "sent"]
    [sent] = d.records("sent", s.id)
    assert sent["delivered"] == 0 and sent["status"] == 0 and sent["bytes"] == 0
    assert "payload changed" in sent["error"]
    assert s.final["status"] == "failed" and "payload changed" in s.final["error"]
    assert d.spooled == []
    assert d.led is LedState.IDLE


def test_sent_bytes_are_copied_at_submission(device, inbox):
    """The daemon keeps its own copy: changing the caller's buffer after submit changes nothing."""
    d = device()
    payload = bytearray(b"original")
    s = d.submit(payload)  # type: ignore[arg-type]
    payload[:] = b"tampered"
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(s, b"original")
    inbox.assert_received_exactly(b"original")


def test_a_destination_answering_a_byte_a_second_fails_the_send_at_its_timeout(tmp_path):
    """timeout_s bounds the whole exchange, not each read: the send ends as failed at 2 s, the
    log says it was not delivered and why, and the request is over (nothing retried)."""
    slow = Receiver("trickle")
    with contextlib.ExitStack() as stack:
        stack.callback(slow.close)
        config = Config(state_dir=str(tmp_path / "state"), confirm=ConfirmConfig(timeout_s=TIMEOUT_S),
                        destinations=(DestinationConfig(url=slow.url, name="inbox", timeout_s=2.0),))
        d = Device(config, slow, stack)  # type: ignore[arg-type]  # the Receiver stands in for the Inbox
        s = d.submit(b"to a slow destination")
        started = time.monotonic()
        d.press(T0 + 1.0)  # the sender runs inline: the press returns when the send has ended
        waited = time.monotonic() - started
        assert 2.0 <= waited < 2.5, f"the send took {waited:.2f} s"
        assert d.story(s.id) == ["request", "decision", "send", "sent"]
        [sent] = d.records("sent", s.id)
        error = ("timed out after 2 s reading the answer (HTTP 200) "
                 "(destinations.inbox.timeout_s bounds the whole send)")
        assert (sent["delivered"], sent["status"], sent["error"]) == (0, 0, error)
        assert s.final["status"] == "failed" and s.final["error"] == error
        assert slow.connections == 1 and d.led is LedState.IDLE and d.spooled == []


# -- 10-12. refused before anything is armed --------------------------------------------------------


def test_unknown_destination_is_refused_and_nothing_is_armed(device, inbox):
    d = device()
    with pytest.raises(Refused) as exc:
        d.submit(b"secret", to="https://evil.example/steal")
    assert exc.value.code == "unknown_destination"
    [refused] = d.records("refused")
    assert refused["code"] == "unknown_destination" and refused["bytes"] == 6
    assert d.records("request") == []
    assert d.core.broker.armed is None and not d.core.busy
    assert d.led is LedState.IDLE
    d.press(T0 + 1.0)
    inbox.assert_nothing_arrived()
    assert d.spooled == []


def test_full_queue_refuses_busy(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, queue=1))
    armed = d.submit(b"one")
    waiting = d.submit(b"two")
    with pytest.raises(Refused) as exc:
        d.submit(b"three")
    assert exc.value.code == "busy"
    assert [r["code"] for r in d.records("refused")] == ["busy"]
    assert len(d.records("request")) == 2
    assert d.spooled == [f"{armed.id}.bin", f"{waiting.id}.bin"]
    d.at(T0 + TIMEOUT_S)  # the second is armed only now, and gets its own full timeout
    d.assert_denied(armed, "timeout")
    assert d.story(waiting.id) == ["request"]
    d.at(T0 + 2 * TIMEOUT_S)
    d.assert_denied(waiting, "timeout")
    inbox.assert_nothing_arrived()


def test_oversized_payload_is_refused(device, inbox):
    d = device(max_bytes=100)
    ok = d.submit(b"x" * 100)
    with pytest.raises(Refused) as exc:
        d.submit(b"x" * 101)
    assert exc.value.code == "too_large"
    assert [r["code"] for r in d.records("refused")] == ["too_large"]
    assert [r["id"] for r in d.records("request")] == [ok.id]
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(ok, "timeout")
    inbox.assert_nothing_arrived()


# -- 13. the log cannot be written ------------------------------------------------------------------


FULL = "cannot write the log: No space left on device"


def test_log_failure_at_submission_refuses_and_arms_nothing(device, inbox):
    d = device()
    d.journal.failing = FULL
    with pytest.raises(Refused) as exc:
        d.submit(b"secret")
    assert exc.value.code == "log_unavailable"
    d.journal.heal()
    assert d.core.broker.armed is None and not d.core.busy
    assert d.spooled == []
    assert d.led is LedState.FAULT
    assert d.records("request") == []
    d.press(T0 + 1.0)
    inbox.assert_nothing_arrived()


def test_log_failure_before_the_decision_denies(device, inbox):
    d = device()
    s = d.submit(b"secret")
    assert d.led is LedState.AWAITING
    d.journal.failing = FULL
    d.press(T0 + 1.0)
    d.journal.heal()
    assert s.final == {"status": "denied", "id": s.id, "reason": "log unavailable"}
    assert [e for e in d.events if e["event"] == "decision"][-1]["reason"] == "log unavailable"
    assert d.story(s.id) == ["request"]  # neither an approval nor a send was ever written
    assert d.led is LedState.FAULT
    assert d.spooled == []
    inbox.assert_nothing_arrived()


def test_log_failure_before_the_send_record_denies(device, inbox):
    """The approval is durable but the `send` record is not: nothing may leave."""
    d = device()
    s = d.submit(b"secret")
    d.journal.fail_after(1)  # the decision is written, then the log fails
    d.press(T0 + 1.0)
    d.journal.heal()
    assert s.final == {"status": "denied", "id": s.id, "reason": "log unavailable"}
    assert "send" not in d.story(s.id)
    assert d.led is LedState.FAULT
    inbox.assert_nothing_arrived()


# -- 14. a crash and a restart ----------------------------------------------------------------------


def _silence_wav(path: Path, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return path


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_restart_aborts_the_armed_request_and_a_press_sends_nothing(tmp_path, inbox):
    # The control socket path must fit in sun_path (108 bytes); pytest's tmp_path may not.
    sock_dir = Path(tempfile.mkdtemp(prefix="guardd-gate-"))
    socket_path = sock_dir / "g.sock"
    config = write_config(
        tmp_path,
        audio={"queue_s": 120},
        destinations={"inbox": {"url": inbox.url}},
        socket={"path": str(socket_path)},
    )
    env = dict(os.environ)
    env.update(alsa_env(tmp_path, _silence_wav(tmp_path / "silence.wav")))
    log_dir = tmp_path / "state" / "log"
    outbox = tmp_path / "state" / "outbox"
    procs: list[subprocess.Popen] = []

    def start_daemon(name: str) -> tuple[subprocess.Popen, Path]:
        stderr_path = tmp_path / f"{name}.stderr"
        with open(stderr_path, "w") as stderr:
            proc = subprocess.Popen(  # -v: the core logs each button edge it handles
                [*GUARDD, "-v", "run", "--simulate", "--config", str(config)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT,
                text=True,
            )
        procs.append(proc)
        return proc, stderr_path

    def records(type_: str) -> list[dict[str, Any]]:
        return [r for r in read_records(log_dir) if r["type"] == type_] if log_dir.is_dir() else []

    try:
        first, first_err = start_daemon("first")
        wait_until(lambda: records("start") and socket_path.exists(), "start record and control socket", 60.0, first)
        client = subprocess.Popen(
            [*GUARDD, "send", "--to", "inbox", "--text", "hi", "--socket", str(socket_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
        )
        procs.append(client)
        wait_until(lambda: bool(records("request")), "request record", 60.0, first)
        wait_until(lambda: "[LED ◐" in first_err.read_text(), "the LED asking", 60.0, first)
        [request] = records("request")
        assert (outbox / f"{request['id']}.bin").exists()

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        client.wait(10)  # its connection died with the daemon
        assert client.returncode != 0
        assert records("decision") == []  # killed: it never got to decide

        second, second_err = start_daemon("second")
        wait_until(lambda: "listening (models" in second_err.read_text(), "the second daemon listening", 60.0, second)
        aborted = [r for r in records("decision") if r["id"] == request["id"]]
        assert [(r["decision"], r["reason"]) for r in aborted] == [("denied", "aborted")]
        assert aborted[0]["seq"] > records("start")[1]["seq"]
        assert list(outbox.glob("*.bin")) == []

        assert second.stdin is not None
        second.stdin.write("\n")  # a short press, as --simulate reads it
        second.stdin.flush()
        wait_until(lambda: "button up at" in second_err.read_text(), "the core handling the press", 60.0, second)
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0

        inbox.assert_nothing_arrived()
        types = [r["type"] for r in read_records(log_dir)]
        assert "send" not in types and "sent" not in types
        assert [r["type"] for r in read_records(log_dir) if r.get("id") == request["id"]] == ["request", "decision"]
        assert types[-1] == "stop"
        assert "[LED ◐" not in second_err.read_text()  # the restarted daemon never asked
    finally:
        for proc in procs:
            _kill(proc)
        for p in sock_dir.iterdir():
            p.unlink()
        sock_dir.rmdir()


# -- 15. failures in the button and reply paths -----------------------------------------------------


def test_failing_button_callback_approves_nothing_and_the_core_keeps_working(device, inbox):
    d = device()
    s = d.submit(b"secret")
    calls = [0]

    def flaky(edge: ButtonEdge) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("the inbox refused the edge")
        d.edges.append(edge)

    d.on_edge = flaky
    with pytest.raises(RuntimeError):
        d.down(T0 + 1.0)  # MockPin runs callbacks synchronously, so the failure surfaces here
    d.up(T0 + 1.1)  # the release arrives without its press
    d.at(T0 + 1.2)
    assert d.story(s.id) == ["request"], "a release without a press approved"
    inbox.assert_nothing_arrived()
    d.press(T0 + 2.0)  # the next whole press works
    d.assert_approved_and_sent(s, b"secret")
    inbox.assert_received_exactly(b"secret")


def test_raising_reply_does_not_stop_the_approval_or_send_twice(device, inbox):
    d = device()
    replies: list[dict[str, Any]] = []

    def broken_stream(message: dict[str, Any]) -> None:
        replies.append(message)
        raise BrokenPipeError("the client's stream is gone")

    request = d.core.submit("message", "inbox", b"secret", ME, reply=broken_stream, client=1)
    assert d.led is LedState.AWAITING
    d.at(T0 + 1.5)  # a once-a-second "still waiting" reply, which raises too
    d.at(T0 + 2.6)
    d.press(T0 + 3.0)
    d.at(T0 + 10.0)
    assert [r["type"] for r in d.records(id_=request.id)] == ["request", "decision", "send", "sent"]
    assert d.decision(request.id)["decision"] == "approved"
    inbox.assert_received_exactly(b"secret")
    assert [m["status"] for m in replies][-2:] == ["approved", "sent"]
    assert d.led is LedState.IDLE


def test_press_with_nothing_armed_does_nothing_and_is_not_remembered(device, inbox):
    d = device()
    before = d.records()
    d.press(T0 + 1.0)
    d.down(T0 + 2.0)
    d.up(T0 + 2.1)
    assert d.records() == before  # no record, no request, nothing spooled
    assert d.led is LedState.IDLE
    s = d.submit(b"secret", at=T0 + 2.11)  # 10 ms after the last press ended
    d.at(T0 + 2.2)
    d.at(T0 + 2.11 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


# -- the gate by itself -----------------------------------------------------------------------------


CFG = ConfirmConfig(timeout_s=1.0, long_press_s=2.0, stuck_s=10.0, debounce_s=0.03)


def test_gate_absorbs_edges_closer_than_debounce():
    g = Gate(CFG)
    g.arm("r1", 0.0)
    assert g.edge(True, 0.100) is None
    assert g.edge(False, 0.110) is None  # a 10 ms blip
    assert g.advance(0.5) is None and not g.button_down
    d = g.advance(1.0)
    assert d is not None and (d.approved, d.reason) == (False, "timeout")


def test_gate_dates_a_press_from_the_first_edge_of_its_stable_run():
    # Bounces end at 0.995; that edge starts the stable run, before the 1.0 deadline: approved,
    # even though the debounce only settles at 1.025 (after the deadline).
    g = Gate(CFG)
    g.arm("r1", 0.0)
    for t, pressed in [(0.985, True), (0.990, False), (0.995, True)]:
        assert g.edge(pressed, t) is None
    assert g.advance(1.0) is None  # still settling: let it finish
    assert g.advance(1.05) is None and g.button_down and g.down_since == 0.995
    assert g.edge(False, 1.2) is None
    d = g.advance(1.3)
    assert d is not None and (d.request, d.approved, d.reason) == ("r1", True, "pressed")

    # Bounces that start before the deadline but whose stable run starts at it: too late.
    # (Dated from the first raw edge, 0.990, it would have been in time.)
    g = Gate(CFG)
    g.arm("r2", 0.0)
    assert g.edge(True, 0.990) is None
    assert g.edge(False, 0.995) is None
    decision = g.edge(True, 1.000)
    assert decision is not None and (decision.approved, decision.reason) == (False, "timeout")
    g.edge(False, 1.2)
    assert g.advance(1.3) is None


def test_gate_one_press_approves_one_request():
    g = Gate(CFG)
    g.arm("r1", 0.0)
    g.edge(True, 0.2)
    g.edge(False, 0.3)
    d = g.advance(0.4)
    assert d is not None and (d.request, d.approved) == ("r1", True)
    g.arm("r2", 0.4)  # the same press is over; it is not remembered
    assert g.advance(1.3) is None
    d = g.advance(1.4)
    assert d is not None and (d.request, d.approved, d.reason) == ("r2", False, "timeout")


def test_gate_press_before_arming_must_be_released_and_pressed_again():
    g = Gate(CFG)
    g.edge(True, -0.5)
    g.arm("r1", 0.0)
    g.edge(False, 0.2)
    assert g.advance(0.3) is None  # the release of an old press approves nothing
    g.edge(True, 0.4)
    g.edge(False, 0.5)
    d = g.advance(0.6)
    assert d is not None and (d.approved, d.reason) == (True, "pressed")


def test_gate_late_delivered_edge_from_before_arming_does_not_count():
    """Edges are stamped when they happen; one queued before arming but handed over after it is
    still a press from before the request asked."""
    g = Gate(CFG)
    g.arm("r1", 0.5)
    g.edge(True, 0.45)  # happened before arming, delivered after
    g.edge(False, 0.6)
    assert g.advance(0.7) is None
    d = g.advance(1.5)
    assert d is not None and (d.approved, d.reason) == (False, "timeout")


def test_gate_glitch_at_arming_does_not_swallow_the_next_real_press():
    g = Gate(CFG)
    g.edge(True, -0.005)  # a 10 ms blip straddling the arming
    g.arm("r1", 0.0)
    g.edge(False, 0.005)
    assert g.advance(0.2) is None
    g.edge(True, 0.3)
    g.edge(False, 0.4)
    d = g.advance(0.5)
    assert d is not None and (d.approved, d.reason) == (True, "pressed")
