"""Scores frame by frame, and wake rules judged on them: for `guardd tune` (how the owner's own
takes score, and what a rule would cost on negative speech) and for the benchmark's evaluation
of the ears. The scores are the detector's own (stock openWakeWord's); a Rule fires exactly where
WakeDetector with the same settings fires (tests/test_ears.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from guardd.audioformat import FRAME_S, FRAME_SAMPLES
from guardd.listen.verifier import SecondLook

REFRACTORY_FRAMES = round(2.0 / FRAME_S)  # wake.refractory_s's default, in frames


@dataclass(frozen=True)
class Rule:
    """Wake when `frames` frames in a row score at or above the model's threshold, or (with a
    second look for the model) on one frame that its verifier accepts."""

    name: str
    thresholds: dict[str, float] = field(hash=False)
    frames: int = 2
    second_looks: dict[str, SecondLook] = field(default_factory=dict, hash=False)

    def wakes(self, model: str, scores: np.ndarray, windows: dict[int, np.ndarray] | None = None) -> list[int]:
        """The frames at which this rule wakes on one model's scores, with the refractory time;
        `windows` (frame -> its window, for frames at a second look's threshold or more) when
        the model has a second look."""
        look = self.second_looks.get(model)
        second = None if look is None else second_look(look, scores, windows or {})
        return wake_frames(scores, self.thresholds[model], self.frames, second=second)


def second_look(look: SecondLook, scores: np.ndarray, windows: dict[int, np.ndarray]) -> Callable[[int], bool]:
    """Does frame k wake by the second look? Its score reaches the look's threshold and the
    verifier accepts its window."""
    return lambda k: bool(scores[k] >= look.threshold and look.accepts(windows[k]))


def wake_frames(scores: np.ndarray, threshold: float, frames: int,
                accepts: Callable[[int], bool] | None = None,
                second: Callable[[int], bool] | None = None) -> list[int]:
    """A run that meets the rule (`frames` in a row at `threshold`; with `accepts`, a verifier on
    frame k's window, the first such frame it accepts) wakes on its last frame, or with
    `frames` 1 on the frame after it; a frame for
    which `second` (a second look) says yes wakes at the first frame after it whose score falls
    (where the word has ended), as the detector does."""
    found: list[int] = []
    run, quiet_until = 0, -1
    pending: float | None = None  # the score a second look said yes to, while it still rises
    due = False  # the last frame met the rule
    for k, score in enumerate(scores):
        run = run + 1 if score >= threshold else 0
        if k <= quiet_until:
            continue
        woke = due
        if due:
            pass
        elif run >= frames and (accepts is None or accepts(k)):
            woke, due = frames > 1, frames == 1  # (one frame: wait for the next; see WakeDetector)
        elif pending is not None:
            woke = bool(score < pending)
            pending = max(pending, float(score))
        elif second is not None and second(k):
            pending = float(score)
        if woke:
            found.append(k)
            quiet_until = k + REFRACTORY_FRAMES - 1
            run, pending, due = 0, None, False
    return found


def held(scores: np.ndarray, frames: int) -> float:
    """The highest threshold at which `frames` frames in a row still reach it: the best, over
    every window of `frames` consecutive frames, of the window's lowest score."""
    if len(scores) < frames:
        return 0.0
    windows = np.lib.stride_tricks.sliding_window_view(scores, frames)
    return float(windows.min(axis=1).max())


def score_frames(samples: np.ndarray, models: list[str]) -> dict[str, np.ndarray]:
    """Every frame's score of every model on 16 kHz int16 audio (the detector scoring each frame)."""
    return scores_and_windows(samples, models, None)[0]


def scores_and_windows(samples: np.ndarray, models: list[str], floor: float | None
                       ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every frame's score of every model, and (with `floor`) the embedding window each model
    scored at every frame whose score reached `floor`, in order: (frames, rows, 96) float32."""
    from guardd.listen.wake import WakeDetector

    detector = WakeDetector(models, 2.0, trigger_frames=1, refractory_s=0.0)  # never wakes
    n = len(samples) // FRAME_SAMPLES
    out = {c.label: np.zeros(n, np.float32) for c in detector.classifiers}
    windows: dict[str, list[np.ndarray]] = {c.label: [] for c in detector.classifiers}
    for k in range(n):
        detector.process(samples[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], (k + 1) * FRAME_S)
        for clf in detector.classifiers:
            score = out[clf.label][k] = detector.last_scores.get(clf.label) or 0.0
            if floor is not None and score >= floor:
                windows[clf.label].append(detector.features.features(clf.rows)[0].copy())
    rows = {c.label: c.rows for c in detector.classifiers}
    return out, {m: np.array(w, np.float32).reshape(len(w), rows[m], 96) for m, w in windows.items()}
