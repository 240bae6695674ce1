"""Promise 2: the LED tells the truth. Each state has its own pattern, checked on the pin itself.

The real core drives a real gpiozero LED on MockFactory pins (the audio, the gate, the log and
the sender are all real; time is an injected clock, so a request never times out while we
watch). For each state the test asserts the panel's LedState and then moves the clock through
the pattern, change by change, as the daemon's blink thread does on real time, reading the pin
at each step: the on and off durations are measured on the pin, exactly, not assumed. One test
runs the blink thread itself on real time.

    idle               dark          listening for the wake word, nothing kept
    recording          solid         audio after a wake word is being kept
    awaiting approval  blink 0.5/0.5 a request asks for a press
    sending            blink 0.15/0.15
    muted              blip 0.1/2.9  the microphone is closed
    fault              flicker 0.05/0.05

How a request ended has a pattern of its own, shown for 1.5 s when nothing else is going on,
then the true state again:

    approved           pulses 0.3/0.1
    denied             blips 0.1/0.6
    sent               long pulses 0.6/0.15
    failed             stutter 0.05/0.25

An ending never hides anything more important: the slow blink of the next request asking, the
quick blink of a send, the solid light of a recording, a fault. The tests below pin that down too.

A timer of Home Assistant's that rings has a rhythm of its own, under everything that concerns
a request or the microphone and over idle, muted and paused:

    ringing            double flash 0.1/0.1/0.1/0.7, once a second
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from gpiozero.pins.mock import MockFactory
from harness import ME, WAIT_S, InstantSpeaker, WyomingFrames

from guardd.listen.microphone import read_wav_frames
from guardd.config.settings import AfterWakeConfig, Config, ConfirmConfig, DestinationConfig
from guardd.config.settings import ButtonConfig, LedConfig
from guardd.device.panel import LedState, Panel
from guardd.pipeline import open_pipeline
from guardd.confirm.sender import Sender, SendResult
from guardd.wyoming.link import PeerFrame
from wyoming.timer import TimerFinished



class Speaker:
    """The core with its LED on a mock pin. Sends wait in a sender that is started on demand,
    so `sending` lasts as long as the test looks at it."""

    def __init__(self, config: Config, stack: contextlib.ExitStack) -> None:
        self.t = [100.0]
        self.shown: list[LedState] = []
        self.results: list[SendResult] = []
        self.sender = Sender(self.results.append, threaded=True)
        stack.callback(self.sender.stop)
        self.edges: list[Any] = []
        speaker = InstantSpeaker(lambda: self.t[0])
        self.sounds = speaker
        p = stack.enter_context(open_pipeline(
            config, pin_factory=MockFactory(), clock=lambda: self.t[0], on_edge=self.edges.append,
            emit=lambda e: None, sender=self.sender, speaker=speaker, on_show=self.shown.append,
            blink_thread=False, peer=WyomingFrames()))  # the test moves the clock through the pattern itself
        speaker.report = p.inputs.append
        self.p, self.core, self.panel = p, p.core, p.panel
        self.led_pin = p.panel.led.pin
        self.button_pin = p.panel.button.pin
        self.core.start(mode="test")

    @property
    def state(self) -> LedState | None:
        return self.panel.state

    def at(self, t: float) -> None:
        self.t[0] = t
        self.core.tick()

    def press(self, t: float) -> None:
        self.t[0] = t
        self.button_pin.drive_low()
        self.t[0] = t + 0.1
        self.button_pin.drive_high()
        for edge in self.edges:
            self.core.take(edge)
        self.edges.clear()
        self.at(t + 0.2)

    def submit(self, payload: bytes = b"hello") -> None:
        self.core.submit("message", "inbox", payload, ME, client=1)
        self.p.inputs.drain(self.core)  # the speaker's news: the request is announced

    def finish_sending(self) -> None:
        self.sender.start()
        deadline = time.monotonic() + WAIT_S
        while not self.results and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.results, "the sender gave no result"
        self.core.take(self.results.pop(0))

    def listen_until(self, wav: Path, state: LedState) -> None:
        for frame in read_wav_frames(wav):
            self.core.on_audio(frame)
            self.p.inputs.drain(self.core)  # an upload asked for: the speaker's news of it
            self.t[0] = 100.0 + self.core.listener.audio_t
            if self.state is state:
                return
        raise AssertionError(f"the LED never showed {state.name}")


@pytest.fixture
def speaker(tmp_path: Path, inbox) -> Iterator[Speaker]:
    with contextlib.ExitStack() as stack:
        config = Config(state_dir=str(tmp_path / "state"),
                        destinations=(DestinationConfig(url=inbox.url, name="inbox"),),
                        after_wake=AfterWakeConfig(upload_to="inbox"),
                        confirm=ConfirmConfig(timeout_s=30.0))
        yield Speaker(config, stack)


# -- watching the pin on the injected clock ----------------------------------------------------


def trace(speaker: Speaker, seconds: float) -> list[tuple[float, bool]]:
    """The LED pin over the next `seconds` of the clock: (seconds from now, lit) at the start and
    at each change. The clock is moved from change to change, as the blink thread sleeps."""
    pin, start = speaker.led_pin, speaker.t[0]
    speaker.panel.update()
    changes = [(0.0, bool(pin.state))]
    while True:
        left = speaker.panel.update()
        if bool(pin.state) is not changes[-1][1]:
            changes.append((speaker.t[0] - start, bool(pin.state)))
        if math.isinf(left) or speaker.t[0] + left - start > seconds:
            return changes
        speaker.t[0] += left + 1e-9  # just past the change


def assert_steady(speaker: Speaker, lit: bool, seconds: float = 10.0) -> None:
    changes = trace(speaker, seconds)
    assert changes == [(0.0, lit)], f"the LED changed: {changes}"
    assert math.isinf(speaker.panel.update())  # and it waits for the next state, not a timer


def assert_blinks(speaker: Speaker, on_s: float, off_s: float, cycles: int = 3) -> None:
    changes = trace(speaker, cycles * (on_s + off_s))
    stretches = {True: [], False: []}
    for (t0, lit), (t1, _) in zip(changes[1:], changes[2:]):  # the first began before we looked
        stretches[lit].append(t1 - t0)
    for lit, want in ((True, on_s), (False, off_s)):
        got = stretches[lit]
        assert len(got) >= cycles - 1, f"{len(got)} complete {'lit' if lit else 'dark'} stretches"
        assert all(abs(g - want) < 1e-6 for g in got), f"{'lit' if lit else 'dark'} for {got}, expected {want} s"


# -- one test per pattern ---------------------------------------------------------------------------


def test_each_state_has_its_own_pattern():
    """OFF (guardd not running) is as dark as IDLE: a person sees no difference, only the
    simulation's words do."""
    patterns = {s: s.steps for s in LedState if s is not LedState.OFF}
    assert len(set(patterns.values())) == len(patterns) == 13
    assert LedState.OFF.steps == (0.0, 1.0)
    assert patterns == {
        LedState.IDLE: (0.0, 1.0),
        LedState.RECORDING: (1.0, 0.0),
        LedState.AWAITING: (0.5, 0.5),
        LedState.SENDING: (0.15, 0.15),
        LedState.MUTED: (0.1, 2.9),
        LedState.FAULT: (0.05, 0.05),
        LedState.APPROVED: (0.3, 0.1),
        LedState.DENIED: (0.1, 0.6),
        LedState.SENT: (0.6, 0.15),
        LedState.FAILED: (0.05, 0.25),
        LedState.PAUSED: (0.1, 1.4),
        LedState.NOT_UNDERSTOOD: (1.0, 0.5),
        LedState.RINGING: (0.1, 0.1, 0.1, 0.7),
    }


