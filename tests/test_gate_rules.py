"""The gate by itself, on its own clock: debouncing, fresh presses, one press per request."""

from __future__ import annotations

from guardd.config.settings import ConfirmConfig
from guardd.confirm.gate import Gate


CFG = ConfirmConfig(timeout_s=1.0, long_press_s=2.0, stuck_s=10.0, debounce_s=0.03)


def test_gate_absorbs_edges_closer_than_debounce():
    g = Gate(CFG)
    g.arm("r1", 0.0)
    assert g.edge(True, 0.100) is None
    assert g.edge(False, 0.110) is None  # a 10 ms blip
    assert g.advance(0.5) is None and not g.button_down
    d = g.advance(1.0)
    assert d is not None and (d.approved, d.reason) == (False, "timeout")


def test_gate_dates_a_press_from_the_first_edge_of_its_stable_run():
    # Bounces end at 0.995; that edge starts the stable run, before the 1.0 deadline: approved,
    # even though the debounce only settles at 1.025 (after the deadline).
    g = Gate(CFG)
    g.arm("r1", 0.0)
    for t, pressed in [(0.985, True), (0.990, False), (0.995, True)]:
        assert g.edge(pressed, t) is None
    assert g.advance(1.0) is None  # still settling: let it finish
    assert g.advance(1.05) is None and g.button_down and g.down_since == 0.995
    assert g.edge(False, 1.2) is None
    d = g.advance(1.3)
    assert d is not None and (d.request, d.approved, d.reason) == ("r1", True, "pressed")

    # Bounces that start before the deadline but whose stable run starts at it: too late.
    # (Dated from the first raw edge, 0.990, it would have been in time.)
    g = Gate(CFG)
    g.arm("r2", 0.0)
    assert g.edge(True, 0.990) is None
    assert g.edge(False, 0.995) is None
    decision = g.edge(True, 1.000)
    assert decision is not None and (decision.approved, decision.reason) == (False, "timeout")
    g.edge(False, 1.2)
    assert g.advance(1.3) is None


def test_gate_one_press_approves_one_request():
    g = Gate(CFG)
    g.arm("r1", 0.0)
    g.edge(True, 0.2)
    g.edge(False, 0.3)
    d = g.advance(0.4)
    assert d is not None and (d.request, d.approved) == ("r1", True)
    g.arm("r2", 0.4)  # the same press is over; it is not remembered
    assert g.advance(1.3) is None
    d = g.advance(1.4)
    assert d is not None and (d.request, d.approved, d.reason) == ("r2", False, "timeout")


def test_gate_press_before_arming_must_be_released_and_pressed_again():
    g = Gate(CFG)
    g.edge(True, -0.5)
    g.arm("r1", 0.0)
    g.edge(False, 0.2)
    assert g.advance(0.3) is None  # the release of an old press approves nothing
    g.edge(True, 0.4)
    g.edge(False, 0.5)
    d = g.advance(0.6)
    assert d is not None and (d.approved, d.reason) == (True, "pressed")


def test_gate_late_delivered_edge_from_before_arming_does_not_count():
    """Edges are stamped when they happen; one queued before arming but handed over after it is
    still a press from before the request asked."""
    g = Gate(CFG)
    g.arm("r1", 0.5)
    g.edge(True, 0.45)  # happened before arming, delivered after
    g.edge(False, 0.6)
    assert g.advance(0.7) is None
    d = g.advance(1.5)
    assert d is not None and (d.approved, d.reason) == (False, "timeout")


def test_gate_glitch_at_arming_does_not_swallow_the_next_real_press():
    g = Gate(CFG)
    g.edge(True, -0.005)  # a 10 ms blip straddling the arming
    g.arm("r1", 0.0)
    g.edge(False, 0.005)
    assert g.advance(0.2) is None
    g.edge(True, 0.3)
    g.edge(False, 0.4)
    d = g.advance(0.5)
    assert d is not None and (d.approved, d.reason) == (True, "pressed")


# -- a timer's ring: the press that silences it is the gate's idle press (guardd/timers.py) --------


def test_a_press_the_gate_calls_idle_approves_no_request_armed_while_it_is_held():
    """The press that silences a ring is one held_idle_since() names: begun with no request
    armed, and none since. A request armed while it is held must see it released first."""
    g = Gate(CFG)
    g.edge(True, 1.0)
    assert g.advance(1.05) is None and g.held_idle_since() == 1.0  # it silences the ring
    g.arm("r1", 1.2)
    assert g.held_idle_since() is None
    assert g.edge(False, 1.5) is None
    assert g.advance(1.6) is None and g.armed == "r1"  # released: it approved nothing
    g.edge(True, 1.7)
    g.edge(False, 1.8)
    d = g.advance(1.9)
    assert d is not None and (d.request, d.approved, d.reason) == ("r1", True, "pressed")  # a fresh one does


def test_a_press_that_approves_or_denies_a_request_is_never_the_idle_press():
    """So the press that approves a request never silences a ring, before or after its decision."""
    g = Gate(CFG)
    g.arm("r1", 0.0)
    g.edge(True, 0.2)
    assert g.advance(0.3) is None and g.held_idle_since() is None
    g.edge(False, 0.4)
    d = g.advance(0.5)
    assert d is not None and d.approved and g.held_idle_since() is None
    g.arm("r2", 0.6)
    g.edge(True, 0.7)
    d = g.advance(0.7 + CFG.long_press_s)  # held: it denies r2 while still down
    assert d is not None and (d.approved, d.reason) == (False, "long press")
    assert g.held_idle_since() is None  # still held, after the decision: it had its say
    g.edge(False, 2.8)
    g.edge(True, 3.0)  # the next press, with nothing asking: that one is idle (it silences a ring)
    assert g.advance(3.1) is None and g.held_idle_since() == 3.0
