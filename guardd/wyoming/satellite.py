"""The satellite as the core sees it: what Home Assistant's frames mean for guardd, on the
core's thread. Calls go one way: the core hands over the link's news and frames, the speaker's
news and the clock; this logs, plays what is to be played, answers `played`, and says when
Home Assistant asked to mute. It never starts anything from the other side.

- A pipeline run is one approved upload (the sender writes it, upload.py). Its `transcript`,
  `synthesize` and reply audio are Home Assistant's answer: logged as SHA-256 and length (never
  as text), the reply played on the speaker as it comes, then `played` sent back. A run ends `replied`,
  `error` (Home Assistant's error code is logged, not its text), `no_reply` after REPLY_WAIT_S,
  or `disconnected`.
- Audio Home Assistant pushes outside a run (an announcement) is logged and played.
- `pause-satellite` mutes. Nothing from the peer unmutes: `run-satellite` while muted is
  logged and changes nothing; only the long press on the device unmutes (promise 5).
- `run-pipeline`, `detect` and `detection` from the peer would start a pipeline from the other
  side: logged and ignored. A pipeline starts only with a wake word and a press on the device.
- Audio that breaks the rules (sound.py) drops the connection.
- What the peer can make guardd log is rationed (QUOTA records of a kind a minute, the rest
  counted into the next one), so that no peer, allowed or not, can flood the log and make its
  rotation delete the owner's history. A pushed sound that cannot be logged does not play.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Callable, Protocol

from wyoming.event import Event
from wyoming.snd import Played as PlayedFrame

from guardd.journal import Recorder
from guardd.speak.feed import Feed
from guardd.speak.player import Played, Playing
from guardd.wyoming.link import PeerFrame, PeerNews, Uploading
from guardd.wyoming.sound import MAX_S, BadSound, IncomingSound

log = logging.getLogger(__name__)

REPLY_WAIT_S = 30.0  # after an upload, how long Home Assistant may take to answer it
QUOTA = 10  # records of one kind the peer may cause in QUOTA_S (the rest are counted)
QUOTA_S = 60.0
STARTS_FROM_AFAR = frozenset({"run-pipeline", "detect", "detection"})
NOT_FROM_AFAR = "a pipeline starts only with a wake word and a press on the device"


class Peer(Protocol):
    """The link, as the satellite uses it."""

    def send(self, event: Event) -> bool: ...

    def drop(self, reason: str) -> None: ...


class NoPeer:
    """Satellite mode is off: no frame ever comes, and none can go."""

    def send(self, event: Event) -> bool:
        return False

    def drop(self, reason: str) -> None:
        return None


@dataclass
class Run:
    request_id: str
    began: float
    text: tuple[str, int] = ("", 0)  # the reply's text (synthesize): SHA-256, characters
    replied: bool = False  # its reply audio is playing


def digest(text: str) -> tuple[str, int]:
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), len(text)


class Ration:
    """At most QUOTA records of each kind in each QUOTA_S window; `take` says whether one may be
    written now, and how many were held back since the last one (to be logged with it)."""

    def __init__(self) -> None:
        self._window: dict[str, tuple[float, int]] = {}  # kind -> (window start, written in it)
        self._held: dict[str, int] = {}

    def take(self, kind: str, now: float) -> int | None:
        start, written = self._window.get(kind, (now, 0))
        if now - start >= QUOTA_S:
            start, written = now, 0
        if written >= QUOTA:
            self._held[kind] = self._held.get(kind, 0) + 1
            self._window[kind] = (start, written)
            return None
        self._window[kind] = (start, written + 1)
        return self._held.pop(kind, 0)


class Satellite:
    def __init__(self, peer: Peer, *, record: Recorder, stream: Callable[[str], Feed],
                 muted: Callable[[], bool]) -> None:
        self._peer = peer
        self._record = record
        self._stream = stream
        self._muted = muted
        self.run: Run | None = None
        self._incoming: tuple[IncomingSound, str, Feed | None] | None = None  # a sound arriving: its id, where it plays
        self._playing: dict[str, str | None] = {}  # sound id -> its run's request id (None: pushed)
        self._sounds = 0
        self._ration = Ration()
        self._now = 0.0

    # -- inputs from the core ------------------------------------------------------------------

    def take(self, item: PeerNews | PeerFrame | Uploading, now: float) -> bool:
        """A connection's news or a frame; True when Home Assistant asked to mute."""
        self._now = now
        if isinstance(item, Uploading):
            self._begin(item.request_id, now)  # (logged already: its `send` record)
            return False
        if isinstance(item, PeerNews):
            self._rationed(f"peer {item.what}", "peer", event=item.what, peer=item.peer, reason=item.reason[:200])
            if item.what == "closed":
                if self._incoming is not None and self._incoming[2] is not None:
                    self._incoming[2].end()  # what came of the sound plays; nothing more will
                self._incoming = None
                self._end("disconnected", item.reason)
            return False
        kind = item.event.type
        if kind == "pause-satellite":
            return True
        if kind == "run-satellite" and self._muted():
            self._ignored(item, "guardd is muted; only the long press on the device unmutes")
        elif kind in STARTS_FROM_AFAR:
            self._ignored(item, NOT_FROM_AFAR)
        elif kind in ("transcript", "synthesize", "error"):
            self._answer(item, now)
        elif kind in ("audio-start", "audio-chunk", "audio-stop"):
            try:
                self._audio(item, now)
            except (BadSound, ValueError, TypeError, KeyError) as exc:
                self._cut(f"bad audio from the peer: {exc}")
        return False

    def on_speaker(self, news: Playing | Played) -> None:
        """One of the peer's sounds ended: `played` goes back, and a reply ends its run."""
        if not isinstance(news, Played) or news.request_id not in self._playing:
            return
        request_id = self._playing.pop(news.request_id)
        self._peer.send(PlayedFrame().event())
        if request_id is not None and self.run is not None and self.run.request_id == request_id:
            self._end("replied", "" if news.whole else "the reply did not play to the end")

    def tick(self, now: float) -> None:
        run = self.run
        if run is not None and not run.replied and now - run.began > REPLY_WAIT_S:
            self._end("no_reply", f"no reply within {REPLY_WAIT_S:g} s")
        if self._incoming is not None and now - self._incoming[0].began > MAX_S + REPLY_WAIT_S:
            self._cut("audio-start without its audio-stop")

    # -- frames --------------------------------------------------------------------------------

    def _run_of(self, frame: PeerFrame) -> Run | None:
        """The open run a frame answers, or None."""
        run = self.run
        return run if run is not None and frame.run == run.request_id else None

    def _answer(self, frame: PeerFrame, now: float) -> None:
        run = self._run_of(frame)
        data = frame.event.data or {}
        if run is None:
            self._ignored(frame, "no pipeline run of guardd's is waiting for it")
        elif frame.event.type == "transcript":
            sha256, chars = digest(str(data.get("text") or ""))
            self._rationed("transcript", "transcript", id=run.request_id, sha256=sha256, chars=chars)
        elif frame.event.type == "synthesize":
            run.text = digest(str(data.get("text") or ""))
        else:
            self._end("error", f"Home Assistant: {str(data.get('code') or 'error')[:60]}")

    def _audio(self, frame: PeerFrame, now: float) -> None:
        """A sound is logged before its first sample plays (`reply` or `peer_audio`), played as
        its chunks come, and its hash and length logged when it has all come (`sound_end`)."""
        kind = frame.event.type
        if kind == "audio-start":
            if self._incoming is not None:
                raise BadSound("audio-start inside another sound")
            sound = IncomingSound(frame.event, now)
            run = self._run_of(frame)
            self._sounds += 1
            answers: str | None = None  # the run this sound is the reply of (None: pushed)
            if run is not None and not run.replied:
                run.replied = True
                answers, sound_id = run.request_id, f"{run.request_id}-reply"
                seq = self._record("reply", id=run.request_id, sha256=run.text[0], chars=run.text[1])
            else:
                sound_id = f"peer-{self._sounds}"
                seq = self._rationed("peer_audio", "peer_audio", peer=frame.peer, sound=sound_id)
            feed = None
            if seq is None:
                log.warning("a sound from %s not played: it could not be logged", frame.peer)
            else:
                self._playing[sound_id] = answers
                feed = self._stream(sound_id)
            self._incoming = (sound, sound_id, feed)
            return
        if self._incoming is None:
            raise BadSound(f"{kind} without an audio-start")
        sound, sound_id, feed = self._incoming
        if kind == "audio-chunk":
            samples = sound.add(frame.event)
            if feed is not None:
                feed.add(samples)
            return
        self._incoming = None
        sha256, ms = sound.finish()
        if feed is not None:
            feed.end()
            self._record("sound_end", sound=sound_id, audio_sha256=sha256, audio_ms=ms)

    def _cut(self, reason: str) -> None:
        """Bad audio: the sound playing ends where it got to, and the connection is dropped."""
        if self._incoming is not None and self._incoming[2] is not None:
            self._incoming[2].end()
        self._incoming = None
        self._peer.drop(reason)

    # -- runs ----------------------------------------------------------------------------------

    def _begin(self, request_id: str, now: float) -> None:
        if self.run is not None:
            self._end("superseded", "a newer upload began")
        self.run = Run(request_id, now)

    def _end(self, result: str, reason: str) -> None:
        run, self.run = self.run, None
        if run is not None:
            self._record("pipeline", id=run.request_id, result=result, reason=reason[:200])

    def _ignored(self, frame: PeerFrame, reason: str) -> None:
        self._rationed(f"ignored {frame.event.type}", "peer_ignored", peer=frame.peer, frame=frame.event.type,
                       reason=reason)

    def _rationed(self, kind: str, type_: str, **fields: str | int) -> int | None:
        """A record the peer caused, if its ration allows; `more` counts those held back."""
        held = self._ration.take(kind, self._now)
        if held is None:
            return None
        return self._record(type_, **fields, **({"more": held} if held else {}))