def test_idle_is_dark_and_steady(speaker):
    assert speaker.state is LedState.IDLE
    assert_steady(speaker, lit=False)


def test_recording_is_solid_while_audio_after_the_wake_word_is_kept(speaker, manifest):
    speaker.listen_until(manifest["dir"] / manifest["positives"][0]["file"], LedState.RECORDING)
    assert speaker.core.recording  # audio is being kept right now
    assert_steady(speaker, lit=True)


def test_awaiting_approval_blinks_half_a_second_on_half_off(speaker):
    speaker.submit()
    assert speaker.state is LedState.AWAITING
    assert_blinks(speaker, 0.5, 0.5)


def test_sending_blinks_quickly(speaker):
    speaker.submit()
    speaker.press(101.0)
    assert speaker.state is LedState.SENDING
    assert_blinks(speaker, 0.15, 0.15)


def test_muted_is_a_short_blip_every_three_seconds(speaker):
    speaker.core.mute("test")
    assert speaker.state is LedState.MUTED
    assert_blinks(speaker, 0.1, 2.9)


def test_fault_flickers_and_clears_back_to_dark(speaker):
    speaker.core.report_fault("audio", "the microphone stopped delivering audio")
    assert speaker.state is LedState.FAULT
    assert_blinks(speaker, 0.05, 0.05)
    speaker.core.clear_fault("audio")
    assert speaker.state is LedState.IDLE
    assert_steady(speaker, lit=False)


