"""The Wyoming link as Home Assistant meets it: a stand-in written with the `wyoming` package's own
AsyncTcpClient connects on loopback, asks `describe`, pings, and pauses the satellite. A peer
outside `allow` gets nothing; every bad frame drops the connection, says why, and the link takes
the next connection."""

from __future__ import annotations

import asyncio
import errno
import io
import queue
import socket
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.satellite import PauseSatellite, RunSatellite

from harness import wait_until
from test_wyoming_frames import mutated

from guardd.wyoming import link as linkmod
from guardd.wyoming.frames import read_frame, write_frame
from guardd.wyoming.info import satellite_info
from guardd.wyoming.link import PeerFrame, PeerNews, WyomingLink, allowed


@pytest.fixture
def link():
    inbox: queue.Queue[Any] = queue.Queue()
    the_link = WyomingLink("127.0.0.1", 0, ("127.0.0.1",), satellite_info("kitchen", ("alexa",)), inbox.put)
    the_link.start()
    the_link.inbox = inbox  # type: ignore[attr-defined]
    yield the_link
    the_link.stop()


def next_item(inbox: queue.Queue[Any], kind: type, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(item, kind):
            return item
    raise AssertionError(f"no {kind.__name__}")


async def talk(port: int, *events: Event, answers: int) -> list[Event]:
    client = AsyncTcpClient("127.0.0.1", port, connect_timeout=5, read_timeout=5)
    await client.connect()
    try:
        for event in events:
            await client.write_event(event)
        got = []
        for _ in range(answers):
            event = await client.read_event()
            assert event is not None
            got.append(event)
        return got
    finally:
        await client.disconnect()


def test_describe_is_answered_with_a_satellite_that_has_its_own_wake_word_and_vad(link):
    [answer] = asyncio.run(talk(link.port, Describe().event(), answers=1))
    info = Info.from_event(answer)
    assert info.satellite is not None and info.satellite.name == "kitchen"
    assert info.satellite.has_vad and info.satellite.active_wake_words == ["alexa"]
    assert next_item(link.inbox, PeerNews).what == "connected"


def test_a_ping_gets_a_pong_that_echoes_nothing_of_the_peers(link):
    [answer] = asyncio.run(talk(link.port, Ping(text="secret from the peer").event(), answers=1))
    assert Pong.is_type(answer.type) and answer.data.get("text") is None
    wait_until(lambda: link.sent == {"pong": 1}, "the pong counted", 5)


def test_other_frames_go_to_the_core_in_order(link):
    asyncio.run(talk(link.port, PauseSatellite().event(), Ping().event(), answers=1))
    frame = next_item(link.inbox, PeerFrame)
    assert frame.event.type == "pause-satellite" and link.received["pause-satellite"] == 1


def test_a_peer_outside_allow_gets_nothing_and_is_logged():
    inbox: queue.Queue[Any] = queue.Queue()
    guarded = WyomingLink("127.0.0.1", 0, ("192.0.2.7",), satellite_info("kitchen", ("alexa",)), inbox.put)
    guarded.start()
    try:
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=5) as s:
            assert s.recv(4096) == b""  # closed at accept, and not one byte written
        news = next_item(inbox, PeerNews)
        assert (news.what, news.reason) == ("refused", "not in wyoming.allow")
        assert guarded.sent == {} and guarded.status()["peer"] is None
    finally:
        guarded.stop()


