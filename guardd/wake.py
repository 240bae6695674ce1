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
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from guardd.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # hertz
FRAME_SAMPLES = 1280  # 80 ms: the hop every openWakeWord model was trained on
MEL_CONTEXT_SAMPLES = 480  # three 10 ms mel hops of look-back so the mel frames join up
MEL_WINDOW = 76  # mel frames per embedding window (about 775 ms)
MEL_STEP = 8  # mel frames per 80 ms frame
WARMUP_FRAMES = 5  # stock openwakeword reports 0.0 for each model's first five frames

BUILTIN_MODELS = ("alexa", "hey_jarvis", "hey_mycroft")
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


def _session(path: Path) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread each: inference stays on the core loop's thread and leaves the other cores to
    # the assistant and music that share the Pi.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own non-builtin exception types
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc


class FeatureExtractor:
    """Audio frames to speech embeddings, identical in numbers to openwakeword's AudioFeatures.

    Per 80 ms frame: one melspectrogram run over the frame plus 30 ms of look-back (8 mel frames),
    one embedding run over the last 76 mel frames (one 96-dim row). Buffers start as stock ones
    do (mel rows of 1.0, embeddings of silence) so scores match from the very first frame.
    """

    def __init__(self, history_rows: int) -> None:
        models = shipped_models_dir()
        self._mel = _session(models / "melspectrogram.onnx")
        self._embed = _session(models / "embedding_model.onnx")
        self.embedding_runs = 0
        self._samples = np.zeros(0, dtype=np.float32)
        self._mel_rows = np.ones((MEL_WINDOW, 32), dtype=np.float32)
        silence_mel = self._melspectrogram(np.zeros(FRAME_SAMPLES + MEL_CONTEXT_SAMPLES, np.float32))
        silence_row = self._embedding(np.tile(silence_mel[:1], (MEL_WINDOW, 1)))
        self.history_rows = history_rows
        self._rows: deque[np.ndarray] = deque(
            [silence_row] * history_rows, maxlen=history_rows
        )

    def _melspectrogram(self, samples: np.ndarray) -> np.ndarray:
        out = self._mel.run(None, {"input": samples[None, :]})[0]
        return np.squeeze(out, axis=(0, 1)) / 10.0 + 2.0  # stock's scaling toward Google's TF model

    def _embedding(self, window: np.ndarray) -> np.ndarray:
        self.embedding_runs += 1
        return self._embed.run(None, {"input_1": window[None, :, :, None]})[0].reshape(96)

    def push(self, frame: np.ndarray) -> None:
        """Add one 80 ms frame of int16 samples and compute its embedding row."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"wake frames are {FRAME_SAMPLES} samples, got {frame.shape}")
        self._samples = np.concatenate((self._samples, frame.astype(np.float32)))[
            -(FRAME_SAMPLES + MEL_CONTEXT_SAMPLES) :
        ]
        mel = self._melspectrogram(self._samples)
        self._mel_rows = np.concatenate((self._mel_rows, mel))[-MEL_WINDOW:]
        self._rows.append(self._embedding(self._mel_rows))

    def features(self, rows: int) -> np.ndarray:
        """The last `rows` embedding rows as a (1, rows, 96) float32 model input."""
        recent = list(self._rows)[-rows:]
        return np.stack(recent)[None, :, :].astype(np.float32)


class Classifier:
    """One wake word model: its label, its input length in embedding rows, its session."""

    def __init__(self, label: str, path: Path) -> None:
        self.label = label
        self.path = path
        self._session = _session(path)
        inputs = self._session.get_inputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 3 or shape[2] != 96 or not isinstance(shape[1], int):
            raise ModelError(
                f"wake model {path}: expected one input shaped [1, frames, 96] like openWakeWord's "
                f"models, got {shape}"
            )
        self.input_name = inputs[0].name
        self.rows: int = shape[1]

    def score(self, features: FeatureExtractor) -> float:
        out = self._session.run(None, {self.input_name: features.features(self.rows)})[0]
        return float(np.asarray(out).reshape(-1)[0])


@dataclass(frozen=True)
class Wake:
    """A wake word heard: which model, its score, at which frame end (seconds of audio)."""

    model: str
    score: float
    t: float


class WakeDetector:
    """Threshold, trigger count and refractory time over the per-frame scores.

    A model fires when `trigger_frames` consecutive frames score at or above `threshold`. After a
    wake, every model is silent for `refractory_s`, but frames are still fed to the models so
    their streaming state stays aligned with the audio.
    """

    def __init__(
        self,
        models: list[str],
        threshold: float,
        trigger_frames: int = 1,
        refractory_s: float = 2.0,
    ) -> None:
        if not models:
            raise ModelError("no wake models configured")
        self.classifiers = [Classifier(*resolve_model(m)) for m in models]
        self.features = FeatureExtractor(max(c.rows for c in self.classifiers))
        self.threshold = threshold
        self.trigger_frames = trigger_frames
        self.refractory_s = refractory_s
        self._frames_seen = 0
        self._streak = {c.label: 0 for c in self.classifiers}
        self._quiet_until = float("-inf")
        self.last_scores: dict[str, float] = {}

    def process(self, frame: np.ndarray, t: float) -> Wake | None:
        """Feed one 80 ms frame ending at audio time `t`; return a Wake if one fires."""
        self.features.push(frame)
        self._frames_seen += 1
        best: Wake | None = None
        for clf in self.classifiers:
            score = clf.score(self.features) if self._frames_seen > WARMUP_FRAMES else 0.0
            self.last_scores[clf.label] = score
            self._streak[clf.label] = self._streak[clf.label] + 1 if score >= self.threshold else 0
            if self._streak[clf.label] >= self.trigger_frames and t >= self._quiet_until:
                if best is None or score > best.score:
                    best = Wake(clf.label, score, t)
        if best is not None:
            self._quiet_until = t + self.refractory_s
            for label in self._streak:
                self._streak[label] = 0
        return best
