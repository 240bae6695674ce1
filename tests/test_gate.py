"""Promise 1: nothing leaves without a press.

Every test drives the real pipeline (the core, the broker, the gate, the sender, the audit log on
real files with fdatasync) with a real gpiozero Button on MockFactory pins and an injected clock,
and checks three things: what a real HTTP server on loopback received (byte for byte), what the
audit log says (and in which order), and what the LED shows.

The same across a SIGKILL and a restart of `guardd run` is in test_restart.py; the gate's rules by
themselves are in test_gate_rules.py.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest


from harness import ME, T0, TIMEOUT_S, WAIT_S, Device, Inbox

from guardd.config.settings import Config, ConfirmConfig, DestinationConfig
from guardd.confirm.sender import Sender, SendResult
from guardd.device.panel import ButtonEdge, LedState
from guardd.errors import Refused


# -- 1. a press that began before the request asked -------------------------------------------------


def test_press_held_through_arming_approves_nothing(device, inbox):
    d = device()
    d.down(T0 - 1.0)  # the button goes down a second before the request exists
    s = d.submit(b"secret", at=T0)
    assert d.led is LedState.AWAITING
    assert s.replies[0]["status"] == "waiting"
    d.at(T0 + 5.0)
    d.up(T0 + 5.0)  # released well before the deadline, and never pressed again
    d.at(T0 + 5.2)
    assert d.led is LedState.AWAITING
    assert d.story(s.id) == ["request", "announce"]  # still asking: the release was not an approval
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    d.assert_ended(LedState.DENIED)
    inbox.assert_nothing_arrived()


def test_button_held_past_stuck_limit_denies_as_stuck(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, stuck_s=10.0))
    d.down(T0 - 1.0)
    s = d.submit(b"secret", at=T0)
    d.at(T0 + 9.9)
    assert d.led is LedState.AWAITING and d.story(s.id) == ["request", "announce"]
    d.at(T0 + 10.0)
    d.assert_denied(s, "stuck")
    d.up(T0 + 12.0)  # letting go afterwards changes nothing
    d.at(T0 + 12.5)
    inbox.assert_nothing_arrived()
    assert d.led is LedState.IDLE


def test_press_released_just_before_arming_approves_nothing(device, inbox):
    d = device()
    d.down(T0 - 0.5)
    d.up(T0 - 0.01)  # the release edge is 10 ms before the request arrives (inside the debounce)
    s = d.submit(b"secret", at=T0)
    assert d.led is LedState.AWAITING
    d.at(T0 + 0.5)
    assert d.story(s.id) == ["request", "announce"]
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


def test_glitch_just_before_arming_approves_nothing(device, inbox):
    d = device()
    d.down(T0 - 0.02)  # a 10 ms blip, too short to be a press, ending 10 ms before arming
    d.up(T0 - 0.01)
    s = d.submit(b"secret", at=T0)
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


# -- 3. timeouts, with an exclusive bound ---------------------------------------------------------


def test_no_press_times_out_and_nothing_leaves(device, inbox):
    d = device()
    s = d.submit(b"secret")
    d.at(T0 + TIMEOUT_S - 0.001)
    assert d.led is LedState.AWAITING and d.story(s.id) == ["request", "announce"]
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    d.assert_ended(LedState.DENIED)
    d.press(T0 + TIMEOUT_S + 1)  # too late: nothing is armed any more
    assert d.story(s.id) == ["request", "announce", "decision"]
    inbox.assert_nothing_arrived()


def test_press_starting_exactly_at_the_deadline_is_too_late(device, inbox):
    d = device()
    s = d.submit(b"secret")
    d.at(T0 + 10.0)  # the core was ticking; no tick lands on the deadline itself
    d.press(T0 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


def test_press_starting_50_ms_before_the_deadline_approves_even_if_released_after_it(device, inbox):
    d = device()
    s = d.submit(b"in time")
    d.down(T0 + TIMEOUT_S - 0.05)
    d.at(T0 + TIMEOUT_S)  # the deadline passes while the button is down
    d.at(T0 + TIMEOUT_S + 0.3)
    assert d.story(s.id) == ["request", "announce"]
    d.up(T0 + TIMEOUT_S + 0.5)
    d.at(T0 + TIMEOUT_S + 0.6)
    d.assert_approved_and_sent(s, b"in time")
    inbox.assert_received_exactly(b"in time")


def test_press_starting_during_debounce_window_at_deadline_approves(device, inbox):
    """The press starts 10 ms before the deadline and is still being debounced when a tick lands
    on the deadline: it started in time, so it is let finish."""
    d = device()
    s = d.submit(b"in time")
    d.down(T0 + TIMEOUT_S - 0.01)
    d.at(T0 + TIMEOUT_S)
    assert d.story(s.id) == ["request", "announce"]
    d.up(T0 + TIMEOUT_S + 0.2)
    d.at(T0 + TIMEOUT_S + 0.3)
    d.assert_approved_and_sent(s, b"in time")
    inbox.assert_received_exactly(b"in time")


# -- 4. bouncing contacts ---------------------------------------------------------------------------


def test_bouncing_contacts_approve_exactly_one_request(device, inbox):
    d = device()
    first = d.submit(b"first")
    second = d.submit(b"second")
    assert second.replies == [{"status": "queued", "id": second.id, "position": 1}]
    t = T0 + 1.0
    for i, pressed in enumerate([True, False, True, False, True]):  # five raw edges in 4 ms
        d.clock[0] = t + i * 0.001
        (d.pin.drive_low if pressed else d.pin.drive_high)()
    assert [e.pressed for e in d.edges] == [True, False, True, False, True]  # MockPin ignores bounce_time
    d._feed()
    d.up(t + 0.104)  # a clean release 100 ms after the last bounce
    d.at(t + 0.2)
    d.assert_approved_and_sent(first, b"first")
    assert d.led is LedState.AWAITING  # the second request now asks, and no press is left over
    d.at(t + 0.2 + TIMEOUT_S - 0.001)
    assert d.story(second.id) == ["request", "announce"]
    d.at(t + 0.2 + TIMEOUT_S)
    d.assert_denied(second, "timeout")
    inbox.assert_received_exactly(b"first")


# -- 5. one press per request -----------------------------------------------------------------------


def test_two_presses_approve_two_requests_in_order(device, inbox):
    d = device()
    a = d.submit(b"alpha")
    b = d.submit(b"bravo")
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(a, b"alpha")
    assert d.story(b.id) == ["request", "announce"] and d.led is LedState.AWAITING
    d.press(T0 + 2.0)
    d.assert_approved_and_sent(b, b"bravo")
    inbox.assert_received_exactly(b"alpha", b"bravo")
    assert [a_.headers["Content-Type"] for a_ in inbox.arrivals] == ["text/plain; charset=utf-8"] * 2
    d.assert_ended(LedState.SENT)
    assert LedState.SENDING in d.leds


def test_one_press_while_two_requests_wait_approves_only_the_first(device, inbox):
    d = device()
    a = d.submit(b"alpha")
    b = d.submit(b"bravo")
    d.press(T0 + 1.0)
    d.at(T0 + 1.0 + TIMEOUT_S + 1)
    d.assert_approved_and_sent(a, b"alpha")
    d.assert_denied(b, "timeout")
    inbox.assert_received_exactly(b"alpha")


# -- 6. long press ----------------------------------------------------------------------------------


def test_long_press_denies(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, long_press_s=2.0))
    s = d.submit(b"secret")
    d.down(T0 + 1.0)
    d.at(T0 + 2.9)
    assert d.story(s.id) == ["request", "announce"]
    d.at(T0 + 3.0)  # held for long_press_s: denied while still held
    d.assert_denied(s, "long press")
    d.up(T0 + 4.0)
    d.at(T0 + 4.1)
    inbox.assert_nothing_arrived()


def test_long_press_without_a_tick_in_between_denies(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, long_press_s=2.0))
    s = d.submit(b"secret")
    d.down(T0 + 1.0)
    d.up(T0 + 3.5)  # the core saw nothing between the two edges
    d.at(T0 + 3.6)
    d.assert_denied(s, "long press")
    inbox.assert_nothing_arrived()


# -- 7. the client goes away ------------------------------------------------------------------------


def test_client_disconnect_while_armed_cancels(device, inbox):
    d = device()
    s = d.submit(b"secret", client=7)
    queued = d.submit(b"queued", client=7)
    other = d.submit(b"other", client=8)
    d.core.cancel_client(7)
    for gone, story in ((s, ["request", "announce", "decision"]), (queued, ["request", "decision"])):
        assert d.story(gone.id) == story  # (the queued one was never armed, so never announced)
        assert (d.decision(gone.id)["decision"], d.decision(gone.id)["reason"]) == ("denied", "cancelled")
        assert f"{gone.id}.bin" not in d.spooled
    # The press afterwards belongs to the next client's request, never to the cancelled ones.
    assert d.led is LedState.AWAITING
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(other, b"other")
    inbox.assert_received_exactly(b"other")


def test_press_after_the_only_client_disconnected_sends_nothing(device, inbox):
    d = device()
    s = d.submit(b"secret", client=7)
    d.at(T0 + 1.0)
    d.core.cancel_client(7)
    assert d.story(s.id) == ["request", "announce", "decision"]
    assert d.decision(s.id)["reason"] == "cancelled"
    d.assert_ended(LedState.DENIED)
    d.press(T0 + 2.0)
    d.at(T0 + TIMEOUT_S + 5)
    inbox.assert_nothing_arrived()
    assert d.spooled == []


# -- 8. presence is never cached --------------------------------------------------------------------


def test_same_payload_resubmitted_after_approval_needs_a_new_press(device, inbox):
    d = device()
    first = d.submit(b"same bytes")
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(first, b"same bytes")
    again = d.submit(b"same bytes")
    assert again.request.sha256 == first.request.sha256 and again.id != first.id
    assert d.led is LedState.AWAITING
    d.at(d.now + TIMEOUT_S)
    d.assert_denied(again, "timeout")
    inbox.assert_received_exactly(b"same bytes")


# -- 9. the approved bytes, and only those ----------------------------------------------------------


def test_payload_changed_after_approval_is_not_sent(device, inbox):
    results: list[SendResult] = []
    sender = Sender(results.append, threaded=True)
    try:
        d = device(sender=sender)
        s = d.submit(b"what the owner approved")
        d.press(T0 + 1.0)
        assert d.story(s.id) == ["request", "announce", "decision", "send"]
        assert d.led is LedState.SENDING
        s.request.spool.write_bytes(b"something else entirely")  # the job waits in the queue
        sender.start()
        deadline = time.monotonic() + WAIT_S
        while not results and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(results) == 1, "the sender gave no result"
        d.core.take(results[0])
    finally:
        sender.stop()
    inbox.assert_nothing_arrived()
    assert d.story(s.id) == ["request", "announce", "decision", "send", "sent"]
    [sent] = d.records("sent", s.id)
    assert sent["delivered"] == 0 and sent["status"] == 0 and sent["bytes"] == 0
    assert "payload changed" in sent["error"]
    assert s.final["status"] == "failed" and "payload changed" in s.final["error"]
    assert d.spooled == []
    d.assert_ended(LedState.FAILED)


def test_sent_bytes_are_copied_at_submission(device, inbox):
    """The daemon keeps its own copy: changing the caller's buffer after submit changes nothing."""
    d = device()
    payload = bytearray(b"original")
    s = d.submit(payload)  # type: ignore[arg-type]
    payload[:] = b"tampered"
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(s, b"original")
    inbox.assert_received_exactly(b"original")