def send_and_read(port: int, data: bytes) -> bytes:
    """Send `data`, close our side, and read what comes back until the link closes (a link
    that drops us with our bytes unread resets the connection: that too is nothing back)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return s.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return b""
        except OSError as exc:
            if exc.errno == errno.ENOTCONN:  # reset before our shutdown
                return b""
            raise


@pytest.mark.parametrize("sent, why", [
    (b"not json\n", "the header is not JSON"),
    (b'{"type": "unmute-mic"}\n', "an event type the protocol does not name"),
    (b'{"type": "audio-chunk", "payload_length": 99999999999}\n', "over the limit"),
    (b'{"type": "audio-chunk", "payload_length": 1000}\n' + bytes(10), "inside a frame"),
    (b"x" * 70000, "a header line over"),
])
def test_a_bad_frame_drops_the_connection_says_why_and_the_next_one_is_served(link, sent, why):
    assert send_and_read(link.port, sent) == b""
    closed = next_item(link.inbox, PeerNews)
    while closed.what != "closed":
        closed = next_item(link.inbox, PeerNews)
    assert why in closed.reason
    [answer] = asyncio.run(talk(link.port, Describe().event(), answers=1))  # still listening
    assert answer.type == "info"


def test_a_silent_peer_is_dropped_after_the_idle_limit(link, monkeypatch):
    monkeypatch.setattr(linkmod, "IDLE_S", 0.5)
    with socket.create_connection(("127.0.0.1", link.port), timeout=5) as s:
        started = time.monotonic()
        assert s.recv(4096) == b""
        assert 0.4 < time.monotonic() - started < 3
    news = [next_item(link.inbox, PeerNews) for _ in range(2)]
    assert news[1].what == "closed" and "nothing from the peer for 0.5 s" in news[1].reason


def test_a_reconnecting_peer_replaces_the_old_link(link):
    first = socket.create_connection(("127.0.0.1", link.port), timeout=5)
    assert next_item(link.inbox, PeerNews).what == "connected"
    [answer] = asyncio.run(talk(link.port, Describe().event(), answers=1))
    assert answer.type == "info"
    assert first.recv(4096) == b""  # the old one was closed
    first.close()


@pytest.mark.parametrize("address, allow, ok", [
    ("192.0.2.7", ("192.0.2.7",), True),
    ("::ffff:192.0.2.7", ("192.0.2.7",), True),
    ("192.0.2.8", ("192.0.2.7",), False),
    ("2001:db8::1", ("2001:db8:0::1",), True),
    ("not an address", ("192.0.2.7",), False),
])
def test_allow_compares_addresses_not_strings(address, allow, ok):
    assert allowed(address, allow) is ok


# -- hostile bytes -----------------------------------------------------------------------------

FROM_HOME_ASSISTANT = [RunSatellite().event(), Describe().event(), Ping(text="x").event(),
                       Transcript(text="lights").event(), PauseSatellite().event(),
                       AudioChunk(rate=22050, width=2, channels=1, audio=bytes(64)).event()]


def frame_bytes(event: Event) -> bytes:
    out = io.BytesIO()
    write_frame(out, event)
    return out.getvalue()


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_frames_get_only_metadata_back_and_the_link_serves_on(link, data):
    good = b"".join(frame_bytes(e) for e in FROM_HOME_ASSISTANT)
    back = send_and_read_all(link.port, mutated(data, good, edits=6))
    stream = io.BytesIO(back)
    while (event := read_frame(stream)) is not None:  # what guardd wrote is whole frames
        assert event.type in ("info", "pong")  # and only the metadata it answers with
    [answer] = asyncio.run(talk(link.port, Describe().event(), answers=1))
    assert answer.type == "info"


def send_and_read_all(port: int, data: bytes) -> bytes:
    """Send `data`, close our side, and read everything until the link closes."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
    return got


def test_a_frame_trickled_a_byte_at_a_time_is_dropped_once_it_takes_too_long(link, monkeypatch):
    monkeypatch.setattr(linkmod, "FRAME_S", 0.5)
    with socket.create_connection(("127.0.0.1", link.port), timeout=5) as s:
        started = time.monotonic()
        try:
            for byte in b'{"type": "describe"}':  # each byte well inside IDLE_S
                s.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed = next_item(link.inbox, PeerNews)
        while closed.what != "closed":
            closed = next_item(link.inbox, PeerNews)
    assert "took over 0.5 s to arrive" in closed.reason and time.monotonic() - started < 3
