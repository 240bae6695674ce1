"""Home Assistant's timers on the core's thread (guardd/timers.py): the real core with its gate,
its log and its LED on gpiozero's MockFactory pins, on a clock the test moves; Home Assistant's
timer frames made by the `wyoming` package's own classes and taken as the link hands them over
(PeerFrame), through the satellite's mapping. The speaker is the harness's InstantSpeaker, which
notes when a burst of the ring was asked for (the bursts themselves play through ALSA in
test_ring.py, and end to end in test_satellite_timers.py).

The promises: a finished timer rings (a burst every RING_EVERY_S, the LED's double flash) until
a press, Home Assistant's cancel, or RING_S; a muted guardd still rings; a request that asks
outranks the ring (no burst, the LED asks) and the ring goes on after it; the press that
silences a ring approves nothing, and the press that approves a request silences nothing;
every change is logged (rationed), the name never; a hostile peer grows neither memory nor the log.
"""

from __future__ import annotations

import json

import pytest
from wyoming.event import Event
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated

from harness import T0
from guardd.device.panel import LedState
from guardd.timers import LATE_S, MAX_SECONDS, MAX_TIMERS, RING_EVERY_S, RING_S
from guardd.wyoming.link import PeerFrame
from guardd.homeassistant.ration import QUOTA

HA = "127.0.0.1:40000"


def told(dev, *events: Event) -> None:
    """Home Assistant's frames, as the link hands them to the core."""
    for event in events:
        dev.core.take(PeerFrame(HA, event, None, 1))
    dev.p.inputs.drain(dev.core)


def run(dev, until: float, step: float = 0.1) -> None:
    """The core's loop ticking every `step` until `until`, as `guardd run` does."""
    while dev.now + step <= until + 1e-9:
        dev.at(round(dev.now + step, 6))


def timer_records(dev, event: str | None = None) -> list[dict]:
    return [r for r in dev.records("timer") if event is None or r["event"] == event]


def ring_started(dev, timer_id: str = "01JTIMER0000000000000000AA", seconds: int = 3) -> None:
    told(dev, TimerStarted(id=timer_id, total_seconds=seconds, start_seconds=seconds).event())
    dev.at(dev.now + seconds)
    told(dev, TimerFinished(id=timer_id).event())
    assert dev.core.timers.ringing


def test_a_finished_timer_rings_a_burst_every_two_seconds_and_the_led_double_flashes_until_a_press(device):
    dev = device()
    told(dev, TimerStarted(id="01JTIMER0000000000000000AA", total_seconds=3, start_seconds=3).event())
    assert dev.led is LedState.IDLE and not dev.speaker.rings
    dev.at(T0 + 3.0)
    told(dev, TimerFinished(id="01JTIMER0000000000000000AA").event())
    assert dev.led is LedState.RINGING
    run(dev, T0 + 9.0)
    assert dev.speaker.rings == pytest.approx([T0 + 3.1, T0 + 5.1, T0 + 7.1])  # the next tick, then every 2 s
    dev.press(T0 + 9.0)
    assert not dev.core.timers.ringing and dev.led is LedState.IDLE and dev.speaker.rings_ended == 1
    run(dev, T0 + 20.0)
    assert len(dev.speaker.rings) == 3  # the press silenced it as it ended (9.1): never again
    started, finished, silenced = timer_records(dev)
    assert (started["event"], started["timer"], started["seconds"], started["name_chars"]) == \
        ("started", "01JTIMER0000000000000000AA", 3, 0)
    assert (finished["event"], finished["by"], finished["rings"]) == ("finished", "home_assistant", 1)
    assert (silenced["event"], silenced["reason"], silenced["timers"]) == ("silenced", "press", 1)
    assert silenced["pressed_ms"] == round((T0 + 9.0) * 1000) and 6000 <= silenced["rang_ms"] <= 6100
    assert [e["what"] for e in dev.events if e["event"] == "timer"] == ["started", "finished", "silenced"]
    assert dev.records("decision") == [] and dev.records("mute") == []  # the press did nothing else


