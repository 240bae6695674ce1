"""The Wyoming link as Home Assistant meets it: clients written with the `wyoming` package's own
AsyncTcpClient connect on loopback, as Home Assistant's satellite connection (run-satellite,
describe, pings, pause) and as its 30 s describe poll on a second connection. A peer outside
`allow` gets nothing; every bad frame drops the connection, says why, and the link takes the
next connection. What the link hands the core goes through the daemon's own inbox lane."""

from __future__ import annotations

import asyncio
import errno
import io
import socket
import threading
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

from guardd.cli.inbox import PeerLane
from guardd.wyoming import link as linkmod
from guardd.wyoming.frames import read_frame, write_frame
from guardd.wyoming.info import satellite_info
from guardd.listening import allowed
from guardd.wyoming.link import PeerFrame, PeerNews, WyomingLink


class Lane(PeerLane):
    """The daemon's own lane, read as the core reads it, one item at a time."""

    def __init__(self, limit_bytes: int = 256 * 1024) -> None:
        self.arrived = threading.Event()
        super().__init__(limit_bytes, self.arrived.set)
        self._seen: list[Any] = []

    def get(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not self._seen:
            self._seen = [item for _, item in self.take()]
            if self._seen:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not self.arrived.wait(left):
                raise AssertionError("nothing came from the link")
            self.arrived.clear()
        return self._seen.pop(0)


def make_link(allow: tuple[str, ...] = ("127.0.0.1",), lane: Lane | None = None) -> WyomingLink:
    lane = lane or Lane()
    the_link = WyomingLink("127.0.0.1", 0, allow, satellite_info("kitchen", ("alexa",)), lane)
    the_link.start()
    the_link.inbox = lane  # type: ignore[attr-defined]
    return the_link


@pytest.fixture
def link():
    the_link = make_link()
    yield the_link
    the_link.stop()


def next_item(inbox: Lane, kind: type, timeout_s: float = 5.0) -> Any:
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
    polls = next_item(link.inbox, PeerNews)  # a describe-only connection is a poll: counted
    assert (polls.what, polls.count) == ("polls", 1) and link.polls == 1


def test_a_ping_gets_a_pong_that_echoes_nothing_of_the_peers(link):
    [answer] = asyncio.run(talk(link.port, Ping(text="secret from the peer").event(), answers=1))
    assert Pong.is_type(answer.type) and answer.data.get("text") is None
    wait_until(lambda: link.status()["sent"] == {"pong": 1}, "the pong counted", 5)


def test_other_frames_go_to_the_core_in_order(link):
    asyncio.run(talk(link.port, RunSatellite().event(), Transcript(text="x").event(), Ping().event(), answers=1))
    frames = [next_item(link.inbox, PeerFrame).event.type for _ in range(2)]
    assert frames == ["run-satellite", "transcript"] and link.received["transcript"] == 1


def test_a_pause_goes_to_the_core_and_ends_its_connection(link):
    """Home Assistant runs the satellite again on a new connection (link.PAUSED_ENDS)."""
    sat = Satellite(link.port)
    sat.sock.sendall(frame_bytes(PauseSatellite().event()))
    assert sat.sock.recv(4096) == b""
    assert next_item(link.inbox, PeerFrame).event.type == "run-satellite"
    assert next_item(link.inbox, PeerFrame).event.type == "pause-satellite"
    news = next_item(link.inbox, PeerNews)
    while news.what != "closed":
        news = next_item(link.inbox, PeerNews)
    assert news.reason == linkmod.PAUSED_ENDS and not link.ready
    sat.close()


def test_a_peer_outside_allow_gets_nothing_and_is_logged():
    guarded = make_link(allow=("192.0.2.7",))
    try:
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=5) as s:
            assert s.recv(4096) == b""  # closed at accept, and not one byte written
        news = next_item(guarded.inbox, PeerNews)
        assert (news.what, news.reason) == ("refused", "not in wyoming.allow")
        assert guarded.sent == {} and guarded.status()["peer"] is None
        assert guarded.status()["refused"] == {"not in wyoming.allow": 1}
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
    monkeypatch.setattr(linkmod, "POLL_IDLE_S", 0.3)
    monkeypatch.setattr(linkmod, "IDLE_S", 0.6)
    with socket.create_connection(("127.0.0.1", link.port), timeout=5) as s:  # says nothing at all
        started = time.monotonic()
        assert s.recv(4096) == b""
        assert 0.2 < time.monotonic() - started < 3
    wait_until(lambda: link.status()["refused"] == {"nothing from the peer for 0.3 s": 1}, "counted", 5)
    with socket.create_connection(("127.0.0.1", link.port), timeout=5) as s:  # starts the satellite, then nothing
        s.sendall(b'{"type": "run-satellite"}\n')
        started = time.monotonic()
        assert s.recv(4096) == b""
        assert 0.5 < time.monotonic() - started < 3
    news = [next_item(link.inbox, PeerNews) for _ in range(2)]
    assert news[1].what == "closed" and "nothing from the peer for 0.6 s" in news[1].reason


