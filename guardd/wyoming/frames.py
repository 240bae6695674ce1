"""Wyoming frames, read and written by the `wyoming` package (the protocol's reference
implementation), inside the bounds it does not keep.

A frame is a JSON header line (`type`, and `data_length` / `payload_length` when extra data or
a binary payload follow), then that many bytes of JSON data, then the payload. The package's
`read_event` reads a header line of any length and then trusts the lengths it names. Here the
stream it reads from takes a header of at most MAX_HEADER bytes, and the header is checked
before the package reads what it announces: a type that is a short string, data that is an
object, lengths that are whole numbers within MAX_DATA and MAX_PAYLOAD. Anything else, a
peer that closes inside a frame, or data that is not a JSON object, is a FrameError that says
what was wrong; the caller drops the connection. Only what the header allows is ever read.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from wyoming.event import Event, read_event, write_event

MAX_HEADER = 16 * 1024  # bytes of a header line, its newline included
MAX_DATA = 64 * 1024  # bytes of a frame's extra JSON data
# Bytes of a frame's binary payload. Home Assistant's audio chunks are 2,048 bytes
# (assist_satellite.py _AUDIO_CHUNK_BYTES, for replies and announcements alike); a peer's frame
# is held whole in memory, once per connection and in the core's inbox, so the bound is what
# the memory bound (inbox.py, link.py) is made of.
MAX_PAYLOAD = 64 * 1024
MAX_TYPE = 64  # characters of an event type


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


def check_header(line: bytes) -> None:
    """A header line guardd lets the package act on, or FrameError naming what is wrong."""
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FrameError(f"the header is not JSON: {line[:60]!r}") from None
    if not isinstance(header, dict):
        raise FrameError("the header is not a JSON object")
    kind = header.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_TYPE or not kind.isprintable():
        raise FrameError(f"the header has no event type of 1 to {MAX_TYPE} characters")
    if not isinstance(header.get("data", {}), dict):
        raise FrameError("the header's data is not a JSON object")
    _length(header, "data_length", MAX_DATA)
    _length(header, "payload_length", MAX_PAYLOAD)


class _Bounded:
    """The stream as the package's read_event sees it: a checked header line, then reads of
    exactly what that header allows."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.closed_between_frames = False

    def readline(self) -> bytes:
        line = self._raw.readline(MAX_HEADER)
        if not line:
            self.closed_between_frames = True
            return b""
        if not line.endswith(b"\n"):
            if len(line) >= MAX_HEADER:
                raise FrameError(f"a header line over {MAX_HEADER} bytes")
            raise FrameError("the peer closed the connection inside a header")
        check_header(line)
        return line

    def read(self, n: int) -> bytes:
        data = self._raw.read(n)
        if len(data) < n:
            raise FrameError("the peer closed the connection inside a frame")
        return data


def read_frame(raw: BinaryIO) -> Event | None:
    """The next frame, or None when the peer closed the connection between frames."""
    stream = _Bounded(raw)
    try:
        event = read_event(stream)  # type: ignore[arg-type]
    except (TypeError, AttributeError, KeyError, RecursionError):
        raise FrameError("the frame's data is not a JSON object") from None
    if event is None and not stream.closed_between_frames:
        raise FrameError("the frame's data is not a JSON object")  # (the package says only "None")
    return event


def write_frame(raw: BinaryIO, event: Event) -> None:
    """One frame, written and flushed by the package."""
    write_event(event, raw)
