"""After a wake word: where the utterance starts and ends, found by webrtcvad on 10/20/30 ms
sub-frames, with a pre-roll so its first syllable is not clipped.

Works on sample counts, never on the wall clock, so `replay` and `run` cut the same audio.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from guardd.audioformat import SAMPLE_BYTES, SAMPLE_RATE
from guardd.config.settings import UtteranceConfig

ONSET_WINDOW_S = 0.3  # speech starts when this much recent audio is mostly voiced
WORD_GAP_S = 0.15  # a pause shorter than this is inside the request (between its words)
VOICED_RATIO = 0.9  # "mostly": the ratio py-webrtcvad's example endpointer uses both ways
WAKE_GAP_S = 0.09  # unvoiced audio that marks the end of the wake word itself
WAKE_LOOKBACK_S = 0.25  # the gap is searched from this long before the wake fired
WAKE_TAIL_MAX_S = 0.5  # no such gap this long after the wake: the request began with no pause


class Vad(Protocol):
    def is_speech(self, buf: bytes, sample_rate: int) -> bool: ...


def webrtc_vad(aggressiveness: int) -> Vad:
    import webrtcvad

    return webrtcvad.Vad(aggressiveness)


@dataclass(frozen=True)
class Utterance:
    """Speech kept after a wake: its PCM and where it lies, in seconds of audio."""

    pcm: bytes
    start: float
    end: float
    cut: bool  # True when max_length_s ended it rather than silence


@dataclass(frozen=True)
class NoSpeech:
    """Nobody spoke after the wake word before no_speech_timeout_s."""

    t: float


class Endpointer:
    """One utterance's worth of state; create one per wake.

    Holds the audio since WAKE_LOOKBACK_S + `pre_roll_s` before the wake. The wake word's end is
    the first WAKE_GAP_S of unvoiced audio from WAKE_LOOKBACK_S before the wake on (when the
    speaker ran straight on, the wake itself after WAKE_TAIL_MAX_S); the search for the
    request's start begins there. Then a window of
    ONSET_WINDOW_S of sub-frames triggers the start when VOICED_RATIO of it is voiced; the start
    is the window's first voiced sub-frame minus pre_roll_s, but never before that gap began, so
    a short pause after the wake word does not pull its tail in. While speaking, the utterance ends
    when VOICED_RATIO of the last trailing_silence_s is unvoiced, or at max_length_s.
    """

    def __init__(self, cfg: UtteranceConfig, vad: Vad, history: bytes, wake_t: float) -> None:
        self.cfg = cfg
        self._vad = vad
        self._sub_bytes = SAMPLE_RATE * cfg.vad_frame_ms // 1000 * SAMPLE_BYTES
        self._pcm = bytearray(history)  # audio from t0 on
        self._t0 = wake_t - len(history) / (SAMPLE_RATE * SAMPLE_BYTES)
        # The VAD scans from WAKE_LOOKBACK_S before the wake: the model often fires just after
        # the pause that follows the wake word has begun, or after the request has begun.
        lookback = int(WAKE_LOOKBACK_S * SAMPLE_RATE) * SAMPLE_BYTES
        self._scanned = max(0, len(history) - lookback)
        self._history_bytes = len(history)
        self._onset_window: deque[tuple[int, bool]] = deque(
            maxlen=max(1, round(ONSET_WINDOW_S * 1000 / cfg.vad_frame_ms))
        )
        self._silence_window: deque[bool] = deque(
            maxlen=max(1, round(cfg.trailing_silence_s * 1000 / cfg.vad_frame_ms))
        )
        self._start: int | None = None  # byte offset into _pcm where the utterance starts
        self._gap_frames = max(1, round(WAKE_GAP_S * 1000 / cfg.vad_frame_ms))
        self._quiet_run = 0  # consecutive unvoiced sub-frames since the wake
        self._wake_word_end: int | None = None  # byte offset where the gap after the wake word began
        self._since_wake_word: list[tuple[int, bool]] = []  # sub-frames scanned for the onset
        self.wake_t = wake_t

    def _t(self, offset: int) -> float:
        return self._t0 + offset / (SAMPLE_RATE * SAMPLE_BYTES)

    @property
    def speaking(self) -> bool:
        return self._start is not None

    def feed(self, frame: bytes) -> Utterance | NoSpeech | None:
        """Add audio; return the outcome once the utterance is over, else None."""
        self._pcm += frame
        while len(self._pcm) - self._scanned >= self._sub_bytes:
            offset = self._scanned
            sub = bytes(self._pcm[offset : offset + self._sub_bytes])
            self._scanned += self._sub_bytes
            voiced = self._vad.is_speech(sub, SAMPLE_RATE)
            outcome = self._step(offset, voiced)
            if outcome is not None:
                return outcome
        return None

    def _step(self, offset: int, voiced: bool) -> Utterance | NoSpeech | None:
        end = offset + self._sub_bytes
        pre_roll = int(self.cfg.pre_roll_s * SAMPLE_RATE) * SAMPLE_BYTES
        if self._start is None and self._wake_word_end is None:
            self._quiet_run = 0 if voiced else self._quiet_run + 1
            if self._quiet_run >= self._gap_frames:
                self._wake_word_end = end - self._gap_frames * self._sub_bytes
            elif self._t(end) - self.wake_t >= WAKE_TAIL_MAX_S:
                # Speech since the wake with no pause: the request started with the wake.
                self._start = max(0, self._history_bytes - pre_roll)
            return None
        if self._start is None:
            self._onset_window.append((offset, voiced))
            self._since_wake_word.append((offset, voiced))
            window = self._onset_window
            if len(window) == window.maxlen and sum(v for _, v in window) >= VOICED_RATIO * len(window):
                assert self._wake_word_end is not None  # the branch above ran until it was set
                # When the model fired late, inside the request, the "gap" found is a pause
                # between its words, and this costs the pre-roll: the request's start was lost
                # before the wake, not here.
                self._start = max(self._wake_word_end, self._onset() - pre_roll)
            elif self._t(end) - self.wake_t >= self.cfg.no_speech_timeout_s:
                return NoSpeech(self._t(end))
            return None
        self._silence_window.append(voiced)
        window_full = len(self._silence_window) == self._silence_window.maxlen
        unvoiced = len(self._silence_window) - sum(self._silence_window)
        if window_full and unvoiced >= VOICED_RATIO * len(self._silence_window):
            return self._finish(end, cut=False)
        max_bytes = int(self.cfg.max_length_s * SAMPLE_RATE) * SAMPLE_BYTES
        if end - self._start >= max_bytes:
            return self._finish(self._start + max_bytes, cut=True)
        return None

    def _onset(self) -> int:
        """Where the speech that triggered began: the first voiced sub-frame after the last pause
        of WORD_GAP_S or more, so a short first word ("set", "what's") before a short pause is
        not left out."""
        gap_frames = max(1, round(WORD_GAP_S * 1000 / self.cfg.vad_frame_ms))
        onset, quiet = None, 0
        for offset, voiced in reversed(self._since_wake_word):
            if voiced:
                onset, quiet = offset, 0
            else:
                quiet += 1
                if quiet >= gap_frames and onset is not None:
                    break
        assert onset is not None  # the window that triggered holds voiced sub-frames
        return onset

    def _finish(self, end: int, cut: bool) -> Utterance:
        assert self._start is not None
        return Utterance(bytes(self._pcm[self._start : end]), self._t(self._start), self._t(end), cut)
