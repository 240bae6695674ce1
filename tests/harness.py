"""The test harness: the device (the real pipeline on gpiozero's MockFactory pins, on a clock the
test moves), the destination (a real HTTP server on loopback that keeps what arrives), and the
adapters made for tests at seams guardd owns. conftest.py makes the fixtures of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gpiozero.pins.mock import MockFactory

from guardd.auditlog import files as log_files
from guardd.auditlog.reading import read_records
from guardd.config.settings import Config
from guardd.confirm.outbox import Caller, Request
from guardd.confirm.sender import Sender, SendJob
from guardd.device.panel import ButtonEdge, LedState
from guardd.errors import AuditLogError
from guardd.pipeline import open_pipeline

T0 = 100.0  # the injected clock starts here
TIMEOUT_S = 30.0  # confirm.timeout_s in these tests (the default)
ME = Caller(1000, 4242, "/usr/bin/test-client")
WAIT_S = 10.0  # the longest any real-time wait of the harness may take
REPLY = b'{"text":"heard you"}'  # what the inbox answers a request it takes


# -- the destination: a real HTTP server on loopback that keeps everything that arrives -------------


@dataclass
class Arrival:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    log_at_arrival: list[tuple[str, str]]  # (type, id) of every log record when the bytes arrived
    seen: Any = None  # what the inbox's `on_arrival` returned at that moment


ANSWERS = ("ok", "deaf", "silent", "redirect", "trickle", "trickle_headers", "trickle_raw")


class Inbox:
    """The one destination of the tests: http.server on 127.0.0.1, port 0, in a thread, that keeps
    every request that arrives. It counts connections as well as requests, so "zero bytes" means
    nobody even connected.

    `answer` says how it behaves: "ok" (200 and a short JSON body); "deaf" (never reads or
    answers); "silent" (reads, never answers); "redirect" (302); "trickle" (a 200 whose body comes
    a byte every `pace_s`); "trickle_headers" (headers that way); "trickle_raw" (a TLS record
    header announcing 16 KB, then a crawl, before any HTTP). Everything stops when it is closed.
    With `tls_cert` (a PEM file holding the key and the certificate) it speaks https. When
    `log_dir` is set, the log is read the moment bytes arrive; `on_arrival` may note more."""

    def __init__(self, answer: str = "ok", *, pace_s: float = 1.0, tls_cert: Path | None = None,
                 on_arrival: Callable[[], Any] | None = None) -> None:
        assert answer in ANSWERS, answer
        self.arrivals: list[Arrival] = []
        self.connections = 0
        self.log_dir: Path | None = None
        self.closed = threading.Event()
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle(self) -> None:
                if answer == "trickle_raw":
                    self.trickle(bytes([0x16, 0x03, 0x03, 0x40, 0x00]) + b"\x02" * 16384)
                else:
                    super().handle()

            def trickle(self, data: bytes) -> None:
                for i in range(len(data)):
                    if inbox.closed.wait(pace_s if i else 0):
                        return
                    try:
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                    except OSError:
                        return  # the sender gave up

            def _any(self) -> None:
                if answer == "deaf":
                    inbox.closed.wait(60)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox._arrived(self.command, self.path, dict(self.headers), body, on_arrival)
                if answer == "silent":
                    inbox.closed.wait(60)
                elif answer == "trickle_headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    self.trickle(b"X-Slow: " + b"a" * 60 + b"\r\nContent-Length: 0\r\n\r\n")
                elif answer == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.end_headers()
                elif answer == "trickle":
                    reply = b'{"text":"heard you, slowly, one byte at a time"}'
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.trickle(reply)
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(REPLY)

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
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.url = self.url.replace("http://", "https://")
        self.thread = threading.Thread(target=self.server.serve_forever, name="inbox", daemon=True)
        self.thread.start()

    def _arrived(self, method: str, path: str, headers: dict[str, str], body: bytes,
                 on_arrival: Callable[[], Any] | None) -> None:
        snapshot = []
        if self.log_dir is not None:
            snapshot = [(str(r["type"]), str(r.get("id", ""))) for r in read_records(self.log_dir)]
        seen = on_arrival() if on_arrival is not None else None
        self.arrivals.append(Arrival(method, path, headers, body, snapshot, seen))

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
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT_S)


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
            self.core.take(self.edges.pop(0))
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
                                   "body": REPLY.decode()}]
        assert f"{s.id}.bin" not in self.spooled


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()




class NoSender:
    """A sender for a core that must send nothing: any job fails the test."""

    def submit(self, job: SendJob) -> None:
        raise AssertionError(f"{job.request_id} was handed to the sender")


class FailingJournal:
    """A journal over a real log that refuses appends on demand: every one while `failing` says
    why, or every one after the next `good` when fail_after(good) was called."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.failing: str | None = None
        self._good: int | None = None

    def fail_after(self, good: int, why: str = "cannot write the log: Input/output error") -> None:
        self._good, self._why = good, why

    def heal(self) -> None:
        self.failing = self._good = None

    def append(self, type_: str, **fields: Any) -> int:
        if self._good is not None:
            if self._good == 0:
                self.failing = self._why
            self._good -= 1
        if self.failing is not None:
            raise AuditLogError(self.failing)
        return self.log.append(type_, **fields)

    def records(self) -> Any:
        return self.log.records()


# -- the log's disk: the real one with chosen system calls replaced ---------------------------------


class LogDisk:
    """The log writer's view of the os module (guardd.auditlog.files.os) with the calls given
    replaced; every other call is the real one. For the log's own durability tests: everything
    above the log uses a journal made for the test instead."""

    def __init__(self, **calls: Callable[..., Any]) -> None:
        self.__dict__.update(calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def patch_log_disk(monkeypatch: Any, disk: Any = None, **calls: Callable[..., Any]) -> Any:
    disk = disk if disk is not None else LogDisk(**calls)
    monkeypatch.setattr(log_files, "os", disk)
    return disk
