"""From audio frames to kept utterances, for the core.

Every frame feeds the wake detector (so the models' streaming state stays aligned) and a rolling
history of `utterance.pre_roll_s` + endpoint.WAKE_LOOKBACK_S, in whole frames, which never leaves
memory unless a wake word keeps it. After a wake the endpointer takes the frames until the
utterance ends; then the recording is kept, named by the seq of the `utterance` record that
announced it. Each step is logged before it happens: an unlogged wake keeps nothing, an unlogged
deletion deletes nothing. The listener answers each frame with what it heard; it never calls up.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from guardd.audioformat import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from guardd.config.settings import Config
from guardd.journal import Field, Recorder
from guardd.listen.endpoint import WAKE_LOOKBACK_S, Endpointer, NoSpeech, Utterance, Vad
from guardd.listen.ownsound import OwnSound
from guardd.listen.recordings import Recordings, sha256_hex, wav_bytes
from guardd.listen.wake import WakeDetector

log = logging.getLogger(__name__)


SILENCE = bytes(FRAME_BYTES)


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


@dataclass
class Heard:
    """What one frame did."""

    events: list[dict[str, Any]] = field(default_factory=list)
    kept: bytes | None = None  # a kept utterance's WAV bytes (for an after-wake upload)
    kept_name: str = ""
    storage_fault: str | None = None  # the recording could not be kept


class Listener:
    def __init__(self, config: Config, *, wake: WakeDetector, vad: Vad, recordings: Recordings,
                 record: Recorder) -> None:
        self.config = config
        self.wake = wake
        self.vad = vad
        self.recordings = recordings
        self._record = record
        self.frames = 0
        self.audio_t = 0.0  # seconds of audio processed
        self.endpointer: Endpointer | None = None
        history_s = config.utterance.pre_roll_s + WAKE_LOOKBACK_S
        self._history: deque[bytes] = deque(maxlen=int(history_s * SAMPLE_RATE / FRAME_SAMPLES) + 1)
        self.own_sound = OwnSound()

    @property
    def recording(self) -> bool:
        return self.endpointer is not None

    def feed(self, frame: bytes, captured: float | None = None) -> Heard:
        """One frame, taken at `captured` on the core's clock (None: not known; nothing masked)."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"audio frames are {FRAME_BYTES} bytes, got {len(frame)}")
        if captured is not None and self.own_sound.covers(captured, FRAME_SAMPLES / SAMPLE_RATE):
            frame = SILENCE  # guardd's own sound: never heard, never kept
        self.frames += 1
        self.audio_t = self.frames * FRAME_SAMPLES / SAMPLE_RATE
        heard = Heard()
        wake = self.wake.process(np.frombuffer(frame, dtype=np.int16), self.audio_t)
        # The history ends with this frame, as the wake's time does: a wake hands over the audio
        # up to audio_t, and the endpointer takes the frames after it.
        self._history.append(frame)
        if self.endpointer is not None:
            self._continue(frame, heard)
        elif wake is not None:
            self._on_wake(wake.model, wake.score, heard)
        return heard

    def drop(self, *, history: bool = False) -> bool:
        """Stop keeping the utterance in progress (a fault, a mute, a stop), and with `history`
        the pre-roll too, so audio before a mute is never joined to audio after. Whether an
        utterance was in progress."""
        was = self.endpointer is not None
        self.endpointer = None
        if history:
            self._history.clear()
        return was

    def _on_wake(self, model: str, score: float, heard: Heard) -> None:
        if not self._record("wake", model=model, score=f"{score:.4f}", audio_ms=ms(self.audio_t)):
            return  # unlogged: nothing is kept
        self.endpointer = Endpointer(self.config.utterance, self.vad, b"".join(self._history), self.audio_t)
        heard.events.append({"event": "wake", "t": self.audio_t, "model": model, "score": round(score, 4)})

    def _continue(self, frame: bytes, heard: Heard) -> None:
        assert self.endpointer is not None
        outcome = self.endpointer.feed(frame)
        if outcome is None:
            return
        self.endpointer = None
        if isinstance(outcome, NoSpeech):
            self._record("discard", reason="no_speech", audio_ms=ms(outcome.t))
            heard.events.append({"event": "discard", "t": self.audio_t, "reason": "no_speech"})
        else:
            self._keep(outcome, heard)

    def _keep(self, utt: Utterance, heard: Heard) -> None:
        data = wav_bytes(utt.pcm)
        digest = sha256_hex(data)
        fields: dict[str, Field] = {
            "file": lambda seq: self.recordings.path_for(seq).name,  # named by its own record's seq
            "sha256": digest,
            "bytes": len(data),
            "start_ms": ms(utt.start),
            "end_ms": ms(utt.end),
            "cut": int(utt.cut),
        }
        seq = self._record("utterance", **fields)
        if seq is None:
            return
        name = self.recordings.path_for(seq).name
        try:
            self.recordings.keep(seq, data)
        except OSError as exc:
            heard.storage_fault = f"cannot keep {name}: {exc.strerror or exc}"
            return
        heard.kept, heard.kept_name = data, name
        heard.events.append({"event": "utterance", "t": self.audio_t, "start": round(utt.start, 3),
                             "end": round(utt.end, 3), "sha256": digest, "bytes": len(data), "file": name})

    def retention(self, wall_now: float) -> list[dict[str, Any]]:
        """Delete the recordings the owner's limits have made due, each logged first."""
        events = []
        for rec, reason in self.recordings.due_for_deletion(wall_now):
            if not self._record("deleted", file=rec.path.name, reason=reason, bytes=rec.size):
                break  # a deletion is never unlogged
            rec.path.unlink(missing_ok=True)
            events.append({"event": "deleted", "t": self.audio_t, "file": rec.path.name, "reason": reason})
        return events

    def delete_strays(self) -> None:
        """Half-written recordings from before a restart: logged, then deleted."""
        for stray in self.recordings.stray_temp_files():
            if self._record("deleted", file=stray.name, reason="incomplete"):
                stray.unlink(missing_ok=True)
