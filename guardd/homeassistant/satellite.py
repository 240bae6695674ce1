"""A Home Assistant link as the core sees it, whichever protocol it speaks: what the peer's frames
mean for guardd (said.py), on the core's thread. Calls go one way: the core hands over the link's
news and frames (with their meanings, from the link's adapter: wyoming/satellite.py,
esphome/satellite.py), the speaker's news and the clock; this logs, plays what is to be played,
tells the peer (through the adapter) that a sound has played, and tells the core (Told) when
Home Assistant paused or resumed the satellite and how a pipeline run ended. It never starts
anything from the other side.

- A pipeline run is one approved upload (the sender writes it, through the link). What Home
  Assistant heard, its reply's text and its reply's audio are its answer: logged as SHA-256 and
  length (never as text), the reply played on the speaker as it comes (playing.py), then the peer
  told it played. A run ends `replied`; `error` (Home Assistant ended its pipeline with an error:
  its code is logged, not its text; `stt-no-text-recognized` when nothing was understood),
  `no_reply` after REPLY_WAIT_S or `disconnected`: those three reached Home Assistant and got no
  answer, and the core tells the owner so (an ending of its own).
- A sound Home Assistant pushes outside a run (an announcement) is logged and played.
- Home Assistant's pause (Hold) and its lifting never touch the owner's mute: only the long press
  on the device unmutes (promise 5; device/mute.py).
- A run Home Assistant would start itself (FromAfar) is logged and ignored. A pipeline starts
  only with a wake word and a press on the device.
- Audio that breaks the rules (sound.py) drops the connection it came on.
- What the peer can make guardd log is rationed (ration.py). A pushed sound that cannot be
  logged does not play.
- What it says of its timers (TimerChange) goes to the core, which rings them (guardd/timers.py).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from guardd.homeassistant.inputs import PeerFrame, PeerNews, Uploading
from guardd.homeassistant.playing import Sounds
from guardd.homeassistant.ration import Ration
from guardd.homeassistant.said import (
    BadAudio, FromAfar, Heard, Hold, Ignored, Meaning, ReplyText, RunFailed, SoundChunk, SoundEnd, SoundStart,
    TimerChange, Unplayable,
)
from guardd.homeassistant.sound import BadSound
from guardd.journal import Recorder
from guardd.speak.feed import Feed
from guardd.speak.player import Played, Playing

log = logging.getLogger(__name__)

REPLY_WAIT_S = 30.0  # after an upload, how long Home Assistant may take to answer it
NOT_FROM_AFAR = "a pipeline starts only with a wake word and a press on the device"
UNANSWERED = frozenset({"error", "no_reply", "disconnected"})  # reached Home Assistant, no answer


class Peer(Protocol):
    """The link, as the rules use it (through its adapter): a sound that came on a connection
    has played (`whole`, or cut short, or not at all), a connection dropped."""

    def played(self, connection: int, whole: bool) -> None: ...

    def drop(self, connection: int, reason: str) -> None: ...


class NoPeer:
    """No link to Home Assistant: no frame ever comes, and none can go."""

    def played(self, connection: int, whole: bool) -> None:
        return None

    def drop(self, connection: int, reason: str) -> None:
        return None


@dataclass
class Run:
    request_id: str
    began: float
    connection: int = 0
    text: tuple[str, int] = ("", 0)  # the reply's text (synthesize): SHA-256, characters
    replied: bool = False  # its reply audio is playing


@dataclass(frozen=True)
class RunEnd:
    request_id: str
    result: str  # replied | error | no_reply | disconnected | superseded
    code: str = ""  # Home Assistant's error code

    @property
    def unanswered(self) -> bool:
        return self.result in UNANSWERED


@dataclass(frozen=True)
class Told:
    """What the core acts on: Home Assistant paused (`hold` "pause") or resumed ("resume") the
    satellite, from `peer`; runs that ended; what it said of its timers (guardd/timers.py rings them)."""

    hold: str | None = None
    peer: str = ""
    ended: tuple[RunEnd, ...] = field(default=())
    by: str = ""  # how the hold came (said.Hold.by)
    timers: tuple[TimerChange, ...] = field(default=())


def digest(text: str) -> tuple[str, int]:
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), len(text)


class Satellite:
    def __init__(self, peer: Peer, *, record: Recorder, stream: Callable[[str], Feed]) -> None:
        self._peer = peer
        self._record = record
        self.run: Run | None = None
        self.sounds = Sounds(stream)
        self._playing: dict[str, str | None] = {}  # sound id -> its run's request id (None: pushed)
        self._count = 0
        self._ration = Ration()
        self._now = 0.0
        self._ended: list[RunEnd] = []
        self._timers: list[TimerChange] = []

    # -- inputs from the core ------------------------------------------------------------------

    def take(self, item: PeerNews | PeerFrame | Uploading, now: float, said: Iterable[Meaning] = (),
             what: str = "") -> Told:
        """A connection's news, or a frame with what it means (`said`, from the link's adapter;
        `what` names the frame in the log)."""
        self._now = now
        hold = None
        if isinstance(item, Uploading):
            self._begin(item, now)  # (logged already: its `send` record)
        elif isinstance(item, PeerNews):
            self._news(item)
        else:
            for meaning in said:
                hold = self._hear(item, meaning, what, now) or hold
        if hold is None:
            return self._told(None, getattr(item, "peer", ""))
        return self._told("pause" if hold.on else "resume", getattr(item, "peer", ""), hold.by)

    def on_speaker(self, news: Playing | Played) -> Told:
        """One of the peer's sounds ended: a reply ends its run (logged), then `played` goes back."""
        if not isinstance(news, Played) or news.request_id not in self._playing:
            return Told()
        request_id = self._playing.pop(news.request_id)
        if request_id is not None and self.run is not None and self.run.request_id == request_id:
            self._end("replied", "" if news.whole else "the reply did not play to the end")
        connection = self.sounds.played(news.request_id)  # logged first, then the peer is told
        if connection is not None:
            self._peer.played(connection, news.whole)
        return self._told()

    def tick(self, now: float) -> Told:
        self._now = now
        run = self.run
        if run is not None and not run.replied and now - run.began > REPLY_WAIT_S:
            self._end("no_reply", f"no reply within {REPLY_WAIT_S:g} s")
        for connection in self.sounds.stale(now, REPLY_WAIT_S):
            self._cut(connection, "a sound that never ended")
        return self._told()

    def _told(self, hold: str | None = None, peer: str = "", by: str = "") -> Told:
        ended, self._ended = tuple(self._ended), []
        timers, self._timers = tuple(self._timers), []
        return Told(hold, peer, ended, by, timers)

    # -- news and frames -----------------------------------------------------------------------

    def _news(self, news: PeerNews) -> None:
        fields: dict[str, str | int] = {"event": news.what, "peer": news.peer, "reason": news.reason[:200]}
        if news.what in ("polls", "refused") and news.count:
            fields["count" if news.what == "polls" else "missed"] = news.count
        self._rationed(f"peer {news.what}", "peer", news.reason, **fields)
        if news.what == "closed":
            self.sounds.cut(news.connection)  # what came of a sound plays; nothing more will
            if self.run is not None and self.run.connection == news.connection:
                self._end("disconnected", news.reason)

    def _hear(self, frame: PeerFrame, said: Meaning, what: str, now: float) -> Hold | None:
        """One meaning of a frame; the hold, when it is Home Assistant's pause or its lifting."""
        if isinstance(said, Hold):
            return said
        if isinstance(said, FromAfar):
            self._ignored(frame, said.what, NOT_FROM_AFAR)
        elif isinstance(said, Ignored):
            self._ignored(frame, said.what, said.reason)
        elif isinstance(said, Unplayable):
            self._ignored(frame, said.what, said.reason)
            self._peer.played(frame.connection, False)
        elif isinstance(said, TimerChange):
            self._timers.append(said)  # (the core's Timers bound, check and ration them)
        elif isinstance(said, (Heard, ReplyText, RunFailed)):
            self._answer(frame, said, what)
        elif isinstance(said, BadAudio):
            self._cut(frame.connection, f"bad audio from the peer: {said.reason}")
        elif isinstance(said, (SoundStart, SoundChunk, SoundEnd)):
            try:
                self._audio(frame, said, now)
            except (BadSound, ValueError, TypeError, KeyError) as exc:
                self._cut(frame.connection, f"bad audio from the peer: {exc}")
        return None  # (Counted: nothing to do)

    def _run_of(self, frame: PeerFrame) -> Run | None:
        """The open run a frame answers, or None."""
        run = self.run
        ok = run is not None and frame.run == run.request_id and frame.connection == run.connection
        return run if ok else None

    def _answer(self, frame: PeerFrame, said: Heard | ReplyText | RunFailed, what: str) -> None:
        run = self._run_of(frame)
        if run is None:
            self._ignored(frame, what, "no pipeline run of guardd's is waiting for it")
        elif isinstance(said, Heard):
            sha256, chars = digest(said.text)
            self._rationed("transcript", "transcript", "", id=run.request_id, sha256=sha256, chars=chars)
        elif isinstance(said, ReplyText):
            run.text = digest(said.text)
        else:
            code = (said.code or "error")[:60]
            self._end("error", f"Home Assistant ended the pipeline with the error {code}", code)

    def _audio(self, frame: PeerFrame, said: SoundStart | SoundChunk | SoundEnd, now: float) -> None:
        """A sound is logged before its first sample plays (`reply` or `peer_audio`), played as
        its chunks come, and its hash and length logged when it has all come (`sound_end`)."""
        connection = frame.connection
        if isinstance(said, SoundChunk):
            self.sounds.chunk(connection, said)
            return
        if isinstance(said, SoundEnd):
            ended = self.sounds.end(connection, said.what)
            if ended.sound_id is not None:
                cut = {"cut": ended.cut} if ended.cut else {}
                self._record("sound_end", sound=ended.sound_id, audio_sha256=ended.sha256, audio_ms=ended.ms, **cut)
            return
        if self.sounds.arriving(connection):
            raise BadSound("a sound's start inside another sound")
        run = self._run_of(frame)
        self._count += 1
        answers: str | None = None  # the run this sound is the reply of (None: pushed)
        if run is not None and not run.replied:
            run.replied = True
            answers, sound_id = run.request_id, f"{run.request_id}-reply"
            seq = self._record("reply", id=run.request_id, sha256=run.text[0], chars=run.text[1])
        else:
            sound_id = f"peer-{self._count}"
            seq = self._rationed("peer_audio", "peer_audio", "", peer=frame.peer, sound=sound_id)
        if seq is None:  # past its ration (counted), or the log failed (a fault of its own)
            log.debug("a sound from %s not played: not logged", frame.peer)
        else:
            self._playing[sound_id] = answers
        self.sounds.begin(connection, said, now, sound_id if seq is not None else None)

    def _cut(self, connection: int, reason: str) -> None:
        """Bad audio: the sound playing ends where it got to, and its connection is dropped."""
        self.sounds.cut(connection)
        self._peer.drop(connection, reason)

    # -- runs ----------------------------------------------------------------------------------

    def _begin(self, uploading: Uploading, now: float) -> None:
        if self.run is not None:
            self._end("superseded", "a newer upload began")
        self.run = Run(uploading.request_id, now, uploading.connection)

    def _end(self, result: str, reason: str, code: str = "") -> None:
        run, self.run = self.run, None
        if run is None:
            return
        fields: dict[str, str | int] = {"code": code} if code else {}
        self._record("pipeline", id=run.request_id, result=result, reason=reason[:200], **fields)
        self._ended.append(RunEnd(run.request_id, result, code))

    def _ignored(self, frame: PeerFrame, what: str, reason: str) -> None:
        self._rationed(f"ignored {what}", "peer_ignored", reason, peer=frame.peer, frame=what[:64], reason=reason)

    def _rationed(self, kind: str, type_: str, why: str, **fields: str | int) -> int | None:
        """A record the peer caused, if its ration allows; what was held back is counted in it."""
        held = self._ration.take(kind, self._now, why)
        if held is None:
            return None
        return self._record(type_, **fields, **held)