def test_an_unanswered_ring_stops_by_itself_after_five_minutes(device):
    dev = device()
    ring_started(dev)
    began = dev.now
    run(dev, began + RING_S - 0.2, step=1.0)
    assert dev.core.timers.ringing and dev.led is LedState.RINGING
    assert len(dev.speaker.rings) == pytest.approx(RING_S / RING_EVERY_S, abs=1)
    dev.at(began + RING_S)
    assert not dev.core.timers.ringing and dev.led is LedState.IDLE
    [silenced] = timer_records(dev, "silenced")
    assert silenced["reason"] == "timeout" and silenced["rang_ms"] == RING_S * 1000


def test_home_assistant_cancelling_the_ringing_timer_stops_the_ring_and_cancelling_another_does_not(device):
    dev = device()
    told(dev, TimerStarted(id="pasta", total_seconds=600).event())
    ring_started(dev, "eggs")
    told(dev, TimerCancelled(id="pasta").event())
    assert dev.core.timers.ringing and dev.core.timers.held == {}
    told(dev, TimerCancelled(id="eggs").event())
    assert not dev.core.timers.ringing and dev.led is LedState.IDLE
    assert [(r["event"], r.get("timer"), r.get("reason")) for r in timer_records(dev)][-3:] == [
        ("cancelled", "pasta", None), ("cancelled", "eggs", None), ("silenced", None, "cancelled")]


def test_two_timers_that_finish_ring_as_one_ring_until_both_are_cancelled_or_one_press(device):
    dev = device()
    ring_started(dev, "eggs")
    told(dev, TimerFinished(id="toast").event())  # unknown to guardd (it restarted since): it rings too
    assert dev.core.timers.ring.timers == ["eggs", "toast"]
    told(dev, TimerCancelled(id="eggs").event())
    assert dev.core.timers.ringing
    dev.press(dev.now + 1.0)
    assert not dev.core.timers.ringing
    assert timer_records(dev, "silenced")[0]["timers"] == 1


def test_a_timer_home_assistant_paused_never_rings_by_guardds_clock_and_added_time_moves_its_end(device):
    dev = device()
    told(dev, TimerStarted(id="pasta", total_seconds=10).event())
    dev.at(T0 + 4)
    told(dev, TimerUpdated(id="pasta", is_active=False, total_seconds=6).event())
    run(dev, T0 + 30, step=1.0)
    assert not dev.core.timers.ringing and dev.core.timers.status(dev.now)["held"] == \
        [{"timer": "pasta", "left_s": 6, "active": False}]
    told(dev, TimerUpdated(id="pasta", is_active=True, total_seconds=6).event())  # going again
    told(dev, TimerUpdated(id="pasta", is_active=True, total_seconds=66).event())  # "add a minute"
    run(dev, T0 + 30 + 66 + LATE_S - 1, step=1.0)
    assert not dev.core.timers.ringing
    run(dev, T0 + 30 + 66 + LATE_S, step=1.0)
    assert dev.core.timers.ringing
    assert [(r["event"], r.get("seconds"), r.get("active")) for r in timer_records(dev)][1:3] == [
        ("updated", 6, 0), ("updated", 6, 1)]


def test_a_timer_rings_by_guardds_clock_when_home_assistant_never_says_it_finished_and_only_once(device):
    """Home Assistant drops timer events while its link is down (its mute switch on, say)."""
    dev = device()
    told(dev, TimerStarted(id="pasta", total_seconds=3).event())
    run(dev, T0 + 3 + LATE_S - 0.2)
    assert not dev.core.timers.ringing
    run(dev, T0 + 3 + LATE_S)
    assert dev.core.timers.ringing
    dev.press(dev.now + 1)
    told(dev, TimerFinished(id="pasta").event())  # its word, late: it rang already
    assert not dev.core.timers.ringing
    assert [(r["event"], r.get("by"), r.get("rings")) for r in timer_records(dev, "finished")] == [
        ("finished", "clock", 1), ("finished", "home_assistant", 0)]


