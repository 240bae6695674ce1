"""Wyoming frames: guardd's own reader and writer, byte for byte the framing of the `wyoming`
package (its event.py, release PROTOCOL_VERSION), inside bounds the package does not keep.

The package is not imported at run time: its event module imports asyncio (and with it `ssl`,
OpenSSL) and `importlib.metadata`, 12 MB in a fresh interpreter and about 3.6 MB of the running
daemon, whose target is 64 (docs/performance.md, "Memory of the running daemon"). The tests talk
to guardd with the package's own client and check that every frame guardd writes is the
package's, byte for byte, and reads back as the same event (tests/test_wyoming_frames.py).

A frame is a JSON header line (`type`, `version`, and `data_length` / `payload_length` when
extra data or a binary payload follow), then that many bytes of JSON data (an object, merged
over the header's own `data` if it has one), then the payload. Here a header is at most
MAX_HEADER bytes and is checked before anything it announces is read: a type that is a short
string, data that is an object, lengths that are whole numbers within MAX_DATA and MAX_PAYLOAD.
Anything else, a peer that closes inside a frame, or data that is not a JSON object, is a
FrameError that says what was wrong; the caller drops the connection. Only what the header
allows is ever read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO

PROTOCOL_VERSION = "1.10.2"  # the package release whose framing this is; sent, never checked by a reader
MAX_HEADER = 16 * 1024  # bytes of a header line, its newline included
MAX_DATA = 64 * 1024  # bytes of a frame's extra JSON data
# Bytes of a frame's binary payload. Home Assistant's audio chunks are 2,048 bytes
# (assist_satellite.py _AUDIO_CHUNK_BYTES, for replies and announcements alike); a peer's frame
# is held whole in memory, once per connection and in the core's inbox, so the bound is what
# the memory bound (inbox.py, link.py) is made of.
MAX_PAYLOAD = 64 * 1024
MAX_TYPE = 64  # characters of an event type


@dataclass(frozen=True)
class Event:
    """One Wyoming event, as the package's Event: its type, its JSON data, its binary payload."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    payload: bytes | None = None


class FrameError(Exception):
    """A frame the peer sent breaks the protocol or its bounds."""


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FrameError(f"{key} is not a length (got {str(value)[:40]!r})")
    if value > limit:
        raise FrameError(f"{key} {value} is over the limit of {limit} bytes")
    return value


def _header(line: bytes) -> tuple[str, dict[str, Any], int, int]:
    """(type, data, data_length, payload_length) of a header line, or FrameError naming what is wrong."""
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FrameError(f"the header is not JSON: {line[:60]!r}") from None
    if not isinstance(header, dict):
        raise FrameError("the header is not a JSON object")
    kind = header.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_TYPE or not kind.isprintable():
        raise FrameError(f"the header has no event type of 1 to {MAX_TYPE} characters")
    data = header.get("data", {})
    if not isinstance(data, dict):
        raise FrameError("the header's data is not a JSON object")
    return kind, data, _length(header, "data_length", MAX_DATA), _length(header, "payload_length", MAX_PAYLOAD)


def _exactly(raw: BinaryIO, n: int) -> bytes:
    data = raw.read(n)
    while len(data) < n:  # (a raw socket file may return less than asked before the end)
        more = raw.read(n - len(data))
        if not more:
            raise FrameError("the peer closed the connection inside a frame")
        data += more
    return data


def read_frame(raw: BinaryIO) -> Event | None:
    """The next frame, or None when the peer closed the connection between frames."""
    line = raw.readline(MAX_HEADER)
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) >= MAX_HEADER:
            raise FrameError(f"a header line over {MAX_HEADER} bytes")
        raise FrameError("the peer closed the connection inside a header")
    kind, data, data_length, payload_length = _header(line)
    if data_length:
        try:
            extra = json.loads(_exactly(raw, data_length))
        except (ValueError, UnicodeDecodeError, RecursionError):
            extra = None
        if not isinstance(extra, dict):
            raise FrameError("the frame's data is not a JSON object")
        data = {**data, **extra}
    payload = _exactly(raw, payload_length) if payload_length else None
    return Event(kind, data, payload)


def encode(event: Event) -> bytes:
    """The frame of `event`, as the package's write_event writes it (the same bytes)."""
    header: dict[str, Any] = {"type": event.type, "version": PROTOCOL_VERSION}
    data = json.dumps(event.data, ensure_ascii=False).encode() if event.data else b""
    if data:
        header["data_length"] = len(data)
    if event.payload:
        header["payload_length"] = len(event.payload)
    return b"".join((json.dumps(header, ensure_ascii=False).encode(), b"\n", data, event.payload or b""))


def write_frame(raw: BinaryIO, event: Event) -> None:
    """One frame, written and flushed."""
    raw.write(encode(event))
    raw.flush()
