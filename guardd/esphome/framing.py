"""ESPHome's encrypted frames on a socket, read inside bounds the peer cannot stretch.

A frame is the indicator byte 0x01, a 2-byte big-endian length, and that many bytes: during the
handshake a hello or handshake message (at most HANDSHAKE_MAX bytes, as ESPHome's own limit),
afterwards one ChaCha20-Poly1305 ciphertext whose plaintext is a 2-byte message type, a 2-byte
payload length and the protobuf payload. A plaintext API hello starts with 0x00 instead.

FrameReader waits at most `quiet_s` for a frame's first byte, and from that byte the whole frame
must arrive within FRAME_S (a peer trickling a byte at a time keeps no connection). It never
buffers more than one frame and one read ahead. Every break is a LinkBroken saying why.
"""

from __future__ import annotations

import socket
import struct
import time

INDICATOR = 0x01
HEADER_LEN = 3
HANDSHAKE_MAX = 128  # bytes of a hello or handshake frame's body (ESPHome's own limit)
FRAME_MAX = 0xFFFF  # bytes of a frame's body: all the 2-byte length can say
FRAME_S = 10.0  # from its first byte, a frame must be whole within this
READ_CHUNK = 16 * 1024
TYPE_HEADER = struct.Struct(">HH")  # message type, payload length


class LinkBroken(Exception):
    """The connection cannot go on; the message says why, for the log."""


class PeerClosed(LinkBroken):
    """The peer closed the connection between frames."""


class BadFrame(LinkBroken):
    """Bytes that are not a frame within the bounds."""


class PlaintextHello(BadFrame):
    """The peer spoke the API without encryption."""


class TooSlow(LinkBroken):
    """A frame, or the next one, did not come in time (`quiet`: not one byte of it)."""

    def __init__(self, message: str, *, quiet: bool) -> None:
        super().__init__(message)
        self.quiet = quiet


def frame(body: bytes) -> bytes:
    """One frame around `body`."""
    if len(body) > FRAME_MAX:
        raise ValueError(f"a frame body of {len(body)} bytes, over {FRAME_MAX}")
    return bytes((INDICATOR,)) + len(body).to_bytes(2, "big") + body


def pack_message(type_id: int, payload: bytes) -> bytes:
    """The plaintext of an encrypted frame: type, length, payload."""
    return TYPE_HEADER.pack(type_id, len(payload)) + payload


def unpack_message(plaintext: bytes) -> tuple[int, bytes]:
    """(message type, payload) from a decrypted frame, whose length field must be exact."""
    if len(plaintext) < TYPE_HEADER.size:
        raise BadFrame(f"a message of {len(plaintext)} bytes, too short for its type and length")
    type_id, length = TYPE_HEADER.unpack_from(plaintext)
    if length != len(plaintext) - TYPE_HEADER.size:
        raise BadFrame(f"a message whose length field says {length} bytes, not {len(plaintext) - TYPE_HEADER.size}")
    return type_id, plaintext[TYPE_HEADER.size:]


class FrameReader:
    """Frames from one socket, each bounded in size and time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.received = 0  # bytes read from the socket, in all

    def read(self, *, quiet_s: float, limit: int, by: float | None = None) -> bytes:
        """The next frame's body. Waits `quiet_s` for its first byte, and never past `by` (a
        monotonic time) for any of it; PeerClosed if the peer closed before its first byte,
        TooSlow, BadFrame or PlaintextHello otherwise."""
        if not self._buffer:
            first_by = time.monotonic() + quiet_s
            self._fill(first_by if by is None else min(first_by, by), between_frames=True)
        whole_by = time.monotonic() + FRAME_S
        if by is not None:
            whole_by = min(whole_by, by)
        if self._buffer[0] != INDICATOR:
            if self._buffer[0] == 0x00:
                raise PlaintextHello("a plaintext hello: the peer has no encryption key")
            raise BadFrame(f"a frame that does not start with 0x01 (got 0x{self._buffer[0]:02x})")
        while len(self._buffer) < HEADER_LEN:
            self._fill(whole_by)
        length = int.from_bytes(self._buffer[1:3], "big")
        if length > limit:
            raise BadFrame(f"a frame of {length} bytes, over the limit of {limit}")
        while len(self._buffer) < HEADER_LEN + length:
            self._fill(whole_by)
        body = bytes(self._buffer[HEADER_LEN:HEADER_LEN + length])
        del self._buffer[:HEADER_LEN + length]
        return body

    def _fill(self, deadline: float, *, between_frames: bool = False) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._late(between_frames)
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(READ_CHUNK)
        except TimeoutError:
            raise self._late(between_frames) from None
        except OSError as exc:
            raise LinkBroken(f"the connection failed: {exc.strerror or exc}") from None
        if not data:
            if between_frames:
                raise PeerClosed("the peer closed the connection")
            raise BadFrame("the peer closed the connection inside a frame")
        self.received += len(data)
        self._buffer += data

    @staticmethod
    def _late(between_frames: bool) -> TooSlow:
        if between_frames:
            return TooSlow("nothing from the peer in time", quiet=True)
        return TooSlow(f"a frame took over {FRAME_S:g} s to arrive", quiet=False)