# -- after a decision: how it ended, for 1.5 s, then what is true next --------------------------


def assert_ends_with(speaker: Speaker, ending: LedState, on_s: float, off_s: float) -> None:
    """`ending` blinks its own pattern until 1.5 s after the request ended, then the LED is dark."""
    ended = speaker.t[0]
    assert speaker.state is ending
    changes = trace(speaker, 1.5 - 1e-6)
    lit = [t1 - t0 for (t0, on), (t1, _) in zip(changes, changes[1:]) if on]
    dark = [t1 - t0 for (t0, on), (t1, _) in zip(changes, changes[1:]) if not on]
    assert lit and all(abs(d - on_s) < 1e-6 for d in lit), lit
    assert all(abs(d - off_s) < 1e-6 for d in dark[:-1] or dark), dark
    speaker.at(ended + 1.5)
    assert speaker.state is LedState.IDLE
    assert_steady(speaker, lit=False)


def test_after_a_send_the_led_says_sent_then_goes_dark(speaker, inbox):
    speaker.submit(b"sent")
    speaker.press(101.0)
    speaker.finish_sending()
    assert inbox.bodies == [b"sent"]
    assert_ends_with(speaker, LedState.SENT, 0.6, 0.15)


def test_after_a_failed_send_the_led_stutters_then_goes_dark(speaker, inbox):
    inbox.close()  # nobody listens any more: the send is refused
    speaker.submit(b"lost")
    speaker.press(101.0)
    speaker.finish_sending()
    assert_ends_with(speaker, LedState.FAILED, 0.05, 0.25)


def test_after_a_denial_the_led_blips_then_goes_dark(speaker, inbox):
    speaker.submit(b"never")
    speaker.at(100.0 + 30.0)  # timed out
    assert_ends_with(speaker, LedState.DENIED, 0.1, 0.6)
    assert inbox.bodies == []


def test_an_approval_shows_while_nothing_else_does_and_sending_outranks_it(speaker):
    speaker.submit(b"approved")
    speaker.press(101.0)
    assert speaker.state is LedState.SENDING  # the truth: the bytes are leaving
    assert speaker.shown[-2:] == [LedState.AWAITING, LedState.SENDING]
    assert LedState.of(blocking_fault=False, asking=False, sending=False, fault=False, recording=False,
                       muted=True, ending=LedState.APPROVED) is LedState.APPROVED


def test_after_a_decision_the_next_waiting_request_blinks_at_once(speaker):
    speaker.submit(b"first")
    speaker.submit(b"second")
    speaker.at(100.0 + 30.0)  # the first times out; the second is armed in the same step
    assert speaker.state is LedState.AWAITING
    assert_blinks(speaker, 0.5, 0.5)


# -- precedence and a whole story ------------------------------------------------------------------


def test_a_request_asking_outranks_a_microphone_fault_and_mute(speaker):
    speaker.core.mute("test")
    speaker.submit()
    assert speaker.state is LedState.AWAITING  # a request asking is shown even while muted
    speaker.core.report_fault("audio", "the microphone is gone")
    assert speaker.state is LedState.AWAITING  # a press can still approve it, so the LED asks
    speaker.at(100.0 + 30.0)
    assert speaker.state is LedState.FAULT  # denied by the timeout: the fault outranks the ending
    speaker.core.clear_fault("audio")
    assert speaker.state is LedState.DENIED  # over muted, the ending shows out its 1.5 s
    speaker.at(100.0 + 31.5)
    assert speaker.state is LedState.MUTED


def test_a_wake_word_upload_runs_through_every_pattern_in_order(speaker, manifest, inbox):
    """Wake word -> recording (solid) -> kept, the upload asks (blink) -> press -> sending
    (quick blink) -> sent (long pulses for 1.5 s) -> dark, and the pin followed every step."""
    positive = manifest["positives"][0]
    speaker.listen_until(manifest["dir"] / positive["file"], LedState.AWAITING)
    assert speaker.shown == [LedState.IDLE, LedState.RECORDING, LedState.AWAITING]
    assert_blinks(speaker, 0.5, 0.5)
    speaker.press(speaker.t[0] + 1.0)
    assert speaker.shown[-1] is LedState.SENDING
    speaker.finish_sending()
    assert len(inbox.bodies) == 1
    assert_ends_with(speaker, LedState.SENT, 0.6, 0.15)
    assert speaker.shown == [LedState.IDLE, LedState.RECORDING, LedState.AWAITING, LedState.SENDING,
                             LedState.SENT, LedState.IDLE]