def test_a_destination_answering_a_byte_a_second_fails_the_send_at_its_timeout(tmp_path):
    """timeout_s bounds the whole exchange, not each read: the send ends as failed at 2 s, the
    log says it was not delivered and why, and the request is over (nothing retried)."""
    slow = Inbox("trickle")
    with contextlib.ExitStack() as stack:
        stack.callback(slow.close)
        config = Config(state_dir=str(tmp_path / "state"), confirm=ConfirmConfig(timeout_s=TIMEOUT_S),
                        destinations=(DestinationConfig(url=slow.url, name="inbox", timeout_s=2.0),))
        d = Device(config, slow, stack)
        s = d.submit(b"to a slow destination")
        started = time.monotonic()
        d.press(T0 + 1.0)  # the sender runs inline: the press returns when the send has ended
        waited = time.monotonic() - started
        assert 2.0 <= waited < 2.5, f"the send took {waited:.2f} s"
        assert d.story(s.id) == ["request", "announce", "decision", "send", "sent"]
        [sent] = d.records("sent", s.id)
        error = ("timed out after 2 s reading the answer (HTTP 200) "
                 "(destinations.inbox.timeout_s bounds the whole send)")
        assert (sent["delivered"], sent["status"], sent["error"]) == (0, 0, error)
        assert s.final["status"] == "failed" and s.final["error"] == error
        assert slow.connections == 1 and d.spooled == []
        d.assert_ended(LedState.FAILED)


