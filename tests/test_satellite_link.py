"""The satellite link as Home Assistant lives with it, end to end (`guardd run` and the stand-in
of harness/home_assistant.py): its describe polls on a second connection every 30 s (here every
1.5 s) never take the satellite connection down and write no record each; an upload approved
while Home Assistant is reconnecting waits for it; `guardd status` tells the link as it is, and
never stops the daemon, even when the listener could not be had (27.10)."""

from __future__ import annotations

import signal
import socket
import time

import pytest
import yaml

from harness.home_assistant import HomeAssistant
from test_satellite import connected, satellite, silence

from guardd.speak.voice import find_voice

needs_voice = pytest.mark.skipif(find_voice() is None, reason="espeak-ng is not installed (scripts/setup.sh installs it)")


def test_home_assistants_polls_never_take_the_link_down_and_an_idle_link_logs_next_to_nothing(tmp_path):
    """28.1: each poll used to displace the satellite connection (up 49 % of the time) and
    wrote about 7 records a minute."""
    with connected(tmp_path, silence(tmp_path), ha_options={"poll_s": 1.5}) as (d, ha):
        time.sleep(32)  # some twenty polls and fifteen pings
        assert len(ha.polls) >= 15 and set(ha.polls) == {"info"}
        assert ha.drops == 0 and not ha.closed and ha.late_pongs == 0
        assert set(ha.types()) == {"info", "pong"}
        peer = d.records("peer")
        assert [r["event"] for r in peer] == ["connected", "polls"] and peer[1]["count"] == 1
        assert len(d.records()) <= 6  # start, peer connected, unmute..., polls: nothing per poll
        wyoming = d.call({"call": "status"})["wyoming"]
        assert wyoming["running"] and wyoming["connected_s"] >= 30 and wyoming["polls"] >= 15
        assert wyoming["last_poll_s"] < 3 and wyoming["connections"] <= 2  # the satellite's, and a poll's in flight


@needs_voice
def test_a_press_while_home_assistant_reconnects_waits_for_the_link_and_is_delivered(tmp_path, manifest):
    """28.1: a press in a gap ended `Home Assistant is not connected` and the request was lost."""
    d, port = satellite(tmp_path, manifest["dir"] / manifest["demo"]["file"])
    ha = again = None
    try:
        ha = HomeAssistant(port, poll_s=None).connect()
        d.wait_announced()
        ha.close(pause=False)  # Home Assistant vanished (killed), and comes back 3 s later
        d.wait_until(lambda: d.call({"call": "status"})["wyoming"]["peer"] is None, "the link down")
        d.press()
        time.sleep(3.0)
        again = HomeAssistant(port, poll_s=None).connect()
        sent = d.wait_for_record("sent", timeout_s=30)
        assert sent["delivered"] == 1 and sent["error"] == ""
        d.wait_until(lambda: "audio-stop" in again.types(), "the upload at the new connection")
        assert len(again.uploaded()) == sent["bytes"] and ha.uploaded() == b""
        d.wait_until(lambda: f"request {sent['id']} sent: Home Assistant took it" in d.said(),
                     "the sent line")  # not "send failed: no answer" (27.9)
        again.close()
        assert d.stop() == 0
    finally:
        for peer in (ha, again):
            if peer is not None:
                peer.close()
        d.close()


def busy_port() -> socket.socket:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    return taken


def test_status_after_the_listener_failed_to_bind_answers_and_the_daemon_goes_on(tmp_path):
    """27.10: `guardd status` raised AssertionError in the link and stopped the daemon."""
    taken = busy_port()
    try:
        d, port = satellite(tmp_path, silence(tmp_path))
        d.stop()
        config = yaml.safe_load((tmp_path / "guardd.yaml").read_text())
        config["wyoming"]["listen"] = f"127.0.0.1:{taken.getsockname()[1]}"
        (tmp_path / "guardd.yaml").write_text(yaml.safe_dump(config))
        from harness import Daemon

        d = Daemon(tmp_path, tmp_path / "guardd.yaml", silence(tmp_path))
        try:
            d.wait_until(lambda: "cannot listen for Home Assistant" in d.said(), "the bind failure")
            for _ in range(3):
                wyoming = d.call({"call": "status"})["wyoming"]
                assert wyoming["listening"] is False and "in use" in wyoming["failure"]
            assert d.proc.poll() is None
            assert d.stop() == 0
        finally:
            d.close()
    finally:
        taken.close()


def test_a_sighup_onto_a_busy_port_leaves_status_working(tmp_path):
    taken = busy_port()
    d, port = satellite(tmp_path, silence(tmp_path))
    try:
        d.wait_until(lambda: "satellite mode: listening" in d.said(), "the listener")
        config = yaml.safe_load((tmp_path / "guardd.yaml").read_text())
        config["wyoming"]["listen"] = f"127.0.0.1:{taken.getsockname()[1]}"
        (tmp_path / "guardd.yaml").write_text(yaml.safe_dump(config))
        d.send_signal(signal.SIGHUP)
        d.wait_until(lambda: "cannot listen for Home Assistant" in d.said(), "the bind failure after the reload")
        for _ in range(3):
            assert d.call({"call": "status"})["wyoming"]["listening"] is False
        assert d.proc.poll() is None
        assert d.stop() == 0
    finally:
        taken.close()
        d.close()


@pytest.mark.parametrize("listen, warned", [("192.0.2.20:10700", True), ("127.0.0.1:10700", False),
                                            ("0.0.0.0:10700", False)])
def test_check_config_warns_when_wyoming_listen_is_no_address_of_this_machine(tmp_path, listen, warned):
    """27.10: the README's example address, pasted as is, failed only when the daemon ran."""
    from harness import guardd, write_config

    config = write_config(tmp_path, after_wake={"upload_to": "wyoming"},
                          wyoming={"listen": listen, "allow": ["192.0.2.10"]})
    done = guardd("check-config", str(config))
    assert done.returncode == 0, done.stderr
    assert ("is not an address of this machine" in done.stderr) is warned
    if warned:
        assert "wyoming.listen: 192.0.2.20 is not an address of this machine" in done.stderr
        assert "with 1 warning(s)" in done.stdout
