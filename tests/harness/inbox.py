"""The destination of the tests: a real HTTP server on loopback that keeps everything that
arrives, and can be told to misbehave."""

from __future__ import annotations

import http.server
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from guardd.auditlog.reading import read_records
from harness.processes import WAIT_S

REPLY = b'{"text":"heard you"}'  # what the inbox answers a request it takes


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
