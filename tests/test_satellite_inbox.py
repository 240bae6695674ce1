"""The daemon's inbox (cli/inbox.py), the one place other threads hand the core anything: no
thread ever waits on it but a peer's own reader, for a bounded time (27.6); a flood in one lane
never crowds out another (button edges, client calls); a peer's frames are bounded in bytes
(27.7); what comes out keeps the order it went in."""

from __future__ import annotations

import threading
import time

from guardd.cli.inbox import BUTTON_EDGES, CLIENT_CALLS, Inbox, PeerLane
from guardd.confirm.outbox import Caller
from guardd.confirm.sender import SendResult
from guardd.control.server import ClientCall, ClientGone
from guardd.device.panel import ButtonEdge
from guardd.speak.player import Played

ME = Caller(0, 1, "test")


def test_a_flood_of_client_calls_never_crowds_out_a_button_edge_or_a_hang_up():
    inbox = Inbox()
    for i in range(CLIENT_CALLS * 4):
        inbox.deliver(ClientCall(i, {"call": "status"}, ME))
    inbox.deliver(ButtonEdge(True, 1.0))
    inbox.deliver(ClientGone(7))
    taken = inbox.take()
    assert ButtonEdge(True, 1.0) in taken and ClientGone(7) in taken
    assert sum(isinstance(t, ClientCall) for t in taken) == CLIENT_CALLS
    assert inbox.dropped == {"ClientCall": CLIENT_CALLS * 3}


def test_button_edges_past_their_lane_are_dropped_and_counted_never_waited_for():
    inbox = Inbox()
    started = time.monotonic()
    for i in range(BUTTON_EDGES + 10):
        inbox.deliver(ButtonEdge(i % 2 == 0, float(i)))
    assert time.monotonic() - started < 1.0
    assert len(inbox.take()) == BUTTON_EDGES and inbox.dropped == {"ButtonEdge": 10}


def test_guardds_own_news_is_never_dropped_and_never_waited_for():
    """27.6: the player reported a dropped sound through a blocking put, on the core's own thread."""
    inbox = Inbox()
    started = time.monotonic()
    for i in range(50_000):
        inbox.deliver(Played(f"peer-{i}", 0.0, False))
    inbox.deliver(SendResult("r1", True, 0, b"", "", 10, 0.1))
    assert time.monotonic() - started < 5.0
    taken = inbox.take()
    assert len(taken) == 50_001 and isinstance(taken[-1], SendResult) and not inbox.dropped


def test_what_comes_out_keeps_the_order_it_went_in_across_the_lanes():
    inbox = Inbox()
    sent = [ButtonEdge(True, 1.0), Played("r1", 1.0, True), "peer frame", ClientGone(3), ButtonEdge(False, 1.1)]
    for item in sent:
        if item == "peer frame":
            inbox.peer.offer(item, 100)
        else:
            inbox.deliver(item)
    assert inbox.take() == sent


def test_a_peers_offer_waits_for_room_then_gives_up_and_its_bytes_stay_bounded():
    lane = PeerLane(limit_bytes=1000)
    assert lane.offer("a", 600) and lane.offer("b", 300)
    started = time.monotonic()
    assert lane.offer("c", 300, wait_s=0.3) is False  # no room: the reader gives up (and drops its peer)
    assert 0.25 < time.monotonic() - started < 2 and lane.waiting_bytes == 900
    later = threading.Timer(0.2, lane.take)  # the core takes what waits: room again
    later.start()
    assert lane.offer("c", 300, wait_s=5.0) is True
    assert lane.peak_bytes <= 1000
    assert lane.offer("huge", 5000, wait_s=0.1) is False  # (not while anything waits)
    lane.take()
    assert lane.offer("huge", 5000)  # alone, a frame always fits: its size is bounded by frames.py


def test_closing_wakes_a_waiting_offer_at_once():
    lane = PeerLane(limit_bytes=10)
    lane.offer("x", 10)
    result: list[bool] = []
    waiting = threading.Thread(target=lambda: result.append(lane.offer("y", 10, wait_s=30)))
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    lane.close()
    waiting.join(5)
    assert result == [False] and time.monotonic() - started < 1
