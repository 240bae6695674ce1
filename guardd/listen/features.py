"""openWakeWord's feature pipeline, without importing openwakeword: the model files shipped in
its 0.4.0 wheel, and the first two of the three stages openwakeword.Model runs, with the same
buffers: audio -> melspectrogram.onnx -> embedding_model.onnx (the classifiers are in wake.py).
The package's import pulls in scipy and scikit-learn (about 125 MB and 1.5 s) for training
helpers guardd never uses.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from guardd import memory
from guardd.audioformat import FRAME_SAMPLES
from guardd.config.settings import BUILTIN_MODELS
from guardd.errors import ModelError
from guardd.listen import onnxrt

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

MEL_CONTEXT_SAMPLES = 480  # three 10 ms mel hops of look-back so the mel frames join up
MEL_WINDOW = 76  # mel frames per embedding window (about 775 ms)
MEL_STEP = 8  # mel frames per 80 ms frame


_BUILTIN_FILES = {
    "alexa": "alexa_v0.1.onnx",
    "hey_jarvis": "hey_jarvis_v0.1.onnx",
    "hey_mycroft": "hey_mycroft_v0.1.onnx",
}
# The wheel that carries the models, installed without its requirements (pyproject.toml,
# [tool.guardd] models, says the same; tests/test_dependencies.py checks).
MODELS_WHEEL = "openwakeword==0.4.0"
FEATURE_FILES = ("melspectrogram.onnx", "embedding_model.onnx")  # every wake word needs both


def install_models_command() -> str:
    """The one command that puts the shipped models, and nothing else, where guardd finds them."""
    return f"{sys.executable} -m pip install --no-deps --force-reinstall {MODELS_WHEEL}"


def _models_folder() -> Path | None:
    """Where the openwakeword wheel keeps its ONNX files, found without importing it."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "models"


def models_missing(names: tuple[str, ...] | list[str] = ()) -> str | None:
    """What is missing of the shipped files that every wake word and the built-in `names` need,
    or None when they are all there."""
    folder = _models_folder()
    if folder is None:
        return f"the wake word models are not installed (they come in the {MODELS_WHEEL} wheel)"
    for file in (*FEATURE_FILES, *(_BUILTIN_FILES[n] for n in names if n in _BUILTIN_FILES)):
        if not (folder / file).is_file():
            return f"the wake word model file {folder / file} is missing (it comes in the {MODELS_WHEEL} wheel)"
    return None


def shipped_models_dir(names: tuple[str, ...] | list[str] = ()) -> Path:
    """The folder of the shipped ONNX files; ModelError, naming the fix, when a needed one is
    missing."""
    missing = models_missing(names)
    folder = _models_folder()
    if missing is not None or folder is None:
        raise ModelError(f"{missing}; install them with: {install_models_command()}")
    return folder


def resolve_model(name_or_path: str) -> tuple[str, Path]:
    """Map a built-in model name or an .onnx path to (label, file). Nothing is downloaded."""
    if name_or_path in _BUILTIN_FILES:
        return name_or_path, shipped_models_dir((name_or_path,)) / _BUILTIN_FILES[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.suffix != ".onnx":
        raise ModelError(
            f"wake model {name_or_path!r}: not a built-in name ({', '.join(BUILTIN_MODELS)}) "
            "and not a path to an .onnx file"
        )
    if not path.is_file():
        raise ModelError(f"wake model {name_or_path!r}: no such file")
    shipped_models_dir()  # a model of your own still needs the shipped feature models
    return path.stem, path


def onnx_session(path: Path, fixed_dims: dict[str, int] | None = None) -> onnxruntime.InferenceSession:
    onnxruntime = onnxrt.load()  # its telemetry off first
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
    # it the three sessions of one wake word take about 10 MB less (see docs/performance.md).
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own non-builtin exception types
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc
    # Loading ran much code once (every CPU kernel registered, the graph optimised) and left
    # free space in the heap: handed back, the daemon peaks about 16 MB lower.
    memory.hand_back()
    return session


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
        self._mel = onnx_session(models / "melspectrogram.onnx")
        self._embed = onnx_session(models / "embedding_model.onnx")
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
