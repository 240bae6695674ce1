"""Home Assistant's pause and the owner's mute, end to end (28.2). Home Assistant sends
`pause-satellite` before it closes the satellite connection whenever it shuts down, restarts or
reloads the entry, and when its mute switch is turned on; it sends `run-satellite` when it runs
the satellite again (assist_satellite.py `run`, `_muted_changed`, `_connect_and_loop`). That pause
is Home Assistant's own hold: its run-satellite lifts it, it never lifts the owner's mute (only
the long press does, promise 5), and the microphone is closed while either holds. The LED, the
log and `guardd status` say which holds."""

from __future__ import annotations

import time

from harness import Daemon
from harness.home_assistant import HomeAssistant
from test_satellite import connected, satellite, silence

PAUSED_LED = "paused by Home Assistant"
MUTED_LED = "muted: the microphone is closed"


def status(d: Daemon) -> dict:
    return d.call({"call": "status"})


def holds(d: Daemon) -> tuple[bool, bool]:
    state = status(d)
    return state["owner_muted"], state["ha_paused"]


def test_a_home_assistant_restart_pauses_the_microphone_and_its_return_opens_it_again(tmp_path):
    """Every restart, reload or shutdown of Home Assistant used to mute guardd until a long press."""
    d, port = satellite(tmp_path, silence(tmp_path))
    ha = back = None
    try:
        ha = HomeAssistant(port, poll_s=None).connect()
        d.wait_until(d.microphone_open, "the microphone open")
        ha.close()  # Home Assistant restarting: pause-satellite, then the connection closed
        d.wait_until(lambda: not d.microphone_open(), "the microphone closed")
        assert holds(d) == (False, True) and status(d)["state"] == "paused"
        d.wait_until(lambda: PAUSED_LED in d.said(), "the LED's paused pattern")
        [paused] = d.records("mute")
        assert paused["hold"] == "home_assistant"
        assert paused["source"].startswith("home assistant pause-satellite from 127.0.0.1:")
        back = HomeAssistant(port, poll_s=None).connect()  # Home Assistant is back: run-satellite
        d.wait_until(d.microphone_open, "the microphone open again")
        assert holds(d) == (False, False) and status(d)["state"] == "idle"
        [resumed] = d.records("unmute")
        assert resumed["hold"] == "home_assistant" and "run-satellite" in resumed["source"]
        assert d.stop() == 0
    finally:
        for peer in (ha, back):
            if peer is not None:
                peer.close()
        d.close()


def test_home_assistant_never_lifts_the_owners_mute_only_the_long_press_does(tmp_path):
    with connected(tmp_path, silence(tmp_path), ha_options={"poll_s": None}) as (d, ha):
        d.wait_until(d.microphone_open, "the microphone open")
        assert d.call({"call": "mute"})["status"] == "muted"  # the owner mutes (guardd mute)
        d.wait_until(lambda: not d.microphone_open(), "the microphone closed")
        ha.close()
        again = HomeAssistant(ha.port, poll_s=None).connect()  # pause, then run-satellite
        try:
            d.wait_until(lambda: len(d.records("unmute")) == 1, "Home Assistant's pause lifted")
            time.sleep(1.0)
            assert holds(d) == (True, False) and not d.microphone_open()
            assert status(d)["state"] == "muted" and MUTED_LED in d.said()
            assert [r["hold"] for r in d.records("unmute")] == ["home_assistant"]
            d.stdin("hold 3.5")  # the owner's long press
            d.wait_until(d.microphone_open, "the microphone open after the long press", 15)
            assert holds(d) == (False, False)
            assert [(r["hold"], r["source"]) for r in d.records("unmute")][-1] == ("owner", "button")
        finally:
            again.close()


def test_home_assistants_mute_switch_both_ways(tmp_path):
    """On: pause-satellite, and nothing more (Home Assistant leaves the connection for the
    satellite to drop); off: a new connection, run-satellite."""
    d, port = satellite(tmp_path, silence(tmp_path))
    try:
        ha = HomeAssistant(port, poll_s=None).connect()
        d.wait_until(d.microphone_open, "the microphone open")
        ha.mute()
        d.wait_until(lambda: not d.microphone_open(), "the microphone closed")
        assert holds(d) == (False, True)
        d.wait_until(lambda: any(r["event"] == "closed" for r in d.records("peer")), "the silent connection dropped", 20)
        assert status(d)["wyoming"]["peer"] is None and holds(d) == (False, True)
        ha.unmute()
        d.wait_until(d.microphone_open, "the microphone open again")
        assert holds(d) == (False, False) and status(d)["wyoming"]["running"]
        ha.close()
        assert d.stop() == 0
    finally:
        d.close()


def test_a_mute_switch_turned_off_before_home_assistant_noticed_still_resumes_guardd(tmp_path):
    """Seen on the real Home Assistant: on and off within a second, it sent pause-satellite and
    went on on the same connection with no run-satellite, and guardd stayed paused while Home
    Assistant showed it unmuted. guardd ends the connection a pause comes on; Home Assistant
    reconnects 3 s later and runs the satellite again."""
    d, port = satellite(tmp_path, silence(tmp_path))
    try:
        ha = HomeAssistant(port, poll_s=None, reconnect=True).connect()
        d.wait_until(d.microphone_open, "the microphone open")
        ha.toggle_mute()
        d.wait_until(lambda: holds(d) == (False, True), "the pause")
        d.wait_until(lambda: holds(d) == (False, False), "the pause lifted by the new connection", 15)
        assert d.microphone_open() or d.wait_until(d.microphone_open, "the microphone open again") is None
        closed = [r for r in d.records("peer") if r["event"] == "closed"]
        assert closed and "paused the satellite" in closed[0]["reason"]
        assert status(d)["wyoming"]["running"] and ha.drops == 1
        ha.close()
        assert d.stop() == 0
    finally:
        d.close()


def test_home_assistants_pause_outlives_a_restart_of_guardd_until_it_runs_the_satellite(tmp_path):
    """Its mute switch stays on while guardd restarts, and Home Assistant does not connect
    while it is on: guardd must not listen meanwhile."""
    d, port = satellite(tmp_path, silence(tmp_path))
    try:
        ha = HomeAssistant(port, poll_s=None).connect()
        ha.mute()
        d.wait_until(lambda: holds(d) == (False, True), "the pause")
        ha.close(pause=False)
        assert d.stop() == 0
    finally:
        d.close()
    d = Daemon(tmp_path, tmp_path / "guardd.yaml", silence(tmp_path))
    try:
        d.wait_until(lambda: "satellite mode: listening" in d.said(), "the listener")
        time.sleep(1.0)
        assert holds(d) == (False, True) and not d.microphone_open()
        [start] = d.records("start")[-1:]
        assert start["paused"] == 1 and start["muted"] == 0
        back = HomeAssistant(port, poll_s=None).connect()
        d.wait_until(d.microphone_open, "the microphone open when Home Assistant runs the satellite")
        back.close()
        assert d.stop() == 0
    finally:
        d.close()
