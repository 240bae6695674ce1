"""On-device wake word detection: openWakeWord's shipped ONNX models, run by a lean pipeline.

The models come from the openwakeword 0.4.0 wheel, but the package is never imported: its import
pulls in scipy and scikit-learn (about 125 MB and 1.5 s) for training helpers we never use.
Instead this module runs the same three stages openwakeword.Model runs, with the same buffers:
audio -> melspectrogram.onnx -> embedding_model.onnx -> one classifier per wake word.
tests/test_wake.py holds it to the stock scores within 1e-3 on every fixture.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from guardd.audioformat import FRAME_SAMPLES
from guardd.config.settings import BUILTIN_MODELS
from guardd.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

MEL_CONTEXT_SAMPLES = 480  # three 10 ms mel hops of look-back so the mel frames join up
MEL_WINDOW = 76  # mel frames per embedding window (about 775 ms)
MEL_STEP = 8  # mel frames per 80 ms frame
WARMUP_FRAMES = 5  # stock openwakeword reports 0.0 for each model's first five frames


_BUILTIN_FILES = {
    "alexa": "alexa_v0.1.onnx",
    "hey_jarvis": "hey_jarvis_v0.1.onnx",
    "hey_mycroft": "hey_mycroft_v0.1.onnx",
}


def shipped_models_dir() -> Path:
    """Where the openwakeword wheel keeps its ONNX files, found without importing it."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the openwakeword package is not installed; it carries the wake word models: "
            "pip install openwakeword==0.4.0"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "models"


def resolve_model(name_or_path: str) -> tuple[str, Path]:
    """Map a built-in model name or an .onnx path to (label, file). Nothing is downloaded."""
    if name_or_path in _BUILTIN_FILES:
        path = shipped_models_dir() / _BUILTIN_FILES[name_or_path]
        if not path.is_file():
            raise ModelError(
                f"wake model {name_or_path!r}: {path} is missing; reinstall openwakeword==0.4.0, "
                "the release that ships its models"
            )
        return name_or_path, path
    path = Path(name_or_path).expanduser()
    if path.suffix != ".onnx":
        raise ModelError(
            f"wake model {name_or_path!r}: not a built-in name ({', '.join(BUILTIN_MODELS)}) "
            "and not a path to an .onnx file"
        )
    if not path.is_file():
        raise ModelError(f"wake model {name_or_path!r}: no such file")
    return path.stem, path


def _session(path: Path, fixed_dims: dict[str, int] | None = None) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # A dimension left open in the file (a batch size) pinned to what we always feed lets the
    # graph optimiser fold away the shape arithmetic around it: hey_mycroft's two LSTMs are
    # wrapped in about twenty such nodes, and fixing its batch to 1 saves a tenth of its run time.
    for name, size in (fixed_dims or {}).items():
        options.add_free_dimension_override_by_name(name, size)
    # One thread each: inference stays on the core loop's thread and leaves the other cores to
    # the assistant and music that share the Pi.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # The inputs never change shape, so the arena would only hold memory we never reuse: without
    # it the three sessions of one wake word take about 10 MB less (see README "Performance").
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own non-builtin exception types
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc


class _Ring:
    """The newest `keep` rows of a stream, always contiguous so a window is a view, never a copy.

    Rows are written into a buffer with room for `keep` more; when it fills, the newest `keep`
    are moved to the front (one copy per `keep` rows appended). Rows are addressed by their
    absolute position in the stream (`total` is one past the newest).
    """

    def __init__(self, keep: int, shape: tuple[int, ...], fill: float, room: int) -> None:
        self.keep = keep
        self._buf = np.full((2 * keep + room, *shape), fill, dtype=np.float32)
        self._end = keep  # buffer index one past the newest row
        self.total = keep  # the fill counts as rows, so early windows see it (as stock's do)

    def claim(self, n: int) -> np.ndarray:
        """A view of the next `n` rows, to be written in place; they count as appended."""
        if self._end + n > len(self._buf):
            self._buf[: self.keep] = self._buf[self._end - self.keep : self._end]
            self._end = self.keep
        view = self._buf[self._end : self._end + n]
        self._end += n
        self.total += n
        return view

    def window(self, end: int, n: int) -> np.ndarray:
        """Rows [end - n, end) of the stream, as a view; they must still be among the kept."""
        stop = self._end - (self.total - end)
        if stop - n < self._end - self.keep or stop > self._end:
            raise IndexError(f"rows {end - n}..{end} are no longer kept")
        return self._buf[stop - n : stop]