# -- 10-12. refused before anything is armed --------------------------------------------------------


def test_unknown_destination_is_refused_and_nothing_is_armed(device, inbox):
    d = device()
    with pytest.raises(Refused) as exc:
        d.submit(b"secret", to="https://evil.example/steal")
    assert exc.value.code == "unknown_destination"
    [refused] = d.records("refused")
    assert refused["code"] == "unknown_destination" and refused["bytes"] == 6
    assert d.records("request") == []
    assert d.core.broker.armed is None and not d.core.broker.busy
    assert d.led is LedState.IDLE
    d.press(T0 + 1.0)
    inbox.assert_nothing_arrived()
    assert d.spooled == []


def test_full_queue_refuses_busy(device, inbox):
    d = device(ConfirmConfig(timeout_s=TIMEOUT_S, queue=1))
    armed = d.submit(b"one")
    waiting = d.submit(b"two")
    with pytest.raises(Refused) as exc:
        d.submit(b"three")
    assert exc.value.code == "busy"
    assert [r["code"] for r in d.records("refused")] == ["busy"]
    assert len(d.records("request")) == 2
    assert d.spooled == [f"{armed.id}.bin", f"{waiting.id}.bin"]
    d.at(T0 + TIMEOUT_S)  # the second is armed only now, and gets its own full timeout
    d.assert_denied(armed, "timeout")
    assert d.story(waiting.id) == ["request", "announce"]
    d.at(T0 + 2 * TIMEOUT_S)
    d.assert_denied(waiting, "timeout")
    inbox.assert_nothing_arrived()


