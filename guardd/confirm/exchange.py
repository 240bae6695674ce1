"""One HTTP request and its answer within one deadline, for the sender. http.client speaks the
protocol over a socket guardd connects itself, so proxy settings in the environment never apply,
and every blocking step (the name lookup, the connect, each write and read) gets only the time
left: a destination that trickles a byte a second cannot keep a send alive past its timeout.
"""

from __future__ import annotations

import functools
import io
import ipaddress
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from guardd.config.settings import DestinationConfig

MAX_RESPONSE_BYTES = 1_000_000  # of the destination's reply kept for the client
SEND_CHUNK = 65536  # bytes written per step, each step bounded by the time left


class OutOfTime(TimeoutError):
    pass


class Deadline:
    """The one clock of an exchange (monotonic). `stage` says what the send was doing, for the
    error when time runs out."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.stage = "looking up the address"

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise OutOfTime(self.stage)
        return left


class BoundedSocket:
    """What http.client needs of a socket (sendall, makefile, close), with each blocking call
    given only the time left before the deadline. A per-call timeout alone would let a peer that
    moves one byte per call keep the exchange alive for ever."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.sent = 0  # bytes handed to the kernel, headers included

    def sendall(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), SEND_CHUNK):
            chunk = view[start : start + SEND_CHUNK]
            self.sock.settimeout(self.deadline.left())
            self.sock.sendall(chunk)  # plain sockets: the timeout bounds the whole call (3.5+)
            self.sent += len(chunk)

    def recv_into(self, buffer: memoryview) -> int:
        self.sock.settimeout(self.deadline.left())
        return self.sock.recv_into(buffer)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_Reader(self))

    def close(self) -> None:
        pass  # http.client "closes" as it hands the socket to the response; Exchange closes it


class _Reader(io.RawIOBase):
    def __init__(self, sock: BoundedSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(memoryview(buffer).cast("B"))


@functools.cache
def _tls() -> Any:
    """The system's trust store, certificate and host name checked (as urllib does). Imported
    on the first send: ssl and http.client cost about 3.5 MB and 60 ms that listening never needs."""
    import ssl

    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _resolve(host: str, port: int, deadline: Deadline) -> list[Any]:
    """getaddrinfo has no timeout: a name is looked up on a helper thread that is abandoned
    (it ends by itself) when the deadline passes first."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    found: list[Any] = []
    failed: list[OSError] = []

    def look_up() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)

    helper = threading.Thread(target=look_up, name="guardd-resolve", daemon=True)
    helper.start()
    helper.join(deadline.left())
    if helper.is_alive():
        raise OutOfTime(deadline.stage)
    if failed:
        raise failed[0]
    return found


def _connect(host: str, port: int, tls: bool, deadline: Deadline) -> socket.socket:
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _name, address in _resolve(host, port, deadline):
        deadline.stage = "connecting"
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.left())
            sock.connect(address)
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            error = exc
            continue
        if not tls:
            return sock
        deadline.stage = "in the TLS handshake"
        try:
            secure = _tls().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
            secure.settimeout(deadline.left())
            secure.do_handshake()  # one deadline for the whole handshake, inside _ssl
        except BaseException:
            sock.close()
            raise
        return secure
    raise error


class Exchange:
    """One request and its answer over a fresh connection, within one deadline."""

    def __init__(self, dest: DestinationConfig, deadline: Deadline) -> None:
        self.dest = dest
        self.deadline = deadline
        self.sock: BoundedSocket | None = None
        self._payload_from: int | None = None  # sock.sent when the payload began

    @property
    def payload_sent(self) -> int:
        if self.sock is None or self._payload_from is None:
            return 0
        return self.sock.sent - self._payload_from

    def run(self, payload: bytes, headers: dict[str, str]) -> tuple[int, str, str, bytes]:
        """(status, reason, Location header, body), or an OSError / HTTPException / ValueError."""
        import http.client

        parts = urlsplit(self.dest.url)
        tls = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = (http.client.HTTPSConnection if tls else http.client.HTTPConnection)(host, port)
        self.sock = BoundedSocket(_connect(host, port, tls, self.deadline), self.deadline)
        conn.sock = self.sock  # type: ignore[assignment]  # http.client connects only without one
        try:
            self.deadline.stage = "sending"
            conn.putrequest(self.dest.method, path)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(payload)))
            conn.putheader("Connection", "close")
            conn.endheaders()
            self._payload_from = self.sock.sent
            self.sock.sendall(payload)
            self.deadline.stage = "waiting for the answer"
            response = conn.getresponse()
            self.deadline.stage = f"reading the answer (HTTP {response.status})"
            body = response.read(MAX_RESPONSE_BYTES)
            return response.status, response.reason, response.getheader("Location") or "", body
        finally:
            conn.close()
            self.sock.sock.close()