RECEPTIVE_FRAMES = 10  # frames of audio one embedding row depends on: 76 mel rows, 480 samples back
STARTUP_FRAMES = 2  # from the third frame on, every frame adds exactly MEL_STEP mel rows


class FeatureExtractor:
    """Audio frames to speech embeddings, identical in numbers to openwakeword's AudioFeatures.

    Per 80 ms frame: one melspectrogram run over the frame plus 30 ms of look-back (8 mel frames),
    one embedding run over the last 76 mel frames (one 96-dim row). Buffers start as stock ones
    do (mel rows of 1.0, embeddings of silence) so scores match from the very first frame.

    Samples are taken by `push`; the models run in `catch_up`, which may be skipped for quiet
    frames. Catching up later recomputes, from the kept samples, every mel frame and embedding
    row the newest `history_rows` rows depend on, so rows are the same whether or not frames
    were skipped: a mel frame depends only on its 1760 samples, a row only on its 76 mel frames.
    """

    def __init__(self, history_rows: int) -> None:
        models = shipped_models_dir()
        self._mel = _session(models / "melspectrogram.onnx")
        self._embed = _session(models / "embedding_model.onnx")
        self.history_rows = history_rows
        self.embedding_runs = 0
        self.mel_runs = 0
        span = history_rows + RECEPTIVE_FRAMES  # frames a full catch-up recomputes
        self._samples = _Ring(span * FRAME_SAMPLES + MEL_CONTEXT_SAMPLES, (), 0.0, FRAME_SAMPLES)
        self._mel_rows = _Ring(MEL_WINDOW + span * MEL_STEP, (32,), 1.0, MEL_STEP)
        self.frames_in = 0  # frames whose samples were pushed
        self._frames_mel = 0  # frames whose mel rows are in _mel_rows
        self._frames_row = 0  # frames whose embedding row is in _rows
        silence = np.zeros(FRAME_SAMPLES + MEL_CONTEXT_SAMPLES, np.float32)
        silence_mel = self._melspectrogram(silence)
        silence_row = self._embedding(np.tile(silence_mel[:1], (MEL_WINDOW, 1)))
        self._rows = _Ring(history_rows, (96,), 0.0, 1)
        self._rows.window(self._rows.total, history_rows)[:] = silence_row
        self.mel_runs = self.embedding_runs = 0

    def _melspectrogram(self, samples: np.ndarray) -> np.ndarray:
        self.mel_runs += 1
        out = self._mel.run(None, {"input": samples[None, :]})[0]
        return np.squeeze(out, axis=(0, 1)) / 10.0 + 2.0  # stock's scaling toward Google's TF model

    def _embedding(self, window: np.ndarray) -> np.ndarray:
        self.embedding_runs += 1
        return self._embed.run(None, {"input_1": window[None, :, :, None]})[0].reshape(96)

    def push(self, frame: np.ndarray) -> None:
        """Keep one 80 ms frame of int16 samples; the models run in catch_up()."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"wake frames are {FRAME_SAMPLES} samples, got {frame.shape}")
        np.copyto(self._samples.claim(FRAME_SAMPLES), frame, casting="unsafe")
        self.frames_in += 1

    @property
    def behind(self) -> int:
        """Frames pushed whose embedding row is not computed yet."""
        return self.frames_in - self._frames_row

    def catch_up(self) -> None:
        """Compute the mel frames and embedding rows the newest `history_rows` rows need."""
        newest = self.frames_in
        span = self.history_rows + RECEPTIVE_FRAMES
        first_mel = max(self._frames_mel + 1, newest - span + 1)
        for frame in range(first_mel, newest + 1):
            end = self._samples.total - (newest - frame) * FRAME_SAMPLES
            # Stock keeps no samples before the first frame: its first window is shorter.
            length = min(FRAME_SAMPLES + MEL_CONTEXT_SAMPLES, frame * FRAME_SAMPLES)
            mel = self._melspectrogram(self._samples.window(end, length))
            self._mel_rows.claim(len(mel))[:] = mel
        self._frames_mel = newest
        first_row = max(self._frames_row + 1, newest - self.history_rows + 1)
        for frame in range(first_row, newest + 1):
            # After start-up (where nothing is skipped) every frame added MEL_STEP mel rows.
            end = self._mel_rows.total - (newest - frame) * MEL_STEP
            self._rows.claim(1)[0] = self._embedding(self._mel_rows.window(end, MEL_WINDOW))
        self._frames_row = newest

    def features(self, rows: int, back: int = 0) -> np.ndarray:
        """The `rows` embedding rows ending `back` frames before the newest, as a (1, rows, 96)
        float32 model input (a view)."""
        return self._rows.window(self._rows.total - back, rows)[None, :, :]


class Classifier:
    """One wake word model: its label, its input length in embedding rows, its session."""

    def __init__(self, label: str, path: Path) -> None:
        self.label = label
        self.path = path
        self._session = _session(path)
        inputs = self._session.get_inputs()
        shape = inputs[0].shape
        if len(shape) == 3 and isinstance(shape[0], str):  # an open batch size: we feed one window
            self._session = _session(path, {shape[0]: 1})
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

    A model fires when `trigger_frames` consecutive frames score at or above `threshold`. After a
    wake, every model is silent for `refractory_s`, and its count of frames above the threshold
    starts again from zero; frames are still fed to the models so their streaming state stays
    aligned with the audio.

    Every `trigger_frames` consecutive frames hold exactly one frame whose number is a multiple
    of `trigger_frames`, so a model is scored only on those "checkpoint" frames until one scores
    at or above the threshold; then the frames just before it are scored (their embedding rows
    are kept) to find where the run began, and every following frame is scored while the run
    lasts. The wakes, their frames and their scores are exactly those of scoring every frame
    (tests/test_wake.py checks it on every fixture), for 1/trigger_frames of the classifier runs.
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
    ) -> None:
        if not models:
            raise ModelError("no wake models configured")
        if trigger_frames < 1:
            raise ValueError(f"trigger_frames must be at least 1, got {trigger_frames}")
        self.classifiers = [Classifier(*resolve_model(m)) for m in models]
        # Rows for the newest window plus the trigger_frames - 1 windows a look-back may score.
        self.features = FeatureExtractor(max(c.rows for c in self.classifiers) + trigger_frames - 1)
        self.threshold = threshold
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
        self.last_scores: dict[str, float | None] = {}

    def _score(self, clf: Classifier, frame: int) -> float:
        self.classifier_runs += 1
        return clf.score(self.features, back=self._frames_seen - frame)

    def _run_from(self, clf: Classifier, frame: int) -> int | None:
        """Where the run of scores at or above the threshold that reaches `frame` began, counted
        from after the newest reset and at most trigger_frames back; None if `frame` is below."""
        started = self._run_start[clf.label]
        if started is None and frame % self.trigger_frames:
            self.last_scores[clf.label] = None  # no run can end here without a checkpoint in it
            return None
        score = self._score(clf, frame) if frame > self._reset_frame else 0.0
        self.last_scores[clf.label] = score
        if score < self.threshold:
            return None
        if started is None:  # a checkpoint: find the run's start among the frames just before
            started = frame
            floor = max(frame - self.trigger_frames + 1, self._reset_frame + 1)
            while started > floor and self._score(clf, started - 1) >= self.threshold:
                started -= 1
        return started

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
            for clf in self.classifiers:
                self.last_scores[clf.label] = 0.0
                self._run_start[clf.label] = None
            return None
        self.features.catch_up()
        best: Wake | None = None
        for clf in self.classifiers:
            started = self._run_start[clf.label] = self._run_from(clf, k)
            if started is not None and k - started + 1 >= self.trigger_frames and t >= self._quiet_until:
                score = self.last_scores[clf.label]
                assert score is not None
                if best is None or score > best.score:
                    best = Wake(clf.label, score, t)
        if best is not None:
            self._quiet_until = t + self.refractory_s
            self._reset_frame = k
            for label, started in self._run_start.items():
                if started is not None:
                    self._run_start[label] = k + 1  # the run goes on, its count from zero
        return best
