"""On-device wake word detection: one classifier per wake word over the shared features
(listen/features.py), a silence gate, and the wake rule (threshold, trigger frames, refractory
time). tests/test_wake.py holds the scores to stock openwakeword's within 1e-3 on every fixture.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from guardd.errors import ModelError
from guardd.listen.features import RECEPTIVE_FRAMES, FeatureExtractor, onnx_session, resolve_model
from guardd.listen.verifier import SecondLook, Verifier

log = logging.getLogger(__name__)

WARMUP_FRAMES = 5  # stock openwakeword reports 0.0 for each model's first five frames


class Classifier:
    """One wake word model: its label, its input length in embedding rows, its session."""

    def __init__(self, label: str, path: Path) -> None:
        self.label = label
        self.path = path
        self._session = onnx_session(path)
        inputs = self._session.get_inputs()
        shape = inputs[0].shape
        if len(shape) == 3 and isinstance(shape[0], str):  # an open batch size: we feed one window
            self._session = onnx_session(path, {shape[0]: 1})
            inputs = self._session.get_inputs()
            shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 3 or shape[2] != 96 or not isinstance(shape[1], int):
            raise ModelError(
                f"wake model {path}: expected one input shaped [1, frames, 96] like openWakeWord's "
                f"models, got {shape}"
            )
        self.input_name = inputs[0].name
        self.rows: int = shape[1]

    def score(self, features: FeatureExtractor, back: int = 0) -> float:
        """The score of the window ending `back` frames before the newest."""
        out = self._session.run(None, {self.input_name: features.features(self.rows, back)})[0]
        return float(out.reshape(-1)[0])


class EnergyGate:
    """Is there anything in this frame but the room's own noise?

    A frame is loud when its loudest 10 ms is more than MARGIN_DB above the noise floor, or above
    CEILING_DBFS whatever the floor. The floor is the lowest frame energy (80 ms mean) of the last
    FLOOR_FRAMES frames (about 5 s; "minimum statistics"): speech always has gaps, so it barely
    lifts the floor, while a fan that starts is learnt within 5 s. The ceiling bounds what a
    high floor can hide: nothing with a 10 ms stretch over -40 dBFS is ever skipped. Quiet frames
    cost only this test; see WakeDetector for why skipping them never changes a computed score.
    """

    SUBFRAME = 160  # samples: 10 ms
    MARGIN_DB = 10.0
    CEILING_DBFS = -40.0
    FLOOR_FRAMES = 64  # 5.12 s
    START_DBFS = -60.0  # the floor assumed until the room is heard

    def __init__(self) -> None:
        self._levels = np.full(self.FLOOR_FRAMES, self.START_DBFS)
        self._next = 0
        self._full_scale = self.SUBFRAME * 32768.0**2  # sum of squares of a full-scale 10 ms

    @property
    def floor_db(self) -> float:
        return float(self._levels.min())

    def loud(self, frame: np.ndarray) -> bool:
        x = frame.astype(np.float32).reshape(-1, self.SUBFRAME)
        energy = np.einsum("ij,ij->i", x, x)
        loudest = 10.0 * math.log10(max(float(energy.max()) / self._full_scale, 1e-10))
        loud = loudest > min(self.floor_db + self.MARGIN_DB, self.CEILING_DBFS)
        mean = float(energy.sum()) / (len(energy) * self._full_scale)
        self._levels[self._next] = 10.0 * math.log10(max(mean, 1e-10))
        self._next = (self._next + 1) % self.FLOOR_FRAMES
        return loud


@dataclass(frozen=True)
class Wake:
    """A wake word heard: which model, its score, at which frame end (seconds of audio)."""

    model: str
    score: float
    t: float


class WakeDetector:
    """Threshold, trigger count and refractory time over the per-frame scores.

    A model fires when `trigger_frames` consecutive frames scored at or above its threshold
    (`thresholds[label]`, else `threshold`) and its owner's verifier, if it has one, accepted;
    with `trigger_frames` 1 it fires on the frame after: one frame at 0.5 is often reached while
    the word is still being said, and the endpointer must not take the word's tail for the
    request (tests/test_detection.py), while a run of two is the word said, and the 80 ms
    would only delay the LED. With a
    second look (listen/verifier.py), it also fires when one frame at or above the look's
    threshold that the look's verifier accepts is followed by a frame whose score falls: the
    look can say yes earlier still, and that wake waits for the word's end. After a
    wake, every model is silent for `refractory_s`, and its count of frames above the threshold
    starts again from zero; frames are still fed to the models so their streaming state stays
    aligned with the audio.

    Every `trigger_frames` consecutive frames hold exactly one frame whose number is a multiple
    of `trigger_frames`, so a model is scored only on those "checkpoint" frames until one scores
    at or above the threshold; then the frames just before it are scored (their embedding rows
    are kept) to find where the run began, and every following frame is scored while the run
    lasts. The wakes, their frames and their scores are exactly those of scoring every frame
    (tests/test_wake.py checks it on every fixture at the default rule), for 1/trigger_frames of the classifier runs.
    A model with a second look is scored on every frame: one frame can wake it.
    `last_scores` holds the scores computed for the newest frame (None: not needed, not run).

    With `gate_silence`, the models run only while some frame within reach of the score is loud
    (EnergyGate). A score at frame k depends on the audio of frames k - rows - 9 .. k (rows
    embedding rows, each over ten frames of audio), so the models run for `hangover` frames after
    the last loud one, and the first run after a quiet stretch first recomputes the rows it needs
    from the kept samples. Hence, exactly: every score whose audio holds a loud frame equals the
    ungated score, and only scores over nothing but quiet audio are skipped (reported as 0.0).
    tests/test_wake.py checks this, and that every positive fixture still wakes.
    """

    def __init__(
        self,
        models: list[str],
        threshold: float,
        trigger_frames: int = 1,
        refractory_s: float = 2.0,
        *,
        gate_silence: bool = False,
        thresholds: Mapping[str, float] | None = None,
        verifiers: Mapping[str, Verifier] | None = None,
        second_looks: Mapping[str, SecondLook] | None = None,
    ) -> None:
        if not models:
            raise ModelError("no wake models configured")
        if trigger_frames < 1:
            raise ValueError(f"trigger_frames must be at least 1, got {trigger_frames}")
        self.classifiers = [Classifier(*resolve_model(m)) for m in models]
        # Rows for the newest window plus the trigger_frames - 1 windows a look-back may score.
        self.features = FeatureExtractor(max(c.rows for c in self.classifiers) + trigger_frames - 1)
        self.threshold = threshold
        self.thresholds = {c.label: (thresholds or {}).get(c.label, threshold) for c in self.classifiers}
        self.verifiers = dict(verifiers or {})  # label -> the owner's verifier (listen/verifier.py)
        self.second_looks = dict(second_looks or {})  # label -> a shipped verifier's second look
        self.trigger_frames = trigger_frames
        self.refractory_s = refractory_s
        self.gate = EnergyGate() if gate_silence else None
        self.hangover = self.features.history_rows + RECEPTIVE_FRAMES
        self._last_loud = 0  # the first `hangover` frames always run (and start-up is never skipped)
        self._frames_seen = 0
        self.skipped_frames = 0
        self.classifier_runs = 0
        # Per model: the first frame of its current run of scores at or above the threshold, when
        # that run reaches the newest frame scored; None when there is no such run.
        self._run_start: dict[str, int | None] = {c.label: None for c in self.classifiers}
        # Scores of frames up to here are zero for the wake rule: warm-up, the newest frame
        # skipped as quiet, or the newest wake (after which every count starts again).
        self._reset_frame = WARMUP_FRAMES
        self._quiet_until = float("-inf")
        self._pending: dict[str, float] = {}  # label -> the score a second look said yes to, rising
        self._due: dict[str, float] = {}  # label -> the score of a run that met the rule last frame
        self.last_scores: dict[str, float | None] = {}

    def _score(self, clf: Classifier, frame: int) -> float:
        self.classifier_runs += 1
        return clf.score(self.features, back=self._frames_seen - frame)

    def _run_from(self, clf: Classifier, frame: int) -> int | None:
        """Where the run of scores at or above the threshold that reaches `frame` began, counted
        from after the newest reset and at most trigger_frames back; None if `frame` is below."""
        started = self._run_start[clf.label]
        if started is None and frame % self.trigger_frames and clf.label not in self.second_looks:
            self.last_scores[clf.label] = None  # no run can end here without a checkpoint in it
            return None
        threshold = self.thresholds[clf.label]
        score = self._score(clf, frame) if frame > self._reset_frame else 0.0
        self.last_scores[clf.label] = score
        if score < threshold:
            return None
        if started is None:  # a checkpoint: find the run's start among the frames just before
            started = frame
            floor = max(frame - self.trigger_frames + 1, self._reset_frame + 1)
            while started > floor and self._score(clf, started - 1) >= threshold:
                started -= 1
        return started

    def _verified(self, clf: Classifier) -> bool:
        """A run that meets the rule wakes only if the model's verifier, if it has one, takes
        the newest window for the wake word as the owner says it; the run goes on, so a later
        frame of it may."""
        verifier = self.verifiers.get(clf.label)
        return verifier is None or verifier.accepts(self.features.features(clf.rows)[0])

    def _second_look(self, clf: Classifier) -> bool:
        """Does the second look say yes to the newest frame: a score at or above the look's
        threshold, and the look's verifier accepting the window?"""
        look = self.second_looks.get(clf.label)
        score = self.last_scores.get(clf.label)
        return (look is not None and score is not None and score >= look.threshold
                and look.accepts(self.features.features(clf.rows)[0]))

    def process(self, frame: np.ndarray, t: float) -> Wake | None:
        """Feed one 80 ms frame ending at audio time `t`; return a Wake if one fires."""
        self.features.push(frame)
        self._frames_seen += 1
        k = self._frames_seen
        if self.gate is None or self.gate.loud(frame):
            self._last_loud = k
        if k - self._last_loud >= self.hangover:
            # Nothing but room noise within reach of any score: no model runs.
            self.skipped_frames += 1
            self._reset_frame = k
            self._pending.clear()
            self._due.clear()
            for clf in self.classifiers:
                self.last_scores[clf.label] = 0.0
                self._run_start[clf.label] = None
            return None
        self.features.catch_up()
        best: Wake | None = None
        for clf in self.classifiers:
            started = self._run_start[clf.label] = self._run_from(clf, k)
            if t < self._quiet_until:
                continue
            score = self.last_scores[clf.label]
            woke = False
            if clf.label in self._due:
                woke = True
                score = max(self._due[clf.label], score or 0.0)
            elif started is not None and k - started + 1 >= self.trigger_frames and self._verified(clf):
                if self.trigger_frames > 1:
                    woke = True  # a run of frames is the word said, not begun
                else:
                    self._due[clf.label] = score  # one frame: the wake is the next frame's
            elif clf.label in self._pending:
                assert score is not None  # a model with a second look is scored on every frame
                woke = score < self._pending[clf.label]
                score = self._pending[clf.label] = max(self._pending[clf.label], score)
            elif self._second_look(clf):
                self._pending[clf.label] = score
            if woke:
                assert score is not None
                if best is None or score > best.score:
                    best = Wake(clf.label, score, t)
        if best is not None:
            self._quiet_until = t + self.refractory_s
            self._reset_frame = k
            self._pending.clear()
            self._due.clear()
            for label, started in self._run_start.items():
                if started is not None:
                    self._run_start[label] = k + 1  # the run goes on, its count from zero
        return best
