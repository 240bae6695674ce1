"""Home Assistant's voice timers, end to end (28.3): `guardd run` over ALSA (the file plugin as
its speaker) with the in-repo Home Assistant stand-in (harness/home_assistant.py), whose timers
follow Home Assistant Core 2026.11's TimerManager and `_handle_timer` (timer-started, then
timer-finished when its time is up; timer-cancelled; timer-updated for a pause, a resume, added
time). scripts/ha_check.py does the same against the real Home Assistant.

The promises: a finished timer rings on the speaker (bursts of the ring tone) and the LED (drawn
by --simulate) until a press; a cancelled or paused timer never rings; a request that arms while
it rings is announced over it, a press approves exactly that request and leaves the ring going,
and a second press silences it; a hostile peer's flood of timers grows neither memory nor the log.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator

import numpy as np
from wyoming.event import Event
from wyoming.timer import TimerStarted

from harness import Daemon, Inbox, heard, write_config
from harness.home_assistant import HomeAssistant, free_port
from test_ring import rings_in
from test_satellite import needs_voice, silence
from test_satellite_hostile import rss_bytes
from test_speaker import VOLUME

from guardd.speak.earcons import render
from guardd.timers import LATE_S, MAX_TIMERS
from guardd.homeassistant.ration import QUOTA

RINGING_LED = "a timer is ringing: press the button to stop it"
RING = render("ring", VOLUME)


@contextlib.contextmanager
def ringable(tmp_path: Path, inbox: Inbox | None = None) -> Iterator[tuple[Daemon, HomeAssistant, Path]]:
    """`guardd run` in satellite mode with a speaker (and, given one, the inbox as a destination),
    Home Assistant connected (no describe polls: they are not what is tested here)."""
    port, played = free_port(), tmp_path / "played.raw"
    dest = {"destinations": {"inbox": {"url": inbox.url}}} if inbox is not None else {}
    config = write_config(tmp_path, audio={"queue_s": 120}, announce={"output": "device", "volume": VOLUME},
                          wyoming={"listen": f"127.0.0.1:{port}", "allow": ["127.0.0.1"], "name": "kitchen"}, **dest)
    d = Daemon(tmp_path, config, silence(tmp_path), played=played)
    ha = HomeAssistant(port, answer=None, poll_s=None).connect()
    try:
        d.wait_until(lambda: d.records("peer"), "the satellite connection")
        yield d, ha, played
    finally:
        try:
            ha.close()
        finally:
            assert d.stop() == 0


def timer_records(d: Daemon, event: str | None = None) -> list[dict]:
    return [r for r in d.records("timer") if event is None or r["event"] == event]


def status(d: Daemon) -> dict:
    return d.call({"call": "status"})


def led(d: Daemon) -> str:
    """The LED as --simulate drew it last."""
    return [line for line in d.said().splitlines() if line.startswith("[LED ")][-1]


def only_bursts(x: np.ndarray) -> bool:
    """What the speaker played is whole bursts of the ring, the last maybe cut short."""
    whole = len(x) // len(RING)
    return np.array_equal(x[: whole * len(RING)], np.tile(RING, whole)) and np.array_equal(
        x[whole * len(RING) :], RING[: len(x) - whole * len(RING)])


def test_a_timer_rings_on_the_speaker_and_the_led_until_a_press(tmp_path):
    with ringable(tmp_path) as (d, ha, played):
        timer = ha.start_timer(2)
        d.wait_until(lambda: timer_records(d, "started"), "timer-started")
        assert RINGING_LED not in d.said() and rings_in(heard(played)) == 0
        d.wait_until(lambda: rings_in(heard(played)) >= 2, "two bursts of the ring", 15)
        assert RINGING_LED in d.said() and status(d)["timers"]["ringing"] == [timer]
        d.press()
        d.wait_until(lambda: timer_records(d, "silenced"), "the ring silenced")
        time.sleep(0.5)  # what was cut reaches the file
        after = rings_in(heard(played))
        time.sleep(2.5 * 2)
        assert rings_in(heard(played)) == after, "the ring went on after the press"
        assert "idle, listening for the wake word" in led(d)
        started, finished, silenced = timer_records(d)
        assert (started["timer"], started["seconds"], started["name_chars"]) == (timer, 2, 0)
        assert (finished["timer"], finished["by"], finished["rings"]) == (timer, "home_assistant", 1)
        assert silenced["reason"] == "press" and silenced["timers"] == 1
        assert f"timer {timer}: finished: ringing, press the button to stop it" in d.said()
        assert d.records("decision") == [] and d.records("mute") == []  # the press did only that
        assert only_bursts(heard(played))  # the ring tone, made in code, and nothing else


def test_a_cancelled_timer_never_rings_and_a_paused_one_waits_for_home_assistant(tmp_path):
    with ringable(tmp_path) as (d, ha, played):
        cancelled = ha.start_timer(2)
        ha.cancel_timer(cancelled)
        paused = ha.start_timer(3)
        ha.pause_timer(paused)
        d.wait_until(lambda: len(timer_records(d)) == 4, "four timer records")
        time.sleep(3 + LATE_S + 1)  # both ends are long past
        assert timer_records(d, "finished") == [] and rings_in(heard(played)) == 0
        assert status(d)["timers"]["held"] == [{"timer": paused, "left_s": 3, "active": False}]
        ha.add_time(paused, 1)
        ha.unpause_timer(paused)  # 4 s to go
        d.wait_until(lambda: timer_records(d, "finished"), "the finish", 15)
        d.wait_until(lambda: rings_in(heard(played)) >= 1, "a burst")
        d.press()
        d.wait_until(lambda: timer_records(d, "silenced"), "the ring silenced")
        assert [(r["event"], r.get("seconds"), r.get("active")) for r in timer_records(d)] == [
            ("started", 2, None), ("cancelled", None, None), ("started", 3, None), ("updated", 3, 0),
            ("updated", 4, 0), ("updated", 4, 1), ("finished", None, None), ("silenced", None, None)]


@needs_voice
def test_a_request_armed_while_a_timer_rings_is_announced_over_it_and_its_press_leaves_the_ring(tmp_path):
    inbox = Inbox()
    try:
        with ringable(tmp_path, inbox) as (d, ha, played):
            ha.start_timer(1)
            d.wait_until(lambda: rings_in(heard(played)) >= 1, "a burst of the ring", 15)
            client = d.submit("dinner is ready")
            d.wait_announced()
            assert "a request asks for approval" in led(d)  # the LED asks, over the ring
            d.press()  # the press that approves: it began while the request asked
            d.wait_until(lambda: inbox.bodies == [b"dinner is ready"], "the message delivered")
            [decision] = d.records("decision")
            assert (decision["decision"], decision["reason"]) == ("approved", "pressed")
            time.sleep(1.0)
            assert timer_records(d, "silenced") == [] and status(d)["timers"]["ringing"]
            bursts = rings_in(heard(played))
            d.wait_until(lambda: rings_in(heard(played)) > bursts, "the ring going on after the decision", 10)
            d.wait_until(lambda: RINGING_LED in led(d), "the LED ringing again")
            d.press()  # an idle press: it silences
            d.wait_until(lambda: timer_records(d, "silenced"), "the ring silenced")
            [silenced] = timer_records(d, "silenced")
            assert silenced["reason"] == "press" and silenced["seq"] > decision["seq"]
            assert inbox.bodies == [b"dinner is ready"] and len(d.records("decision")) == 1
            client.close()
    finally:
        inbox.close()


def test_a_hostile_peers_flood_of_timers_grows_neither_memory_nor_the_log(tmp_path):
    with ringable(tmp_path) as (d, ha, played):
        time.sleep(2.0)  # at rest
        before = rss_bytes(d.proc.pid)
        records_before = len(d.records())
        name = "n" * 1000
        for batch in range(20):
            ha.send(*(TimerStarted(id=f"f{batch}x{i}", total_seconds=3600, name=name).event() for i in range(500)))
        ha.send(*(Event("timer-started", {"id": f"bad{i}", "total_seconds": s})
                  for i, s in enumerate([-1, 10 ** 12, 2.5, "60", True] * 200)))
        ha.send(*(Event("timer-started", {"id": "x" * 5000, "total_seconds": 60}) for _ in range(200)))
        d.wait_until(lambda: sum(status(d)["timers"]["refused"].values()) == 1200, "every bad frame refused", 60)
        timers = status(d)["timers"]
        assert len(timers["held"]) == MAX_TIMERS and timers["dropped"] == 10_000 - MAX_TIMERS
        assert timers["held"][-1]["timer"] == "f19x499"
        peak = rss_bytes(d.proc.pid)
        print(f"RSS {before / 2**20:.1f} MB at rest, {peak / 2**20:.1f} MB after 11,200 timer frames")
        assert peak - before < 16 * 1024 * 1024
        new = len(d.records()) - records_before
        assert new <= 2 * QUOTA + 2, f"{new} records for a flood"  # ten started, ten refused (a minute)
        assert not ha.closed, "the connection was dropped"
        assert "name" not in {k for r in d.records("timer") for k in r} and name not in d.said()