def test_oversized_payload_is_refused(device, inbox):
    d = device(max_bytes=100)
    ok = d.submit(b"x" * 100)
    with pytest.raises(Refused) as exc:
        d.submit(b"x" * 101)
    assert exc.value.code == "too_large"
    assert [r["code"] for r in d.records("refused")] == ["too_large"]
    assert [r["id"] for r in d.records("request")] == [ok.id]
    d.at(T0 + TIMEOUT_S)
    d.assert_denied(ok, "timeout")
    inbox.assert_nothing_arrived()


# -- 13. the log cannot be written ------------------------------------------------------------------


FULL = "cannot write the log: No space left on device"


def test_log_failure_at_submission_refuses_and_arms_nothing(device, inbox):
    d = device()
    d.journal.failing = FULL
    with pytest.raises(Refused) as exc:
        d.submit(b"secret")
    assert exc.value.code == "log_unavailable"
    d.journal.heal()
    assert d.core.broker.armed is None and not d.core.broker.busy
    assert d.spooled == []
    assert d.led is LedState.FAULT
    assert d.records("request") == []
    d.press(T0 + 1.0)
    inbox.assert_nothing_arrived()


def test_log_failure_before_the_decision_denies(device, inbox):
    d = device()
    s = d.submit(b"secret")
    assert d.led is LedState.AWAITING
    d.journal.failing = FULL
    d.press(T0 + 1.0)
    d.journal.heal()
    assert s.final == {"status": "denied", "id": s.id, "reason": "log unavailable"}
    assert [e for e in d.events if e["event"] == "decision"][-1]["reason"] == "log unavailable"
    assert d.story(s.id) == ["request", "announce"]  # neither an approval nor a send was ever written
    assert d.led is LedState.FAULT
    assert d.spooled == []
    inbox.assert_nothing_arrived()


