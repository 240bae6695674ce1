"""The device: the real pipeline on gpiozero's MockFactory pins, on a clock the test moves, with
the inbox as its one destination; and the adapters made for tests at seams guardd owns (a
sender that must not be called, a journal that fails on demand, a speaker whose announcements
take no time)."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from gpiozero.pins.mock import MockFactory

from guardd.auditlog.reading import read_records
from guardd.config.settings import WYOMING, Config
from guardd.confirm.outbox import Caller, Request
from guardd.confirm.sender import Sender, SendJob
from guardd.device.panel import ENDING_S, ButtonEdge, LedState
from guardd.errors import AuditLogError
from guardd.pipeline import open_pipeline
from guardd.speak.feed import Feed
from guardd.speak.player import Played, Playing, SpeakerNews
from guardd.speak.sentence import Announcement
from harness.inbox import REPLY, Inbox

T0 = 100.0  # the injected clock starts here
TIMEOUT_S = 30.0  # confirm.timeout_s in these tests (the default)
ME = Caller(1000, 4242, "/usr/bin/test-client")


@dataclass
class Submitted:
    request: Request
    replies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def final(self) -> dict[str, Any]:
        return self.replies[-1]


class InstantSpeaker:
    """A speaker whose announcements begin and end the moment they are asked for, so the gate
    asks from arming, as with the LED alone: for the tests of the rules that came before the
    announcements. What it was asked to play is kept. Its news goes to `report` (a test whose
    pipeline is not yet open sets it to the pipeline's inputs once it is)."""

    def __init__(self, clock: Callable[[], float], report: Callable[[SpeakerNews], None] | None = None) -> None:
        self._clock = clock
        self.report = report
        self.said: list[Announcement] = []
        self.chimes: list[str] = []
        self.hushed: list[str] = []
        self.played: list[tuple[str, Any]] = []
        self.rings: list[float] = []  # when each burst of a timer's ring was asked for
        self.rings_ended = 0

    def chime(self, name: str) -> None:
        self.chimes.append(name)

    def ring(self) -> None:
        self.rings.append(self._clock())

    def end_ring(self) -> None:
        self.rings_ended += 1

    def announce(self, said: Announcement) -> None:
        self.said.append(said)
        now = self._clock()
        assert self.report is not None, "set InstantSpeaker.report to where its news goes"
        self.report(Playing(said.request_id, now, now))
        self.report(Played(said.request_id, now, True))

    def stream(self, sound_id: str) -> Feed:
        """A streamed sound, kept whole and told as played the moment it ends."""
        def ended(feed: Feed) -> None:
            self.played.append((sound_id, np.concatenate(feed.pieces_so_far or [np.zeros(0, np.int16)])))
            now = self._clock()
            assert self.report is not None, "set InstantSpeaker.report to where its news goes"
            self.report(Playing(sound_id, now, now))
            self.report(Played(sound_id, now, True))

        return Feed(ended)

    def hush(self, request_id: str) -> None:
        self.hushed.append(request_id)


Speaker = Callable[[Callable[[], float], Callable[[SpeakerNews], None]], Any]


class Device:
    """`speaker(clock, report)` makes what plays the sounds (by default an InstantSpeaker); its
    news goes to the pipeline's inputs, as the sender's results do."""

    def __init__(self, config: Config, inbox: Inbox, stack: contextlib.ExitStack,
                 sender: Sender | None = None, speaker: Speaker = InstantSpeaker) -> None:
        self.config = config
        self.inbox = inbox
        self.clock = [T0]
        self.edges: list[ButtonEdge] = []
        self.events: list[dict[str, Any]] = []
        self.leds: list[LedState] = []
        self.on_edge: Callable[[ButtonEdge], None] = self.edges.append
        self.speaker = speaker(lambda: self.clock[0], lambda news: self.p.inputs.append(news))
        self.p = stack.enter_context(open_pipeline(
            config, pin_factory=MockFactory(), clock=lambda: self.clock[0],
            on_edge=lambda e: self.on_edge(e), emit=self.events.append, sender=sender,
            speaker=self.speaker, on_show=self.leds.append, journal=FailingJournal, peer=WyomingFrames(),
        ))
        self.core = self.p.core
        self.journal: FailingJournal = self.core.journal  # type: ignore[assignment]
        self.pin = self.p.panel.button.pin
        self.log_dir = config.state_path / "log"
        inbox.log_dir = self.log_dir
        self.core.start(mode="test")

    # time and the button

    @property
    def now(self) -> float:
        return self.clock[0]

    def at(self, t: float) -> None:
        """Let the clock reach t and the core act on it (timeouts, debouncing, stuck buttons)."""
        assert t >= self.clock[0], "time only moves forward"
        self.clock[0] = t
        self.core.tick()
        self.p.inputs.drain(self.core)  # a send approved just now: its result is the next input

    def _feed(self) -> None:
        while self.edges:
            self.core.take(self.edges.pop(0))
        self.p.inputs.drain(self.core)

    def down(self, t: float) -> None:
        self.clock[0] = t
        self.pin.drive_low()  # pull-up button: low is pressed; gpiozero calls back synchronously
        self._feed()

    def up(self, t: float) -> None:
        self.clock[0] = t
        self.pin.drive_high()
        self._feed()

    def press(self, t: float, hold: float = 0.1) -> None:
        """A clean short press at t, released hold seconds later, and the release debounced."""
        self.down(t)
        self.up(t + hold)
        self.at(t + hold + 0.1)

    # requests

    def submit(self, payload: bytes, *, to: str = "inbox", client: int = 1, kind: str = "message",
               at: float | None = None) -> Submitted:
        """A client asks (at time `at`, if given: the core handles the call then, before any tick)."""
        if at is not None:
            assert at >= self.clock[0]
            self.clock[0] = at
        replies: list[dict[str, Any]] = []
        request = self.core.submit(kind, to, payload, ME, reply=replies.append, client=client)
        self.p.inputs.drain(self.core)  # what the speaker said of it
        return Submitted(request, replies)

    # what the log says

    def records(self, type_: str | None = None, id_: str | None = None) -> list[dict[str, Any]]:
        return [r for r in read_records(self.log_dir)
                if (type_ is None or r["type"] == type_) and (id_ is None or r.get("id") == id_)]

    def story(self, request_id: str) -> list[str]:
        """The types of the records about one request, in log order."""
        return [r["type"] for r in self.records(id_=request_id)]

    def decision(self, request_id: str) -> dict[str, Any]:
        [d] = self.records("decision", request_id)
        return d

    @property
    def led(self) -> LedState | None:
        return self.p.panel.state

    def assert_ended(self, ending: LedState) -> None:
        """The LED tells how the request ended, for ENDING_S, and then shows idle again."""
        assert self.led is ending
        self.at(self.clock[0] + ENDING_S - 0.01)
        assert self.led is ending
        self.at(self.clock[0] + 0.01)
        assert self.led is LedState.IDLE

    @property
    def spooled(self) -> list[str]:
        outbox = self.config.state_path / "outbox"
        return sorted(p.name for p in outbox.glob("*.bin")) if outbox.is_dir() else []

    # the promise, as assertions

    def assert_denied(self, s: Submitted, reason: str) -> None:
        # Announced if it was armed; denied while it waited, it never was.
        assert self.story(s.id) in (["request", "announce", "decision"], ["request", "decision"])
        d = self.decision(s.id)
        assert (d["decision"], d["reason"]) == ("denied", reason)
        assert s.final == {"status": "denied", "id": s.id, "reason": reason}
        assert f"{s.id}.bin" not in self.spooled, "a denied payload stays spooled"

    def assert_approved_and_sent(self, s: Submitted, payload: bytes) -> None:
        # Write-ahead: request, then the approval, then `send`, then the result, one record each.
        assert self.story(s.id) == ["request", "announce", "decision", "send", "sent"]
        d = self.decision(s.id)
        assert (d["decision"], d["reason"]) == ("approved", "pressed")
        [req] = self.records("request", s.id)
        [send] = self.records("send", s.id)
        [sent] = self.records("sent", s.id)
        assert req["seq"] < d["seq"] < send["seq"] < sent["seq"]
        assert req["sha256"] == send["sha256"] == _sha256(payload)
        assert req["bytes"] == send["bytes"] == len(payload)
        assert (sent["delivered"], sent["status"], sent["bytes"]) == (1, 200, len(payload))
        # The bytes arrived after `send` was durable, and before `sent` was written.
        [arrival] = [a for a in self.inbox.arrivals if (("send", s.id) in a.log_at_arrival)]
        assert arrival.body == payload
        assert ("sent", s.id) not in arrival.log_at_arrival
        assert s.replies[-2:] == [{"status": "approved", "id": s.id},
                                  {"status": "sent", "id": s.id, "http_status": 200, "error": "",
                                   "body": REPLY.decode()}]
        assert f"{s.id}.bin" not in self.spooled


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()




class NoSender:
    """A sender for a core that must send nothing: any job fails the test."""

    def submit(self, job: SendJob) -> None:
        raise AssertionError(f"{job.request_id} was handed to the sender")


class FailingJournal:
    """A journal over a real log that refuses appends on demand: every one while `failing` says
    why, or every one after the next `good` when fail_after(good) was called."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.failing: str | None = None
        self._good: int | None = None

    def fail_after(self, good: int, why: str = "cannot write the log: Input/output error") -> None:
        self._good, self._why = good, why

    def heal(self) -> None:
        self.failing = self._good = None

    def append(self, type_: str, **fields: Any) -> int:
        if self._good is not None:
            if self._good == 0:
                self.failing = self._why
            self._good -= 1
        if self.failing is not None:
            raise AuditLogError(self.failing)
        return self.log.append(type_, **fields)

    def records(self) -> Any:
        return self.log.records()


class WyomingFrames:
    """Home Assistant's Wyoming link with no socket: its adapter (guardd/wyoming/satellite.py) on
    the core's thread, so a test can hand the core Wyoming frames (PeerFrame) as the real link
    does; what would go back to Home Assistant is kept in `sent`. It never uploads."""

    destination = WYOMING
    ready = False
    port = None

    def __init__(self) -> None:
        self.sent: list[tuple[int, Any]] = []
        self.dropped: list[tuple[int, str]] = []

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def satellite(self, *, record: Any, stream: Callable[[str], Feed]) -> Any:
        from guardd.wyoming.satellite import Satellite

        return Satellite(self, record=record, stream=stream)

    def send(self, connection: int, event: Any) -> bool:
        self.sent.append((connection, event))
        return True

    def drop(self, connection: int, reason: str) -> None:
        self.dropped.append((connection, reason))

    def set_muted(self, muted: bool) -> None:
        return None

    def send_utterance(self, request_id: str, pcm: bytes, sha256: str, within_s: float) -> tuple[int, str]:
        return 0, "no Home Assistant in this test"

    def status(self) -> dict[str, Any]:
        return {}
