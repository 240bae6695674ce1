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

REFRACTORY_FRAMES = round(2.0 / FRAME_S)  # wake.refractory_s's default, in frames


@dataclass(frozen=True)
class Rule:
    """Wake when `frames` frames in a row score at or above the model's threshold."""

    name: str
    thresholds: dict[str, float] = field(hash=False)
    frames: int = 2

    def wakes(self, model: str, scores: np.ndarray) -> list[int]:
        """The frames at which this rule wakes on one model's scores, with the refractory time."""
        return wake_frames(scores, self.thresholds[model], self.frames)


def wake_frames(scores: np.ndarray, threshold: float, frames: int,
                accepts: Callable[[int], bool] | None = None) -> list[int]:
    """With `accepts` (a verifier on frame k's window), a run that meets the rule wakes at the
    first of its frames the verifier accepts, as the detector does."""
    found: list[int] = []
    run, quiet_until = 0, -1
    for k, score in enumerate(scores):
        run = run + 1 if score >= threshold else 0
        if k <= quiet_until:
            continue
        if run >= frames and (accepts is None or accepts(k)):
            found.append(k)
            quiet_until = k + REFRACTORY_FRAMES - 1
            run = 0
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