def test_log_failure_before_the_send_record_denies(device, inbox):
    """The approval is durable but the `send` record is not: nothing may leave."""
    d = device()
    s = d.submit(b"secret")
    d.journal.fail_after(1)  # the decision is written, then the log fails
    d.press(T0 + 1.0)
    d.journal.heal()
    assert s.final == {"status": "denied", "id": s.id, "reason": "log unavailable"}
    assert "send" not in d.story(s.id)
    assert d.led is LedState.FAULT
    inbox.assert_nothing_arrived()


# -- 15. failures in the button and reply paths -----------------------------------------------------


def test_failing_button_callback_approves_nothing_and_the_core_keeps_working(device, inbox):
    d = device()
    s = d.submit(b"secret")
    calls = [0]

    def flaky(edge: ButtonEdge) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("the inbox refused the edge")
        d.edges.append(edge)

    d.on_edge = flaky
    with pytest.raises(RuntimeError):
        d.down(T0 + 1.0)  # MockPin runs callbacks synchronously, so the failure surfaces here
    d.up(T0 + 1.1)  # the release arrives without its press
    d.at(T0 + 1.2)
    assert d.story(s.id) == ["request", "announce"], "a release without a press approved"
    inbox.assert_nothing_arrived()
    d.press(T0 + 2.0)  # the next whole press works
    d.assert_approved_and_sent(s, b"secret")
    inbox.assert_received_exactly(b"secret")


def test_raising_reply_does_not_stop_the_approval_or_send_twice(device, inbox):
    d = device()
    replies: list[dict[str, Any]] = []

    def broken_stream(message: dict[str, Any]) -> None:
        replies.append(message)
        raise BrokenPipeError("the client's stream is gone")

    request = d.core.submit("message", "inbox", b"secret", ME, reply=broken_stream, client=1)
    assert d.led is LedState.AWAITING
    d.at(T0 + 1.5)  # a once-a-second "still waiting" reply, which raises too
    d.at(T0 + 2.6)
    d.press(T0 + 3.0)
    d.at(T0 + 10.0)
    assert [r["type"] for r in d.records(id_=request.id)] == ["request", "announce", "decision", "send", "sent"]
    assert d.decision(request.id)["decision"] == "approved"
    inbox.assert_received_exactly(b"secret")
    assert [m["status"] for m in replies][-2:] == ["approved", "sent"]
    assert d.led is LedState.IDLE


def test_press_with_nothing_armed_does_nothing_and_is_not_remembered(device, inbox):
    d = device()
    before = d.records()
    d.press(T0 + 1.0)
    d.down(T0 + 2.0)
    d.up(T0 + 2.1)
    assert d.records() == before  # no record, no request, nothing spooled
    assert d.led is LedState.IDLE
    s = d.submit(b"secret", at=T0 + 2.11)  # 10 ms after the last press ended
    d.at(T0 + 2.2)
    d.at(T0 + 2.11 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()
