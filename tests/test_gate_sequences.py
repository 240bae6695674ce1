"""The gate against any sequence of calls and presses, as a Hypothesis state machine: submits,
hang-ups, presses, releases, ticks and time jumps, and the speaker beginning, saying the first
part (where to, how much), ending or failing each announcement whenever it likes (or never),
against the core on MockFactory pins with an injected clock and a real HTTP inbox on loopback.
After every step: no byte has left without an approving press that began after the first part
of its request's announcement was played (or after the whole of it; or, when the speaker failed
or never began, after a logged fault of the speaker let the LED alone ask), and before its
timeout, on exactly those bytes, and one request asks at a time. Home Assistant's timers finish
and are cancelled whenever they like: no press that silenced a ring began while a request
asked (so none of them approved anything), and no burst of the ring was asked for while a
request asked. After every run: the log tells each request's story in write-ahead order.

Hypothesis runs derandomized and without an example database, so CI sees the same examples.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from wyoming.timer import TimerCancelled, TimerFinished

from harness import Inbox, WyomingFrames

from guardd.auditlog.reading import read_records
from guardd.config.settings import Config, ConfirmConfig, DestinationConfig, WakeConfig
from guardd.confirm.gate import ANNOUNCE_START_S
from guardd.confirm.outbox import Caller
from guardd.device.panel import ButtonEdge
from guardd.errors import Refused
from guardd.pipeline import open_pipeline
from guardd.speak.player import Played, Playing, Said, SpeakerReport
from guardd.speak.sentence import Announcement
from guardd.wyoming.link import PeerFrame

TIMEOUT_S = 5.0
CONFIRM = ConfirmConfig(timeout_s=TIMEOUT_S, long_press_s=2.0, stuck_s=4.0, debounce_s=0.03, queue=2)
CLIENTS = (1, 2, 3)
ME = Caller(1000, 4242, "/usr/bin/fuzz-client")


class CuedSpeaker:
    """The speaker at guardd's seam: the machine's rules say when an announcement begins and ends."""

    def __init__(self) -> None:
        self.said: str | None = None  # the request whose announcement was handed over last
        self.began = self.first_part = self.ended = False
        self.asking = lambda: False  # whether a request is armed (the bench says)
        self.rings = self.rings_while_asking = 0

    def announce(self, said: Announcement) -> None:
        self.said, self.began, self.first_part, self.ended = said.request_id, False, False, False

    def hush(self, request_id: str) -> None:
        if request_id == self.said:
            self.ended = True

    def stream(self, sound_id: str) -> object:
        raise AssertionError(f"no sound from Home Assistant plays in these tests ({sound_id})")

    def chime(self, name: str) -> None:
        return None

    def ring(self) -> None:
        self.rings += 1
        self.rings_while_asking += self.asking()

    def end_ring(self) -> None:
        return None


class Bench:
    """The core on mock pins with an injected clock and an inline sender to a loopback
    inbox. It records what an outside observer sees: edges (with their times), when each
    request started asking (its first "waiting" reply), decisions and results (the core's
    events), and, for each body that arrives, the log head at that moment."""

    def __init__(self, directory: Path) -> None:
        # Each body that arrives is kept with the log head at that moment (the core waits meanwhile).
        self.inbox = Inbox(on_arrival=lambda: self.auditlog.head.seq)
        url = self.inbox.url
        self.config = Config(state_dir=str(directory / "state"), wake=WakeConfig(models=("alexa",)),
                             destinations=(DestinationConfig(url=url, name="inbox"),), confirm=CONFIRM)
        self.now = 1000.0
        self.edges: list[ButtonEdge] = []
        self.speaker = CuedSpeaker()
        self._stack = contextlib.ExitStack()
        p = self._stack.enter_context(open_pipeline(
            self.config, pin_factory=MockFactory(), clock=lambda: self.now, on_edge=self.edges.append,
            emit=self._event, speaker=self.speaker, peer=WyomingFrames()))
        self.p, self.core, self.auditlog, self.pin = p, p.core, p.auditlog, p.panel.button.pin
        self.speaker.asking = lambda: self.core.broker.armed is not None
        self.timers = 0  # timer ids used so far (fresh in every run)
        self.silenced = 0  # rings silenced by a press, over every run
        self.core.start(mode="fuzz")
        self.approvals = 0  # over every run, so the test can tell it reached the interesting part
        self.reset()

    def reset(self) -> None:
        self.start_seq = self.auditlog.head.seq
        self.inbox.arrivals.clear()
        self.downs: list[float] = []  # times of the button's down edges as the core got them
        self.payloads: dict[str, bytes] = {}
        self.owner: dict[str, int] = {}
        self.armed_at: dict[str, float] = {}
        self.opened: dict[str, tuple[float, str]] = {}  # when a press began to count, and why
        self.until: dict[str, float] = {}  # the latest its announcement was to end (the timeout runs after)
        self.heard_of: set[str] = set()  # requests the speaker told of (began, ended or failed)
        # When a fault of the speaker was told (and logged); one standing since a run before counts.
        self.speaker_faults: list[float] = [float("-inf")] if "speaker" in self.core.faults else []
        self.asking: str | None = None  # the request that is armed or sending, as seen outside
        self.decided: list[tuple[str, bool, str, float]] = []
        self.violations: list[str] = []
        self.silencing_presses: list[float] = []  # when each press that silenced a ring began

    # the observer

    def _reply_to(self, client: int) -> Any:
        def reply(message: dict[str, Any]) -> None:
            if message["status"] == "waiting" and message["id"] not in self.armed_at:
                if self.asking is not None:
                    self.violations.append(f"{message['id']} armed while {self.asking} was still pending")
                self.asking = message["id"]
                self.armed_at[message["id"]] = self.now
        return reply

    def _event(self, event: dict[str, Any]) -> None:
        kind, rid = event["event"], event.get("id")
        if kind == "fault" and "speaker" in str(event["reason"]):
            self.speaker_faults.append(self.now)
        if kind == "timer" and event["what"] == "silenced" and event["reason"] == "press":
            self.silencing_presses.append(event["pressed_ms"] / 1000)
            self.silenced += 1
        if kind == "decision":
            approved = event["decision"] == "approved"
            self.approvals += approved
            self.decided.append((rid, approved, event["reason"], self.now))
            if rid == self.asking and not approved:
                self.asking = None
            elif rid != self.asking and rid in self.armed_at:
                self.violations.append(f"{rid} decided while {self.asking} was the one asking")
            if approved and rid != self.asking:
                self.violations.append(f"{rid} approved without being the armed request")
        elif kind in ("sent", "send_failed"):
            if rid != self.asking:
                self.violations.append(f"result for {rid} while {self.asking} was asking")
            self.asking = None

    # the world

    def _gate_looks(self, t: float) -> None:
        """The core let the gate look at the time `t` (a tick, an edge): the request that asks
        and was never told of by the speaker ANNOUNCE_START_S after arming is asked for by the
        LED alone from then (the speaker is stuck)."""
        rid = self.asking
        if rid is None or rid in self.opened or rid in self.heard_of or any(d[0] == rid for d in self.decided):
            return
        if t >= self.armed_at[rid] + ANNOUNCE_START_S:
            self.opened[rid] = (t, "the LED alone, the speaker stuck")

    def feed(self) -> None:
        while self.edges:
            edge = self.edges.pop(0)
            self._gate_looks(edge.t)
            if edge.pressed:
                self.downs.append(edge.t)
            self.core.take(edge)
            self.p.inputs.drain(self.core)  # an approval's send result: the next input

    def tick(self) -> None:
        self._gate_looks(self.now)
        self.core.tick()
        self.p.inputs.drain(self.core)

    def advance(self, dt: float, tick_every_s: float | None = 0.1) -> None:
        """Let time pass, with the core ticking as `guardd run`'s loop does (every 100 ms at
        most), or, with tick_every_s=None, in one jump as a stalled loop would see it."""
        end = round(self.now + dt, 6)
        if tick_every_s is not None:
            while self.now + tick_every_s < end:
                self.now = round(self.now + tick_every_s, 6)
                self.tick()
        self.now = end

    def step(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "submit":
            _, client, payload, to = op
            try:
                request = self.core.submit("message", to, payload, ME, reply=self._reply_to(client),
                                                  client=client)
            except Refused:
                return
            self.payloads[request.id] = payload
            self.owner[request.id] = client
        elif kind == "hangup":
            self.core.cancel_client(op[1])
        elif kind in ("down", "up"):
            self.advance(op[1])
            (self.pin.drive_low if kind == "down" else self.pin.drive_high)()
            self.feed()
        elif kind == "press":
            for pressed, dt in ((True, op[1]), (False, op[2])):
                self.advance(dt)
                (self.pin.drive_low if pressed else self.pin.drive_high)()
                self.feed()
        elif kind == "tick":
            self.advance(op[1])
            self.tick()
        elif kind == "jump":  # the loop stalled (an SD card blocking a write, say)
            self.advance(op[1], tick_every_s=None)
            self.tick()
        elif kind == "begins":  # the speaker plays the first sample of the announcement
            self.advance(op[1])
            s = self.speaker
            if s.said is not None and not s.began and not s.ended:
                s.began = True
                self.heard_of.add(s.said)
                self.until[s.said] = max(self.until.get(s.said, 0.0), self.now + op[2])
                self.core.take(Playing(s.said, self.now, self.now + op[2]))
        elif kind == "said":  # the last sample of its first part (where to, how much) plays
            self.advance(op[1])
            s = self.speaker
            if s.said is not None and s.began and not s.first_part and not s.ended:
                s.first_part = True
                self.opened.setdefault(s.said, (self.now, "said"))
                self.core.take(Said(s.said, self.now))
        elif kind in ("finished", "cancelled"):  # Home Assistant says a timer finished, or cancels one
            self.advance(op[1])
            if kind == "finished":
                self.timers += 1
            event = (TimerFinished if kind == "finished" else TimerCancelled)(id=f"t{self.timers}").event()
            self.core.take(PeerFrame("127.0.0.1:40000", event, None, 1))
        elif kind in ("ends", "fails"):  # the last sample, or the speaker gave up
            self.advance(op[1])
            s = self.speaker
            if s.said is not None and not s.ended:
                s.ended = True
                self.heard_of.add(s.said)
                self.opened.setdefault(s.said, (self.now, "played whole" if kind == "ends" else "failed"))
                self.until[s.said] = max(self.until.get(s.said, 0.0), self.now)
                if kind == "fails":  # as the player tells it: the fault first, then the end
                    self.core.take(SpeakerReport("the speaker cannot play: unplugged"))
                self.core.take(Played(s.said, self.now, kind == "ends"))
                if kind == "ends":
                    self.core.take(SpeakerReport(None))

    def quiesce(self) -> None:
        """Release the button and let every request time out, so the next example starts clean."""
        self.advance(0.5)
        self.pin.drive_high()
        self.feed()
        self.advance(0.5)
        self.tick()
        for cid in CLIENTS:
            self.core.cancel_client(cid)
        while self.core.broker.busy:
            self.advance(TIMEOUT_S + 1)
            self.tick()
        self.advance(CONFIRM.long_press_s + 1)
        self.tick()
        ring = self.core.timers.ring
        for timer_id in list(ring.timers) if ring else []:  # the next example starts with no ring
            self.core.take(PeerFrame("127.0.0.1:40000", TimerCancelled(id=timer_id).event(), None, 1))

    # the promise

    def check_arrivals(self) -> None:
        """No byte without an approving press: every body that arrived is the payload of a
        request approved by a press (which check() holds to a fresh one)."""
        approved = {rid for rid, ok, _, _ in self.decided if ok}
        for body in self.inbox.bodies:
            assert any(self.payloads.get(rid) == body for rid in approved), f"{body!r} left unapproved"

    def check(self) -> None:
        assert self.violations == [], self.violations
        assert self.speaker.rings_while_asking == 0, "a burst of the ring was asked for while a request asked"
        for began in self.silencing_presses:
            assert any(abs(began - d) < 0.0015 for d in self.downs), f"no press began at {began}"
            for rid, approved, _, t in self.decided:
                # The press that approves a request began after it armed, before its decision.
                assert not (approved and self.armed_at[rid] <= began <= t), \
                    f"the press that began at {began} silenced the ring while {rid} asked"
        for rid, approved, reason, t in self.decided:
            if not approved:
                continue
            assert reason == "pressed"
            armed = self.armed_at.get(rid)
            assert armed is not None, f"{rid} approved without ever asking"
            # A press counts after the first part of the announcement (where to, how much) was
            # played, or all of it; or, when the speaker failed or never began, after a logged
            # fault let the LED alone ask (ANNOUNCE_START_S after arming at the earliest). And
            # before the timeout.
            assert rid in self.opened, f"{rid} approved at {t}, but its first part was never said"
            opened, why = self.opened[rid]
            latest = self.until[rid] + TIMEOUT_S if rid in self.until else float("inf")
            fresh = [d for d in self.downs if opened < d < latest and d <= t]
            assert fresh, f"{rid} approved at {t} with no press that began after {why} at {opened}"
            if why.startswith(("the LED alone", "failed")):
                assert opened >= armed + (ANNOUNCE_START_S if why.startswith("the LED") else 0.0)
                assert any(f <= fresh[0] for f in self.speaker_faults), f"{rid}: no fault was logged before {why}"

    def check_log_and_receiver(self) -> None:
        records = [r for r in read_records(self.config.state_path / "log") if r["seq"] > self.start_seq]
        by_id: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            if "id" in r:
                by_id.setdefault(str(r["id"]), []).append(r)
        sends = [r for r in records if r["type"] == "send"]
        delivered = [r for r in records if r["type"] == "sent" and r["delivered"]]
        assert len(self.inbox.arrivals) == len(delivered) == len(sends)
        for (body, head), send in zip(((a.body, a.seen) for a in self.inbox.arrivals), sends):
            rid = str(send["id"])
            story = by_id[rid]
            [request] = [r for r in story if r["type"] == "request"]
            [decision] = [r for r in story if r["type"] == "decision"]
            assert (decision["decision"], decision["reason"]) == ("approved", "pressed")
            assert request["seq"] < decision["seq"] < send["seq"] <= head, "bytes left before the log said so"
            assert not any(r["type"] == "sent" and r["seq"] <= head for r in story)
            assert body == self.payloads[rid]
            assert hashlib.sha256(body).hexdigest() == request["sha256"] == send["sha256"]
        approved = {rid for rid, ok, _, _ in self.decided if ok}
        assert {str(s["id"]) for s in sends} == approved
        for story in by_id.values():
            kinds = [r["type"] for r in story]
            assert kinds in (["request"], ["request", "decision"], ["request", "announce"], ["request", "announce", "decision"], ["request", "announce", "decision", "send", "sent"]), kinds

    def close(self) -> None:
        self.core.stop("test")
        self._stack.close()
        self.inbox.close()


gaps = st.floats(0, 1.5) | st.sampled_from([0.0, 0.001, 0.029, 0.03, 0.031, TIMEOUT_S - 0.01])
holds = st.floats(0.001, 0.5) | st.floats(0.001, 4.5) | st.sampled_from([0.01, 0.03, 0.05, 0.1, 1.99, 2.0, 2.01])
destinations = st.sampled_from(["inbox", "inbox", "inbox", "nowhere"])

_bench: list[Bench] = []  # one device for every run: models load once


def the_bench(directory: Path) -> Bench:
    if not _bench:
        _bench.append(Bench(directory))
    return _bench[0]


class CallsAndPresses(RuleBasedStateMachine):
    directory: Path

    def __init__(self) -> None:
        super().__init__()
        self.bench = the_bench(self.directory)
        self.bench.reset()

    @rule(client=st.sampled_from(CLIENTS), payload=st.binary(max_size=40), to=destinations)
    def a_client_asks(self, client: int, payload: bytes, to: str) -> None:
        self.bench.step(("submit", client, payload, to))

    @rule(gap=gaps, hold=holds)
    def a_person_presses(self, gap: float, hold: float) -> None:
        self.bench.step(("press", gap, hold))

    @rule(gap=gaps, hold=st.floats(0.05, 0.5))
    def a_person_taps(self, gap: float, hold: float) -> None:  # the short press that approves
        self.bench.step(("press", gap, hold))

    @rule(client=st.sampled_from(CLIENTS), payload=st.binary(max_size=40), gap=st.floats(0.0, 1.0),
          hold=st.floats(0.05, 0.5))
    def a_client_asks_and_a_person_taps(self, client: int, payload: bytes, gap: float, hold: float) -> None:
        # What the LED is for; random rules alone seldom line a tap up with an asking request.
        self.bench.step(("submit", client, payload, "inbox"))
        self.bench.step(("press", gap, hold))

    @rule(client=st.sampled_from(CLIENTS), payload=st.binary(max_size=40), lasts=st.floats(0.0, 6.0),
          gap=st.floats(0.0, 1.0), hold=st.floats(0.05, 0.5))
    def a_client_asks_it_is_announced_and_a_person_taps(self, client: int, payload: bytes, lasts: float,
                                                        gap: float, hold: float) -> None:
        self.bench.step(("submit", client, payload, "inbox"))
        self.bench.step(("begins", 0.01, lasts))
        self.bench.step(("said", min(lasts, 2.5), ))
        self.bench.step(("press", gap, hold))

    @rule(gap=gaps, lasts=st.floats(0.0, 8.0) | st.sampled_from([0.0, TIMEOUT_S]))
    def the_speaker_begins(self, gap: float, lasts: float) -> None:
        self.bench.step(("begins", gap, lasts))

    @rule(gap=gaps)
    def the_speaker_says_where_and_how_much(self, gap: float) -> None:
        self.bench.step(("said", gap))

    @rule(gap=gaps)
    def the_speaker_ends(self, gap: float) -> None:
        self.bench.step(("ends", gap))

    @rule(gap=gaps)
    def the_speaker_fails(self, gap: float) -> None:
        self.bench.step(("fails", gap))

    @rule(gap=gaps)
    def a_timer_finishes(self, gap: float) -> None:
        self.bench.step(("finished", gap))

    @rule(gap=gaps)
    def home_assistant_cancels_the_last_timer(self, gap: float) -> None:
        self.bench.step(("cancelled", gap))

    @rule(gap=gaps)
    def the_button_goes_down(self, gap: float) -> None:
        self.bench.step(("down", gap))

    @rule(gap=gaps)
    def the_button_comes_up(self, gap: float) -> None:
        self.bench.step(("up", gap))

    @rule(gap=gaps)
    def the_loop_ticks(self, gap: float) -> None:
        self.bench.step(("tick", gap))

    @rule(dt=st.floats(3.0, 120.0))
    def the_loop_stalls(self, dt: float) -> None:  # an SD card blocking a write, say
        self.bench.step(("jump", dt))

    @rule(client=st.sampled_from(CLIENTS))
    def a_client_hangs_up(self, client: int) -> None:
        self.bench.step(("hangup", client))

    @invariant()
    def no_byte_without_a_fresh_approving_press(self) -> None:
        self.bench.check_arrivals()
        self.bench.check()

    def teardown(self) -> None:
        self.bench.quiesce()
        self.bench.check()
        self.bench.check_log_and_receiver()


def test_any_sequence_of_calls_and_presses_sends_nothing_without_a_fresh_press(tmp_path_factory):
    CallsAndPresses.directory = tmp_path_factory.mktemp("bench")
    CallsAndPresses.TestCase.settings = settings(
        max_examples=100, stateful_step_count=25, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    try:
        CallsAndPresses.TestCase().runTest()
        assert _bench[0].approvals > 20, "the runs should reach many approvals, or they prove little"
        assert _bench[0].speaker.rings > 20 and _bench[0].silenced > 10, "the runs should ring and be silenced"
    finally:
        if _bench:
            _bench.pop().close()
