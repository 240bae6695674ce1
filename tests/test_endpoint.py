"""Where a kept utterance starts: the pre-roll keeps the request's first syllable and never
reaches back into the wake word. The VAD here is a seam of ours: it calls a sub-frame voiced
when its samples are, so the audio can be drawn with exact edges."""

from __future__ import annotations

import numpy as np
import pytest

from guardd.config.settings import UtteranceConfig
from guardd.listen.endpoint import WAKE_LOOKBACK_S, Endpointer, Utterance

RATE = 16000
FRAME = 1280  # samples per 80 ms frame, as the core feeds them
HISTORY_S = 0.48  # what the core hands over at a wake (pre-roll plus look-back, in whole frames)


class SampleVad:
    """Voiced when most samples of the sub-frame are not zero."""

    def is_speech(self, buf: bytes, sample_rate: int) -> bool:
        x = np.frombuffer(buf, dtype="<i2")
        return np.count_nonzero(x) > len(x) // 2


def audio(spans: list[tuple[float, float]], total_s: float) -> np.ndarray:
    """Zeros with a tone over each (start, end) span, in seconds."""
    x = np.zeros(round(total_s * RATE), np.int16)
    for start, end in spans:
        n = round(end * RATE) - round(start * RATE)
        x[round(start * RATE) : round(end * RATE)] = (3000 * np.sin(np.arange(n) * 0.3) + 3001).astype(np.int16)
    return x


def kept(x: np.ndarray, wake_t: float) -> Utterance:
    cfg = UtteranceConfig()
    wake = round(wake_t * RATE)
    ep = Endpointer(cfg, SampleVad(), x[wake - round(HISTORY_S * RATE) : wake].tobytes(), wake_t)
    for first in range(wake, len(x) - FRAME + 1, FRAME):
        outcome = ep.feed(x[first : first + FRAME].tobytes())
        if outcome is not None:
            assert isinstance(outcome, Utterance)
            return outcome
    raise AssertionError("the utterance never ended")


# The wake fires at 0.96 s; the VAD scans from WAKE_LOOKBACK_S before it, on a 30 ms grid.
WAKE_T = 0.96
SCAN = WAKE_T - WAKE_LOOKBACK_S


@pytest.mark.parametrize("pause_s", [0.12, 0.15])
def test_a_short_pause_after_the_wake_word_bounds_the_pre_roll(pause_s):
    wake_word_end = SCAN + 0.12  # on the VAD's grid
    request = wake_word_end + pause_s
    x = audio([(0.3, wake_word_end), (request, request + 1.2)], total_s=4.0)
    utt = kept(x, WAKE_T)
    # pre_roll_s (0.2 s) would reach back past the pause into the wake word: it stops at the pause.
    assert utt.start == pytest.approx(wake_word_end, abs=1e-6)
    assert utt.start > request - UtteranceConfig().pre_roll_s


def test_after_a_long_pause_the_full_pre_roll_is_kept():
    wake_word_end = SCAN + 0.06
    request = wake_word_end + 0.6
    x = audio([(0.3, wake_word_end), (request, request + 1.2)], total_s=4.0)
    utt = kept(x, WAKE_T)
    assert utt.start == pytest.approx(request - UtteranceConfig().pre_roll_s, abs=0.03)
    assert utt.end >= request + 1.2