class Satellite:
    """Home Assistant's satellite connection, blocking: run-satellite first, then describe
    (assist_satellite.py _connect_and_loop, _run_pipeline_loop)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(frame_bytes(RunSatellite().event()) + frame_bytes(Describe().event()))
        self.reader = self.sock.makefile("rb")
        assert read_frame(self.reader).type == "info"

    def ping(self) -> Event:
        self.sock.sendall(frame_bytes(Ping().event()))
        return read_frame(self.reader)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def poll(port: int) -> Event:
    """Home Assistant's WyomingInfoCoordinator: a connection of its own, describe, info, close
    (wyoming/data.py load_wyoming_info)."""
    [answer] = asyncio.run(talk(port, Describe().event(), answers=1))
    return answer


def test_home_assistants_describe_polls_on_a_second_connection_leave_the_satellite_connection_up(link):
    sat = Satellite(link.port)
    wait_until(lambda: link.ready, "the satellite running", 5)
    assert next_item(link.inbox, PeerNews).what == "connected"
    assert next_item(link.inbox, PeerFrame).event.type == "run-satellite"
    for _ in range(20):
        assert poll(link.port).type == "info"
        assert sat.ping().type == "pong"  # the satellite connection is never touched by a poll
    assert link.ready and link.status()["peer"] == sat.sock.getsockname()[0] + f":{sat.sock.getsockname()[1]}"
    wait_until(lambda: link.polls == 20, "the polls counted", 5)
    polls = next_item(link.inbox, PeerNews)
    assert (polls.what, polls.count) == ("polls", 1)  # told once, not each: an idle link logs almost nothing
    time.sleep(0.3)
    assert link.inbox.take() == []
    status = link.status()
    assert status["polls"] == 20 and status["connections"] == 1 and status["running"] and status["connected_s"] >= 0
    sat.close()


def test_a_newer_satellite_connection_displaces_the_old_one_and_its_end_is_told(link):
    old = Satellite(link.port)
    assert next_item(link.inbox, PeerNews).what == "connected"
    new = Satellite(link.port)
    assert old.sock.recv(4096) == b""  # Home Assistant reconnected: the old one is dead, and closed
    news = next_item(link.inbox, PeerNews)
    while news.what != "closed":
        news = next_item(link.inbox, PeerNews)
    assert news.peer == f"127.0.0.1:{old.sock.getsockname()[1]}" and "displaced" in news.reason
    assert link.ready and new.ping().type == "pong"
    old.close()
    new.close()


def test_frames_of_a_replaced_or_other_connection_never_clear_the_satellites_running_flag(link):
    """27.9: each connection's state is its own."""
    old = Satellite(link.port)
    new = Satellite(link.port)
    try:
        old.sock.sendall(frame_bytes(PauseSatellite().event()))  # too late: it was replaced
    except OSError:
        pass
    other = socket.create_connection(("127.0.0.1", link.port), timeout=5)
    other.sendall(frame_bytes(PauseSatellite().event()))  # a pause on a connection that never ran it
    frame = next_item(link.inbox, PeerFrame)
    while frame.event.type != "pause-satellite":
        frame = next_item(link.inbox, PeerFrame)
    assert frame.connection != link._satellite.number  # the core hears it (and pauses the microphone)
    assert link.ready  # but the satellite connection still runs: uploads still go to it
    new.sock.sendall(frame_bytes(PauseSatellite().event()))
    wait_until(lambda: not link.ready, "the satellite's own pause", 5)
    for conn in (old, new):
        conn.close()
    other.close()


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


# -- the link's bookkeeping (27.9, 27.10) and what a peer can make it hold (27.6, 27.7) ------------


