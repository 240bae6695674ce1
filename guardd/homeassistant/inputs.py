"""What a Home Assistant link hands the core, whichever protocol it speaks: plain values, never a
socket or a protocol's message object of its own making.

PeerNews says a connection came, was refused, ended, or (Wyoming) that polls were served.
PeerFrame carries one frame of an admitted peer, marked with its connection and the upload it
may answer; its `event` is the protocol's own reading of it (a Wyoming Event; what an ESPHome
message meant, esphome/session.py), which the link's adapter turns into said.py's meanings on
the core's thread. Uploading comes before an approved upload's first frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PeerNews:
    """About connections: `connected` (it sent its first frame for the core), `closed` (one that
    was connected ended; `run` is the upload it carried), `refused` (not allowed, or it did not
    prove the key; `count` refusals could not be told before this one), `polls` (`count`
    describe-only connections since the last such news)."""

    what: str
    peer: str
    reason: str = ""
    connection: int = 0
    run: str | None = None
    count: int = 0


@dataclass(frozen=True)
class PeerFrame:
    """A frame for the core, from connection `connection`; `run` is the request id of the last
    upload on that connection (what the frame may be an answer to), None before any."""

    peer: str
    event: Any
    run: str | None = None
    connection: int = 0


@dataclass(frozen=True)
class Uploading:
    """An approved upload is about to be written on `connection`: frames that follow may answer it."""

    request_id: str
    connection: int = 0


FromPeer = PeerNews | PeerFrame | Uploading
