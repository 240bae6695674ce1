"""A flood of idle connections never locks out the next real client: idle connections are
bounded per peer uid and in total, the oldest idle one makes room for a newcomer, and a
connection holding a submit or a subscription is never closed to make room.

Against the real control server, the real core and the daemon's own dispatch (test_fuzz's
LiveServer), over a real Unix socket. A flood from another uid comes from a child process that
drops to `nobody` (root only; skipped otherwise)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

import pytest

from harness import Inbox, wait_until
from test_fuzz import LiveServer, closes, read_line

from guardd.control import connections
from guardd.control.connections import MAX_CLIENTS_PER_UID, MAX_IDLE_PER_UID

ANSWER_S = 1.0  # the newest client's answer arrives within this, however many idle ones wait
NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's may sit where nobody can reach it (under /root)
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
                             reason="a second uid needs root to setuid, and a python nobody can run")

FLOOD = """
import socket, sys
path, count = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
print("connected", flush=True)
sys.stdin.read()  # hold them until the test is done
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    inbox = Inbox()
    server = LiveServer(tmp_path_factory.mktemp("limits"), inbox, socket_group="nogroup")
    try:
        yield server
    finally:
        server.close()
        inbox.close()
    assert server.errors == [] and server.dropped == 0


@pytest.fixture
def quiet(live) -> LiveServer:
    """The server with nothing left open by an earlier test."""
    wait_until(lambda: live.server.connection_count == 0, "the earlier connections to close", 10)
    return live


def timed_status(live: LiveServer) -> tuple[dict, float]:
    started = time.monotonic()
    reply = live.status()
    return reply, time.monotonic() - started


@contextlib.contextmanager
def idle_connections(live: LiveServer, count: int) -> Iterator[list[socket.socket]]:
    socks = [live.connect() for _ in range(count)]  # never a byte from any of them
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def flood_as_nobody(live: LiveServer, count: int) -> Iterator[None]:
    child = subprocess.Popen([SYSTEM_PYTHON, "-c", FLOOD, live.path, str(count)], user=NOBODY,
                             group=NOBODY, extra_groups=[], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "connected\n", child.stderr
        yield
    finally:
        child.communicate(timeout=10)  # closes its stdin: the child lets go


@pytest.mark.parametrize("flood", [40, 200])
def test_the_newest_client_is_answered_within_a_second_with_idle_connections_open(quiet, flood):
    with idle_connections(quiet, flood) as socks:
        reply, waited = timed_status(quiet)
        assert reply["status"] == "ok", reply
        assert waited < ANSWER_S, f"answered after {waited:.2f} s"
        # The oldest idle connections made room; this uid keeps only its newest idle ones.
        made_room = socks[: flood - MAX_IDLE_PER_UID + 1]  # the status client took one more place
        for s in made_room:
            assert read_line(s) == {"status": "error", "code": "busy",
                                    "message": "closed to make room: this connection has no call in progress"}
            assert closes(s)


STORM = """
import select, socket, sys
path = sys.argv[1]
socks = []
print("storming", flush=True)
while not select.select([sys.stdin], [], [], 0)[0]:  # until the test closes our stdin
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    except OSError:
        s.close()
    if len(socks) > 50:
        socks.pop(0).close()
"""


def test_a_client_asking_while_a_flood_goes_on_is_answered_within_a_second(quiet):
    # The hostile program is another process, connecting as fast as it can the whole time.
    storm = subprocess.Popen([sys.executable, "-c", STORM, quiet.path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert storm.stdout is not None and storm.stdout.readline() == "storming\n"
        time.sleep(0.3)  # the flood is in full swing
        for _ in range(5):
            reply, waited = timed_status(quiet)
            assert reply["status"] == "ok" and waited < ANSWER_S, (reply, waited)
    finally:
        storm.communicate(timeout=10)


@AS_ROOT
@pytest.mark.parametrize("flood", [40, 200])
def test_a_flood_from_another_uid_leaves_a_subscription_and_a_waiting_submit_alone(quiet, flood):
    subscriber = quiet.connect()
    subscriber.sendall(b'{"call":"subscribe"}\n')
    assert read_line(subscriber) == {"status": "subscribed"}
    submitter = quiet.connect()
    submitter.sendall(b'{"call":"submit","to":"inbox","text":"wait for me"}\n')
    assert read_line(submitter)["status"] == "waiting"
    try:
        with flood_as_nobody(quiet, flood):
            reply, waited = timed_status(quiet)  # root's newest client, in a flood from nobody
            assert reply["status"] == "ok" and waited < ANSWER_S, (reply, waited)
            # Both are still served: the submit keeps counting down, the subscriber asks again.
            assert read_line(submitter)["status"] == "waiting"
            subscriber.sendall(b'{"call":"status"}\n')
            subscriber.settimeout(5)
            lines = []
            while not any(line.get("status") == "ok" for line in lines):
                lines.append(read_line(subscriber))  # the events the subscriber is owed come first
            assert not any(line.get("code") == "busy" for line in lines)
    finally:
        subscriber.close()
        submitter.close()


@AS_ROOT
def test_one_uid_holds_at_most_half_the_places_and_another_still_gets_in(quiet):
    subscribers = []
    try:
        for _ in range(MAX_CLIENTS_PER_UID):
            s = quiet.connect()
            s.sendall(b'{"call":"subscribe"}\n')
            assert read_line(s) == {"status": "subscribed"}
            subscribers.append(s)
        extra = quiet.connect()
        assert read_line(extra) == {"status": "error", "code": "busy",
                                    "message": "too many connections with calls in progress"}
        extra.close()
        nobody = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import json, socket, sys; s = socket.socket(socket.AF_UNIX); "
             "s.connect(sys.argv[1]); s.sendall(b'{\"call\":\"status\"}\\n'); "
             "print(s.makefile().readline(), end='')", quiet.path],
            user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True, text=True, timeout=10)
        assert json.loads(nobody.stdout)["status"] == "ok", nobody.stderr
    finally:
        for s in subscribers:
            s.close()


def test_closing_idle_connections_to_make_room_is_logged_with_a_count(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(connections, "EVICTION_LOG_S", 0.0)  # every eviction gets its line at once
    expected = (f"control socket: closed 1 idle connections to make room (uid {os.geteuid()}: 1); "
                f"at most 16 idle, {MAX_IDLE_PER_UID} per uid")
    inbox = Inbox()
    fresh = LiveServer(tmp_path, inbox)  # no earlier test's evictions counted in its line
    try:
        with caplog.at_level(logging.WARNING, logger="guardd.control.connections"):
            with idle_connections(fresh, MAX_IDLE_PER_UID + 1):
                wait_until(lambda: expected in [r.getMessage() for r in caplog.records], "the log line", 5)
    finally:
        fresh.close()
        inbox.close()