class StopsReading:
    """Home Assistant's satellite connection that starts the satellite and then reads nothing:
    guardd's writes to it back up."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(frame_bytes(RunSatellite().event()))


def upload_frames(seconds: float) -> list[Event]:
    import hashlib

    from guardd.wyoming.upload import pipeline_frames

    pcm = bytes(int(seconds * 32000))
    return pipeline_frames(pcm, hashlib.sha256(pcm).hexdigest())


def test_a_stalled_upload_holds_up_neither_another_connections_info_nor_the_core(link):
    stuck = StopsReading(link.port)
    wait_until(lambda: link.ready, "the satellite running", 5)
    result: list[tuple[int, str]] = []
    uploading = threading.Thread(target=lambda: result.append(link.upload("r1", upload_frames(15), 3.0)))
    uploading.start()
    time.sleep(0.5)  # the upload now waits on a peer that reads nothing
    started = time.monotonic()
    assert poll(link.port).type == "info"  # a reconnecting Home Assistant asks, and is answered at once
    from wyoming.snd import Played
    assert link.send(link._satellite.number, Played().event()) in (True, False)  # the core's `played`: queued, never waited on
    assert time.monotonic() - started < 1.0
    uploading.join(10)
    [(sent, why)] = result
    assert "within 3 s" in why and sent < 15 * 32000
    stuck.sock.close()


def test_an_upload_approved_while_home_assistant_reconnects_waits_for_it_within_its_deadline(link):
    result: list[tuple[int, str]] = []
    uploading = threading.Thread(target=lambda: result.append(link.upload("r1", upload_frames(1), 5.0)))
    uploading.start()
    time.sleep(1.5)  # Home Assistant is away (it reconnects 3 to 13 s after a drop)
    sat = socket.create_connection(("127.0.0.1", link.port), timeout=5)
    sat.sendall(frame_bytes(RunSatellite().event()))
    got = b""
    while got.count(b'"type": "audio-stop"') + got.count(b'"type":"audio-stop"') == 0:
        got += sat.recv(65536)
    uploading.join(5)
    assert result == [(32000, "")]
    sat.close()


def test_an_upload_with_no_home_assistant_fails_when_its_deadline_passes(link):
    started = time.monotonic()
    sent, why = link.upload("r1", upload_frames(1), 0.5)
    assert sent == 0 and "not connected" in why and 0.4 < time.monotonic() - started < 2


def test_a_burst_of_refused_connects_does_not_delay_the_real_one():
    guarded = make_link(allow=("127.0.0.1",))
    burst = []
    try:
        for _ in range(300):  # from 127.0.0.2, outside allow, all at once
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", guarded.port))
            burst.append(s)
        started = time.monotonic()
        assert poll(guarded.port).type == "info"
        assert time.monotonic() - started < 0.8  # no SYN retry (1 s) for the real one
        wait_until(lambda: guarded.status()["refused"].get("not in wyoming.allow", 0) >= 250, "the burst refused", 10)
    finally:
        for s in burst:
            s.close()
        guarded.stop()


def test_a_peer_that_floods_is_slowed_at_its_socket_then_dropped_and_the_inbox_stays_bounded(monkeypatch):
    """27.6, 27.7: the core takes nothing here (a core busy elsewhere); the link never holds
    more than the lane's bytes for it, and never makes anyone but its own reader wait."""
    monkeypatch.setattr(linkmod, "LANE_WAIT_S", 0.5)
    lane = Lane(limit_bytes=64 * 1024)
    flooded = make_link(lane=lane)
    try:
        sock = socket.create_connection(("127.0.0.1", flooded.port), timeout=5)
        chunk = frame_bytes(AudioChunk(rate=8000, width=2, channels=1, audio=bytes(60000)).event())
        sock.sendall(frame_bytes(RunSatellite().event()))
        try:
            for _ in range(200):  # 12 MB
                sock.sendall(chunk)
        except OSError:
            pass  # dropped
        wait_until(lambda: flooded.status()["connections"] == 0, "the flooding peer dropped", 10)
        assert lane.peak_bytes <= 64 * 1024 + len(chunk)
        news = next_item(lane, PeerNews)
        while news.what != "closed":
            news = next_item(lane, PeerNews)
        assert "faster than guardd takes" in news.reason
        sock.close()
    finally:
        flooded.stop()


def test_status_after_the_listener_could_not_bind_says_so_instead_of_failing():
    """27.10: `guardd status` asked the link for its port and killed the daemon."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    lane = Lane()
    busy = WyomingLink("127.0.0.1", taken.getsockname()[1], ("127.0.0.1",), satellite_info("kitchen", ()), lane)
    with pytest.raises(OSError):
        busy.start()
    status = busy.status()
    assert status["listening"] is False and "in use" in status["failure"] and busy.port is None
    busy.stop()
    taken.close()
