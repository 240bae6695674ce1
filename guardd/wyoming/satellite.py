"""The satellite as the core sees it: what Home Assistant's frames mean for guardd, on the
core's thread. Calls go one way: the core hands over the link's news and frames, the speaker's
news and the clock; this logs, plays what is to be played, answers `played`, and tells the core
(Told) when Home Assistant paused or resumed the satellite and how a pipeline run ended. It
never starts anything from the other side.

- A pipeline run is one approved upload (the sender writes it, upload.py). Its `transcript`,
  `synthesize` and reply audio are Home Assistant's answer: logged as SHA-256 and length (never
  as text), the reply played on the speaker as it comes (playing.py), then `played` sent back on
  the connection it came from. A run ends `replied`; `error` (Home Assistant ended its pipeline
  with an error: its code is logged, not its text; assist_satellite.py sends `error` for every
  pipeline error, `stt-no-text-recognized` when nothing was understood), `no_reply` after
  REPLY_WAIT_S or `disconnected`: those three reached Home Assistant and got no answer, and the
  core tells the owner so (an ending of its own).
- Audio Home Assistant pushes outside a run (an announcement) is logged and played.
- `pause-satellite` is Home Assistant's pause; its `run-satellite` lifts it. Neither touches the
  owner's mute: only the long press on the device unmutes (promise 5; device/mute.py).
- `run-pipeline`, `detect` and `detection` from the peer would start a pipeline from the other
  side: logged and ignored. A pipeline starts only with a wake word and a press on the device.
- Audio that breaks the rules (sound.py) drops the connection it came on.
- What the peer can make guardd log is rationed (ration.py). A pushed sound that cannot be
  logged does not play.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

from wyoming.event import Event
from wyoming.snd import Played as PlayedFrame

from guardd.journal import Recorder
from guardd.speak.feed import Feed
from guardd.speak.player import Played, Playing
from guardd.wyoming.link import PeerFrame, PeerNews, Uploading
from guardd.wyoming.playing import Sounds
from guardd.wyoming.ration import Ration
from guardd.wyoming.sound import BadSound

log = logging.getLogger(__name__)

REPLY_WAIT_S = 30.0  # after an upload, how long Home Assistant may take to answer it
STARTS_FROM_AFAR = frozenset({"run-pipeline", "detect", "detection"})
NOT_FROM_AFAR = "a pipeline starts only with a wake word and a press on the device"
UNANSWERED = frozenset({"error", "no_reply", "disconnected"})  # reached Home Assistant, no answer


class Peer(Protocol):
    """The link, as the satellite uses it: a frame to a connection, a connection dropped."""

    def send(self, connection: int, event: Event) -> bool: ...

    def drop(self, connection: int, reason: str) -> None: ...


class NoPeer:
    """Satellite mode is off: no frame ever comes, and none can go."""

    def send(self, connection: int, event: Event) -> bool:
        return False

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
    satellite, from `peer`; runs that ended."""

    hold: str | None = None
    peer: str = ""
    ended: tuple[RunEnd, ...] = field(default=())


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

    # -- inputs from the core ------------------------------------------------------------------

    def take(self, item: PeerNews | PeerFrame | Uploading, now: float) -> Told:
        """A connection's news or a frame."""
        self._now = now
        hold = None
        if isinstance(item, Uploading):
            self._begin(item, now)  # (logged already: its `send` record)
        elif isinstance(item, PeerNews):
            self._news(item)
        else:
            hold = self._frame(item, now)
        return self._told(hold, getattr(item, "peer", ""))

    def on_speaker(self, news: Playing | Played) -> Told:
        """One of the peer's sounds ended: `played` goes back, and a reply ends its run."""
        if not isinstance(news, Played) or news.request_id not in self._playing:
            return Told()
        request_id = self._playing.pop(news.request_id)
        connection = self.sounds.played(news.request_id)
        if connection is not None:
            self._peer.send(connection, PlayedFrame().event())
        if request_id is not None and self.run is not None and self.run.request_id == request_id:
            self._end("replied", "" if news.whole else "the reply did not play to the end")
        return self._told()

    def tick(self, now: float) -> Told:
        self._now = now
        run = self.run
        if run is not None and not run.replied and now - run.began > REPLY_WAIT_S:
            self._end("no_reply", f"no reply within {REPLY_WAIT_S:g} s")
        for connection in self.sounds.stale(now, REPLY_WAIT_S):
            self._cut(connection, "audio-start without its audio-stop")
        return self._told()

    def _told(self, hold: str | None = None, peer: str = "") -> Told:
        ended, self._ended = tuple(self._ended), []
        return Told(hold, peer, ended)

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

    def _frame(self, frame: PeerFrame, now: float) -> str | None:
        kind = frame.event.type
        if kind == "pause-satellite":
            return "pause"
        if kind == "run-satellite":
            return "resume"
        if kind in STARTS_FROM_AFAR:
            self._ignored(frame, NOT_FROM_AFAR)
        elif kind in ("transcript", "synthesize", "error"):
            self._answer(frame)
        elif kind in ("audio-start", "audio-chunk", "audio-stop"):
            try:
                self._audio(frame, now)
            except (BadSound, ValueError, TypeError, KeyError) as exc:
                self._cut(frame.connection, f"bad audio from the peer: {exc}")
        return None

    def _run_of(self, frame: PeerFrame) -> Run | None:
        """The open run a frame answers, or None."""
        run = self.run
        ok = run is not None and frame.run == run.request_id and frame.connection == run.connection
        return run if ok else None

    def _answer(self, frame: PeerFrame) -> None:
        run = self._run_of(frame)
        data = frame.event.data or {}
        if run is None:
            self._ignored(frame, "no pipeline run of guardd's is waiting for it")
        elif frame.event.type == "transcript":
            sha256, chars = digest(str(data.get("text") or ""))
            self._rationed("transcript", "transcript", "", id=run.request_id, sha256=sha256, chars=chars)
        elif frame.event.type == "synthesize":
            run.text = digest(str(data.get("text") or ""))
        else:
            code = str(data.get("code") or "error")[:60]
            self._end("error", f"Home Assistant ended the pipeline with the error {code}", code)

    def _audio(self, frame: PeerFrame, now: float) -> None:
        """A sound is logged before its first sample plays (`reply` or `peer_audio`), played as
        its chunks come, and its hash and length logged when it has all come (`sound_end`)."""
        kind, connection = frame.event.type, frame.connection
        if kind == "audio-chunk":
            self.sounds.chunk(connection, frame.event)
            return
        if kind == "audio-stop":
            ended = self.sounds.end(connection)
            if ended.sound_id is not None:
                cut = {"cut": ended.cut} if ended.cut else {}
                self._record("sound_end", sound=ended.sound_id, audio_sha256=ended.sha256, audio_ms=ended.ms, **cut)
            return
        if self.sounds.arriving(connection):
            raise BadSound("audio-start inside another sound")
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
        self.sounds.begin(connection, frame.event, now, sound_id if seq is not None else None)

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

    def _ignored(self, frame: PeerFrame, reason: str) -> None:
        self._rationed(f"ignored {frame.event.type}", "peer_ignored", reason, peer=frame.peer,
                       frame=frame.event.type, reason=reason)

    def _rationed(self, kind: str, type_: str, why: str, **fields: str | int) -> int | None:
        """A record the peer caused, if its ration allows; what was held back is counted in it."""
        held = self._ration.take(kind, self._now, why)
        if held is None:
            return None
        return self._record(type_, **fields, **held)
