"""Hostile peers against `guardd run` itself with `esphome:` set (the link's own bounds are
tested piece by piece in test_esphome_hostile.py): a wrong key, no key (a plaintext hello), a
replayed handshake, mutated frames (Hypothesis) and a flood each get at most the constant
refusal, never a run or audio; the daemon goes on, rations what they make it log, and still
serves Home Assistant's own client with the key."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import silent_wav
from harness.esphome import authenticated, connect, opening, read_all, sealed
from harness.esphome_ha import EsphomeHomeAssistant
from test_esphome_satellite import encrypted
from test_wyoming_frames import mutated

from guardd.esphome.handshake import REFUSAL, SERVER_HELLO
from guardd.esphome.link import REFUSAL_GAP_S
from guardd.esphome.messages import pb


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("hostile")
    d, port, key = encrypted(tmp_path, silent_wav(tmp_path / "silence.wav"))
    d.wait_until(lambda: d.call({"call": "status"})["esphome"]["listening"], "the link listening")
    yield d, port, key
    assert d.stop() == 0


def serves_home_assistant(port: int, key: str) -> None:
    ha = EsphomeHomeAssistant(port, key, answer=None)
    try:
        ha.connect(timeout_s=15)
        assert ha.device_info.name == "kitchen"
    finally:
        ha.close()


def no_run_and_no_audio(d) -> None:
    assert not d.records("request") and d.call({"call": "status"})["esphome"]["sent"].get("VoiceAssistantAudio", 0) == 0


def test_no_key_a_wrong_key_and_a_replayed_handshake_get_only_the_refusal(daemon):
    d, port, key = daemon
    import base64

    psk = base64.b64decode(key)
    with connect(port) as sock:  # a plaintext hello: the client has no key
        sock.sendall(b"\x00\x01\x01")
        assert read_all(sock) == REFUSAL
    with connect(port) as sock:  # a wrong key
        sock.sendall(opening(os.urandom(32))[0])
        assert read_all(sock) == REFUSAL
    first, _ = opening(psk)  # a key holder's opening, recorded and sent again
    with connect(port) as sock:
        sock.sendall(first)
        got = sock.recv(len(SERVER_HELLO) + 52)
        assert got.startswith(SERVER_HELLO)
    with connect(port) as sock:
        sock.sendall(first)
        assert read_all(sock) == REFUSAL
    d.wait_until(lambda: sum(1 for r in d.records("peer") if r["event"] == "refused") >= 1, "a refusal logged")
    assert d.proc.poll() is None
    no_run_and_no_audio(d)
    serves_home_assistant(port, key)


def test_a_flood_of_strangers_is_rationed_in_the_log_and_home_assistant_still_gets_in(daemon):
    d, port, key = daemon
    before = len(d.records("peer"))

    def stranger() -> None:
        try:
            with connect(port) as sock:
                sock.sendall(opening(os.urandom(32))[0])
                read_all(sock, 3.0)
        except OSError:
            pass

    threads = [threading.Thread(target=stranger) for _ in range(60)]
    for t in threads:
        t.start()
    serves_home_assistant(port, key)  # while they come
    for t in threads:
        t.join(20)
    time.sleep(REFUSAL_GAP_S + 0.5)
    stranger()  # the next refusal is told, with the count of those that were not

    def refused() -> list[dict]:
        return [r for r in d.records("peer")[before:] if r["event"] == "refused"]

    # (one refusal may be logged during the flood already: wait for the one that counts the rest)
    d.wait_until(lambda: sum(1 + r.get("missed", 0) for r in refused()) >= 60, "every refusal counted in the log")
    assert 1 <= len(refused()) <= 2  # rationed: one each REFUSAL_GAP_S, whatever comes, every one counted
    assert d.call({"call": "status"})["esphome"]["refused"] >= 61
    no_run_and_no_audio(d)


def test_a_key_holder_that_floods_is_dropped_and_the_daemon_goes_on(daemon):
    d, port, key = daemon
    import base64

    sock, noise = authenticated(port, base64.b64decode(key))
    sock.sendall(sealed(noise, pb.HelloRequest(client_info="flood", api_version_major=1, api_version_minor=10)))
    junk = b"".join(sealed(noise, pb.SubscribeLogsRequest()) for _ in range(20000))  # far past a second's worth
    try:
        sock.settimeout(10)
        sock.sendall(junk)
    except OSError:
        pass  # dropped while it wrote: what was meant
    read_all(sock, 5)
    sock.close()
    d.wait_until(lambda: any("KiB a second" in r.get("reason", "") for r in d.records("peer")), "the drop logged")
    assert d.proc.poll() is None
    serves_home_assistant(port, key)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_openings_get_the_refusal_or_nothing_and_never_more(daemon, data):
    d, port, key = daemon
    import base64

    good, _ = opening(base64.b64decode(key))
    bad = mutated(data, good)
    with connect(port) as sock:
        try:
            sock.sendall(bad)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        got = read_all(sock, 6.0)
    if bad != good:
        # Everything a stranger can get: the refusal, or its first part; or, when the mutation left
        # a key holder's opening that still verifies (a cut after the handshake frame, say),
        # guardd's hello and handshake answer and nothing after them.
        assert REFUSAL.startswith(got) or got.startswith(SERVER_HELLO) and len(got) <= len(SERVER_HELLO) + 52
    assert d.proc.poll() is None
