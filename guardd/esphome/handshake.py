"""The server's side of an ESPHome API connection until encryption is up: the client's hello
frame, guardd's hello, the client's `psk, e`, guardd's `e, ee` (noise.py), all within HANDSHAKE_S.

The wire, as Home Assistant's client (aioesphomeapi `_frame_helper/noise.py`) and ESPHome's server
(`api_frame_helper_noise.cpp`) speak it: the client writes an empty hello frame and its handshake
frame (0x00, then the Noise message) at once; the server answers a hello frame (0x01 for the
chosen protocol, then the node name and MAC, each ended by a zero byte) and its handshake frame.
The Noise prologue is "NoiseAPIInit", the client hello's 2-byte length and the hello itself.

What a peer without the key can get from guardd is one constant, REFUSAL, whatever it sent: a
hello frame naming neither guardd nor its MAC (it names no device to anyone: the name and MAC
reach Home Assistant inside the encrypted link, in the device info), then the protocol's "Handshake
MAC failure". Those bytes are how Home Assistant tells "encryption required" (its plaintext client
stops at the first byte, 0x01) and "wrong key" apart, and so how its ESPHome integration gets to
ask the owner for the key when a device is added by host and port (homeassistant/components/
esphome/config_flow.py `_async_try_fetch_device_info` probes with no key, then a wrong one).
"""

from __future__ import annotations

import socket
import time
from collections import OrderedDict
from typing import Callable

from guardd.esphome.framing import (
    HANDSHAKE_MAX, BadFrame, FrameReader, LinkBroken, PlaintextHello, TooSlow, frame,
)
from guardd.esphome.noise import CipherState, HandshakeFailed, Responder

HANDSHAKE_S = 5.0  # from the connection to guardd's answer; Home Assistant sends both frames at once
PROLOGUE = b"NoiseAPIInit"
NOISE_CHOSEN = b"\x01"  # the one protocol ESPHome's API defines: Noise_NNpsk0_25519_ChaChaPoly_SHA256
SERVER_HELLO = frame(NOISE_CHOSEN + b"\x00" + b"\x00")  # no name, no MAC: the same for every peer
REJECT = frame(b"\x01" + b"Handshake MAC failure")
REFUSAL = SERVER_HELLO + REJECT
REMEMBERED = 1024  # initiator ephemeral keys remembered to refuse a replayed handshake


class Refused(Exception):
    """The peer did not prove the key; it got REFUSAL and nothing more. The message says why."""


class SeenEphemerals:
    """The initiator ephemeral keys of recent handshakes: a genuine client makes a new one for
    each, so one seen before is a replay. Bounded (the oldest are forgotten). Not thread-safe:
    the caller locks."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._size = size

    def first_time(self, key: bytes) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


def handshake(sock: socket.socket, reader: FrameReader, psk: bytes,
              fresh: Callable[[bytes], bool]) -> tuple[CipherState, CipherState]:
    """(send, receive) ciphers once the peer proved the key; Refused otherwise (REFUSAL sent,
    or what was left of it). `fresh(ephemeral)` says whether an initiator key is new."""
    by = time.monotonic() + HANDSHAKE_S
    sent_hello = False

    def refuse(why: str) -> Refused:
        try:
            sock.sendall(REJECT if sent_hello else REFUSAL)
        except OSError:
            pass  # the peer is gone: it gets even less
        return Refused(why)

    try:
        hello = reader.read(quiet_s=HANDSHAKE_S, limit=HANDSHAKE_MAX, by=by)
        prologue = PROLOGUE + len(hello).to_bytes(2, "big") + hello
        sock.sendall(SERVER_HELLO)
        sent_hello = True
        message = reader.read(quiet_s=HANDSHAKE_S, limit=HANDSHAKE_MAX, by=by)
    except PlaintextHello:
        raise refuse("a plaintext hello: the peer has no encryption key") from None
    except TooSlow:
        raise refuse(f"no handshake within {HANDSHAKE_S:g} s") from None
    except BadFrame as exc:
        raise refuse(f"not a handshake: {exc}") from None
    except LinkBroken as exc:
        raise Refused(f"gone before the handshake: {exc}") from None
    except OSError as exc:
        raise Refused(f"gone before the handshake: {exc.strerror or exc}") from None
    if not message or message[0] != 0x00:
        raise refuse("not a handshake: its frame does not start with 0x00")
    responder = Responder(psk, prologue)
    try:
        responder.read_message(message[1:])
    except HandshakeFailed as exc:
        raise refuse(f"{exc}") from None
    if not fresh(responder.initiator_ephemeral):
        raise refuse("a replayed handshake (its ephemeral key was used before)")
    try:
        answer = responder.write_message()
    except HandshakeFailed as exc:
        raise refuse(f"{exc}") from None
    try:
        sock.sendall(frame(b"\x00" + answer))
    except OSError as exc:
        raise Refused(f"gone during the handshake: {exc.strerror or exc}") from None
    return responder.ciphers()