# -- a timer that rings ------------------------------------------------------------------------------


def assert_rhythm(speaker: Speaker, steps: tuple[float, ...], cycles: int = 3) -> None:
    """The pin goes through `steps` (lit, dark, lit, dark, ... seconds), cycle after cycle."""
    changes = trace(speaker, cycles * sum(steps))
    stretches = [t1 - t0 for (t0, _), (t1, _) in zip(changes, changes[1:])]
    assert changes[0][1] and len(stretches) >= (cycles - 1) * len(steps), changes
    for i, got in enumerate(stretches):
        assert abs(got - steps[i % len(steps)]) < 1e-6, f"stretch {i}: {got} s, expected {steps[i % len(steps)]}"


def timer_rings(speaker: Speaker) -> None:
    speaker.core.take(PeerFrame("127.0.0.1:40000", TimerFinished(id="eggs").event(), None, 1))


def test_a_ringing_timer_flashes_twice_a_second_until_a_press(speaker):
    timer_rings(speaker)
    assert speaker.state is LedState.RINGING
    assert_rhythm(speaker, (0.1, 0.1, 0.1, 0.7))
    speaker.press(speaker.t[0] + 0.5)
    assert speaker.state is LedState.IDLE
    assert_steady(speaker, lit=False)


def test_a_request_asking_outranks_the_ring_and_the_ring_shows_again_after_its_ending(speaker, inbox):
    timer_rings(speaker)
    speaker.submit(b"asked")
    assert speaker.state is LedState.AWAITING  # a press now approves: the LED asks
    assert_blinks(speaker, 0.5, 0.5)
    speaker.press(speaker.t[0] + 1.0)
    speaker.finish_sending()
    assert speaker.state is LedState.SENT  # how it ended, for 1.5 s
    speaker.at(speaker.t[0] + 1.5)
    assert speaker.state is LedState.RINGING  # the ring was never silenced by that press
    assert_rhythm(speaker, (0.1, 0.1, 0.1, 0.7))


def test_a_recording_outranks_the_ring_and_no_burst_plays_over_it(speaker, manifest):
    """While a wake word's audio is kept the LED is solid and the ring is silent (the microphone
    must hear the person, not the ring); its upload then asks, and the ring waits for that too."""
    timer_rings(speaker)
    wav = manifest["dir"] / manifest["positives"][0]["file"]
    recorded = 0
    for frame in [*read_wav_frames(wav), *[bytes(2560)] * 50]:
        speaker.core.on_audio(frame)
        speaker.p.inputs.drain(speaker.core)
        speaker.t[0] = 100.0 + speaker.core.listener.audio_t
        quiet = speaker.core.recording or speaker.core.broker.armed is not None
        rings = len(speaker.sounds.rings)
        speaker.core.tick()
        if speaker.core.recording:
            recorded += 1
            assert speaker.state is LedState.RECORDING
        if quiet:
            assert len(speaker.sounds.rings) == rings, "a burst of the ring played over a kept utterance"
    assert recorded > 5 and speaker.sounds.rings and speaker.state is LedState.AWAITING


def test_a_muted_guardd_shows_the_ring_then_its_mute(speaker):
    speaker.core.mute("test")
    timer_rings(speaker)
    assert speaker.state is LedState.RINGING
    speaker.press(speaker.t[0] + 0.5)
    assert speaker.state is LedState.MUTED


# -- on real time, as `guardd run` blinks it ---------------------------------------------------------


def test_the_blink_thread_runs_the_pattern_on_real_time():
    """In `guardd run` the panel's own thread sleeps until each change; MockPin stamps each
    change with the real time since the one before, so the quick blink is measured on the pin."""
    panel = Panel(LedConfig(), ButtonConfig(), pin_factory=MockFactory(), clock=time.monotonic,
                  on_edge=lambda edge: None, blink_thread=True)
    try:
        pin = panel.led.pin
        panel.show(LedState.SENDING)
        pin.clear_states()
        time.sleep(1.0)
        states = list(pin.states)
        stretches = {True: [], False: []}
        for before, change in zip(states[1:], states[2:]):
            stretches[bool(before.state)].append(change.timestamp)  # how long `before` lasted
        for lit in (True, False):
            assert len(stretches[lit]) >= 2, states
            assert abs(statistics.median(stretches[lit]) - 0.15) <= 0.05, stretches  # a thread on a busy machine
        panel.show(LedState.IDLE)
        time.sleep(0.05)
        assert not pin.state
    finally:
        panel.close()