def test_a_ringing_timer_home_assistant_runs_again_stops_ringing_and_rings_at_its_new_end(device):
    dev = device()
    ring_started(dev, "eggs")
    told(dev, TimerUpdated(id="eggs", is_active=True, total_seconds=60).event())  # more time
    assert not dev.core.timers.ringing and timer_records(dev, "silenced")[0]["reason"] == "running again"
    dev.at(dev.now + 60)
    told(dev, TimerFinished(id="eggs").event())
    assert dev.core.timers.ringing


def test_a_muted_guardd_still_rings_and_the_microphone_stays_closed(device):
    """The mute closes the microphone; the ring is guardd speaking, which the owner asked for."""
    dev = device()
    dev.core.mute("test")
    ring_started(dev)
    assert dev.core.muted and dev.led is LedState.RINGING
    run(dev, dev.now + 2.0)
    assert dev.speaker.rings
    dev.press(dev.now + 0.5)
    assert dev.led is LedState.MUTED and dev.core.muted  # a short press silences, and unmutes nothing


def test_home_assistants_pause_still_rings(device):
    dev = device()
    dev.core.take(PeerFrame(HA, Event("pause-satellite"), None, 1))
    ring_started(dev)
    assert dev.core.switch.paused and dev.led is LedState.RINGING


def test_a_request_that_asks_while_it_rings_outranks_it_and_the_ring_goes_on_after(device, inbox):
    dev = device()
    ring_started(dev)
    run(dev, dev.now + 1.0)
    bursts = len(dev.speaker.rings)
    asked = dev.submit(b"dinner is ready")
    assert dev.led is LedState.AWAITING
    run(dev, dev.now + 10.0)
    assert len(dev.speaker.rings) == bursts  # no burst while the request asks
    dev.press(dev.now)  # the press approves the request: it began while the request asked
    dev.assert_approved_and_sent(asked, b"dinner is ready")
    assert dev.core.timers.ringing and timer_records(dev, "silenced") == []
    assert dev.led is LedState.SENT  # how it ended, for 1.5 s, over the ring
    run(dev, dev.now + 1.5)
    assert dev.led is LedState.RINGING and len(dev.speaker.rings) > bursts  # the ring goes on
    dev.press(dev.now + 0.5)
    [silenced] = timer_records(dev, "silenced")
    assert silenced["reason"] == "press" and silenced["seq"] > dev.decision(asked.id)["seq"]


def test_the_press_that_silences_a_ring_approves_no_request_armed_while_it_is_held(device, inbox):
    dev = device()
    ring_started(dev)
    dev.down(dev.now + 1.0)
    dev.at(dev.now + 0.1)
    assert not dev.core.timers.ringing  # silenced as the press began
    asked = dev.submit(b"move the savings", at=dev.now + 0.5)  # armed while that press is held
    dev.up(dev.now + 0.5)
    run(dev, dev.now + 1.0)
    assert dev.records("decision") == [] and inbox.bodies == []  # that press approved nothing
    dev.press(dev.now + 0.5)  # a fresh press, after the request asked, does
    dev.assert_approved_and_sent(asked, b"move the savings")


def test_a_press_that_began_before_the_ring_does_not_silence_it(device):
    dev = device()
    told(dev, TimerStarted(id="eggs", total_seconds=3).event())
    dev.down(T0 + 2.0)
    dev.at(T0 + 3.0)
    told(dev, TimerFinished(id="eggs").event())
    dev.up(T0 + 3.5)
    dev.at(T0 + 3.6)
    assert dev.core.timers.ringing  # that press was not for it
    dev.press(T0 + 4.0)
    assert not dev.core.timers.ringing


def test_a_long_press_while_it_rings_silences_it_at_once_and_then_mutes_as_ever(device):
    dev = device()
    ring_started(dev)
    dev.down(dev.now + 1.0)
    dev.at(dev.now + 0.1)
    assert not dev.core.timers.ringing and not dev.core.muted
    dev.at(dev.now + 3.0)
    assert dev.core.muted  # the owner held it for 3 s: the long press mutes, as it always does
    dev.up(dev.now + 0.1)


