"""The ESPHome link on loopback, and Home Assistant's side of it: aioesphomeapi's own APIClient
(the client Home Assistant's ESPHome integration uses), and for hostile peers a raw socket that
makes its handshake with noiseprotocol, the Noise library that client itself runs on."""

from __future__ import annotations

import base64
import os
import queue
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from aioesphomeapi import APIClient
from noise.connection import NoiseConnection

from guardd.esphome.device import Identity, local_mac
from guardd.esphome.framing import frame
from guardd.esphome.link import EsphomeLink

PROLOGUE = b"NoiseAPIInit\x00\x00"  # as aioesphomeapi sends it: its hello frame is empty
CLIENT_HELLO = b"\x01\x00\x00"


@dataclass
class Served:
    link: EsphomeLink
    key: str  # base64, as Home Assistant stores it
    psk: bytes
    inbox: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    taken: list[Any] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.link.port

    def client(self, key: str | None = "", **kwargs: Any) -> APIClient:
        """Home Assistant's client; `key` "" means this link's key, None none at all."""
        return APIClient("127.0.0.1", self.port, None, noise_psk=self.key if key == "" else key,
                         client_info="guardd test", **kwargs)

    def items(self) -> list[Any]:
        """Everything the link handed over so far, in order."""
        try:
            while True:
                self.taken.append(self.inbox.get_nowait())
        except queue.Empty:
            return list(self.taken)

    def wait_for(self, test: Callable[[Any], bool], what: str, timeout_s: float = 10.0) -> Any:
        """The first item handed over (since the start) that passes `test`; AssertionError
        after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [item for item in self.items() if test(item)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s:g} s; saw {self.taken!r}"[:2000])
            try:
                self.taken.append(self.inbox.get(timeout=0.05))
            except queue.Empty:
                pass


@contextmanager
def served(*, allow: tuple[str, ...] = (), features: int | None = None, name: str = "kitchen") -> Iterator[Served]:
    psk = os.urandom(32)
    inbox: queue.Queue[Any] = queue.Queue()
    identity = Identity(name, local_mac(name), ("alexa", "hey_jarvis"),
                        **({} if features is None else {"features": features}))
    link = EsphomeLink("127.0.0.1", 0, psk, identity, allow, inbox.put)
    link.start()
    try:
        yield Served(link, base64.b64encode(psk).decode(), psk, inbox)
    finally:
        link.stop()


def initiator(psk: bytes, prologue: bytes = PROLOGUE) -> NoiseConnection:
    noise = NoiseConnection.from_name(b"Noise_NNpsk0_25519_ChaChaPoly_SHA256")
    noise.set_as_initiator()
    noise.set_psks(psk)
    noise.set_prologue(prologue)
    noise.start_handshake()
    return noise


def opening(psk: bytes) -> tuple[bytes, NoiseConnection]:
    """What aioesphomeapi writes first, at once: its empty hello frame and its handshake frame."""
    noise = initiator(psk)
    return CLIENT_HELLO + frame(b"\x00" + bytes(noise.write_message())), noise


def read_all(sock: socket.socket, timeout_s: float = 5.0) -> bytes:
    """Everything the server writes until it closes the connection (bounded by `timeout_s`)."""
    sock.settimeout(timeout_s)
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        got += data
    return bytes(got)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def authenticated(port: int, psk: bytes, rcvbuf: int = 0) -> tuple[socket.socket, NoiseConnection]:
    """A raw connection past the handshake, as a key holder makes it (with a receive buffer of
    `rcvbuf` bytes, set before it connects, when given)."""
    from guardd.esphome.handshake import SERVER_HELLO

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    first, noise = opening(psk)
    sock.sendall(first)
    want = len(SERVER_HELLO) + 3 + 1 + 48
    got = b""
    while len(got) < want:
        data = sock.recv(want - len(got))
        assert data, f"the server closed during the handshake after {got!r}"
        got += data
    assert got[: len(SERVER_HELLO)] == SERVER_HELLO
    noise.read_message(got[len(SERVER_HELLO) + 4:])
    return sock, noise


def sealed(noise: NoiseConnection, message: Any) -> bytes:
    """One message as an encrypted frame from the client."""
    from guardd.esphome import messages
    from guardd.esphome.framing import pack_message

    return frame(bytes(noise.encrypt(pack_message(*messages.encode(message)))))