def test_no_burst_plays_while_a_request_waits_for_its_announcement(device):
    """Home Assistant's finish comes while a request asks: it rings only once the request is decided."""
    dev = device()
    asked = dev.submit(b"hello")
    told(dev, TimerFinished(id="eggs").event())
    run(dev, dev.now + 5.0)
    assert dev.core.timers.ringing and dev.speaker.rings == [] and dev.led is LedState.AWAITING
    dev.press(dev.now)
    dev.assert_approved_and_sent(asked, b"hello")
    run(dev, dev.now + 1.0)
    assert dev.speaker.rings


def test_what_cannot_be_logged_does_not_ring(device):
    dev = device()
    dev.journal.failing = "cannot write the log: Input/output error"
    told(dev, TimerFinished(id="eggs").event())
    assert not dev.core.timers.ringing and "log" in dev.core.faults


def test_the_timers_name_is_never_logged_only_its_length(device):
    dev = device()
    name = "send the savings to the bank"
    told(dev, TimerStarted(id="t1", total_seconds=60, name=name).event())
    [started] = timer_records(dev)
    assert started["name_chars"] == len(name)
    log_text = "".join(p.read_text() for p in dev.log_dir.glob("segment-*.jsonl"))
    assert "savings" not in log_text and "bank" not in log_text
    assert "savings" not in json.dumps(dev.events) and "savings" not in json.dumps(dev.core.tell.status())


# -- a hostile peer ---------------------------------------------------------------------------------


def test_ten_thousand_timers_with_fresh_ids_hold_sixteen_and_log_a_ration(device):
    dev = device()
    before = len(dev.records())
    for i in range(10_000):
        told(dev, TimerStarted(id=f"flood{i}", total_seconds=3600, name="x" * 10_000).event())
    timers = dev.core.timers
    assert len(timers.held) == MAX_TIMERS and timers.dropped == 10_000 - MAX_TIMERS
    assert list(timers.held)[-1] == "flood9999"  # the newest is held; the least recently told went
    assert len(dev.records()) - before == QUOTA  # ten a minute; the rest counted into the next one
    run(dev, dev.now + 61, step=5.0)
    told(dev, TimerStarted(id="real", total_seconds=60).event())
    last = timer_records(dev, "started")[-1]
    assert last["timer"] == "real" and last["more"] == 10_000 - QUOTA


def test_ten_thousand_finished_timers_make_one_ring_and_a_ration_of_records(device):
    dev = device()
    for i in range(10_000):
        told(dev, TimerFinished(id=f"flood{i}").event())
    ring = dev.core.timers.ring
    assert ring is not None and len(ring.timers) <= MAX_TIMERS
    assert len(timer_records(dev)) == QUOTA
    dev.press(dev.now + 1.0)
    assert not dev.core.timers.ringing


@pytest.mark.parametrize("data, why", [
    ({"id": "t1", "total_seconds": -5}, "seconds"),
    ({"id": "t1", "total_seconds": MAX_SECONDS + 1}, "seconds"),
    ({"id": "t1", "total_seconds": 10 ** 400}, "seconds"),
    ({"id": "t1", "total_seconds": 2.5}, "seconds"),
    ({"id": "t1", "total_seconds": True}, "seconds"),
    ({"id": "t1", "total_seconds": "60"}, "seconds"),
    ({"id": "t1"}, "seconds"),
    ({"id": "x" * 65, "total_seconds": 60}, "an id"),
    ({"id": "two words", "total_seconds": 60}, "an id"),
    ({"id": "", "total_seconds": 60}, "an id"),
    ({"id": 7, "total_seconds": 60}, "an id"),
    ({"total_seconds": 60}, "an id"),
])
def test_a_timer_frame_that_breaks_a_bound_is_refused_and_counted(device, data, why):
    dev = device()
    told(dev, Event("timer-started", data))
    assert dev.core.timers.held == {} and not dev.core.timers.ringing
    [refused] = timer_records(dev)
    assert refused["event"] == "refused" and refused["kind"] == "timer-started" and refused["reason"].startswith(why)
    assert sum(dev.core.timers.refused.values()) == 1
    told(dev, Event("timer-finished", {k: v for k, v in data.items() if k == "id"}))
    assert dev.core.timers.ringing is (why == "seconds" and "id" in data)
