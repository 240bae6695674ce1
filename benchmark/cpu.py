"""CPU: openWakeWord's ONNX sessions alone against guardd's whole pipeline on the same audio,
extra wake models against the pipeline without them, and a quiet room with the silence gate on
and off."""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from corpus import audio as corpus_audio
from guardd.audioformat import FRAME_S, FRAME_SAMPLES
from guardd.config.settings import Config, WakeConfig
from guardd.listen.features import MEL_STEP, MEL_WINDOW
from guardd.listen.wake import WakeDetector


class Frames:
    """Audio as the 80 ms blocks of bytes the microphone delivers, each made when it is fed: a
    list of them all would hold an hour of audio twice over (230 MB more), too much for a Pi."""

    def __init__(self, x: np.ndarray) -> None:
        self._x = np.ascontiguousarray(x[: len(x) // FRAME_SAMPLES * FRAME_SAMPLES], dtype="<i2")

    def __len__(self) -> int:
        return len(self._x) // FRAME_SAMPLES

    def span(self, first: int, count: int) -> Iterator[bytes]:
        for k in range(first, min(first + count, len(self))):
            yield self._x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES].tobytes()


def bench_config(state: Path, wake: WakeConfig, models: list[str], gate: bool) -> Config:
    """A config for one measured pipeline: `wake` (the rule measured) with these models."""
    return Config(state_dir=str(state), wake=replace(wake, models=tuple(models), gate_silence=gate))


def pipeline_cpu(config: Config, frames: Frames) -> float:
    """CPU seconds of the whole `replay` pipeline over `frames` (models loaded beforehand): frames,
    wake detector, endpointer and VAD after each wake, the gate and the log, as `replay` drives
    them, in this process (time.process_time counts every thread)."""
    return pipelines_cpu([config], frames, len(frames))[0][0]


def pipelines_cpu(configs: list[Config], frames: Frames, chunk: int) -> list[list[float]]:
    """CPU seconds of each config's pipeline (as pipeline_cpu) over each `chunk` frames: all
    pipelines are open at once and take turns chunk by chunk, so a moment when the machine is
    busy costs every config alike and their ratios can be taken chunk by chunk."""
    from guardd.device.panel import mock_factory
    from guardd.pipeline import open_pipeline

    clocks = [0.0] * len(configs)
    spent: list[list[float]] = [[] for _ in configs]
    with contextlib.ExitStack() as stack:
        cores = []
        for i, config in enumerate(configs):
            p = stack.enter_context(open_pipeline(
                config, pin_factory=mock_factory(), clock=lambda i=i: clocks[i],
                on_edge=lambda edge: None, emit=lambda event: None, blink_thread=False))
            p.core.start(mode="bench")
            cores.append(p.core)
        for first in range(0, len(frames), chunk):
            for i, core in enumerate(cores):
                started = time.process_time()
                for frame in frames.span(first, chunk):
                    clocks[i] = round(clocks[i] + FRAME_S, 6)
                    core.on_audio(frame)
                    core.tick()
                spent[i].append(time.process_time() - started)
        for core in cores:
            core.stop("end of benchmark")
    return spent


def quiet_room_cpu(minutes: float, repeats: int, gated: Config, plain: Config) -> tuple[float, float, float]:
    """(seconds of quiet room audio, median CPU seconds with the gate on, with it off). The audio
    (115 MB an hour) is gone when this returns, not carried into the worker processes after."""
    quiet = Frames(corpus_audio.room_noise(minutes * 60))
    on = median_of(repeats, lambda: pipeline_cpu(gated, quiet))
    off = median_of(repeats, lambda: pipeline_cpu(plain, quiet))
    return len(quiet) * FRAME_S, on, off


def raw_inference_cpu(wake: WakeConfig, models: list[str], x: np.ndarray) -> float:
    """CPU seconds inside the ONNX sessions alone: the same sessions run on the same inputs, in the
    same order, as an ungated pipeline gives them (recorded in a first pass: every melspectrogram
    and embedding run, and the classifier runs the wake rule asks for), back to back."""
    detector = WakeDetector(models, wake.threshold, wake.trigger_frames, wake.refractory_s)
    features = detector.features
    n = len(x) // FRAME_SAMPLES
    # Recorded into arrays made up front: thousands of small arrays kept between session runs
    # leave holes in the C heap that the sessions' next buffers do not fit, and the process grew
    # by 0.4 MB a frame (4.5 GB for the 1010 s) this way.
    mels = np.ones((MEL_WINDOW + (n + 1) * MEL_STEP, 32), np.float32)  # stock's first rows are 1.0
    mel_ends = np.empty(n, np.int64)
    filled = MEL_WINDOW
    record = features._melspectrogram

    def recording(samples: np.ndarray) -> np.ndarray:
        nonlocal filled
        out = record(samples)
        mels[filled : filled + len(out)] = out
        filled += len(out)
        return out

    features._melspectrogram = recording  # type: ignore[method-assign]
    calls: list[list[tuple[int, int]]] = []  # per frame: (classifier, frames back) in run order
    for i, clf in enumerate(detector.classifiers):
        def scoring(feats: Any, back: int = 0, i: int = i, score: Callable[..., float] = clf.score) -> float:
            calls[-1].append((i, back))
            return score(feats, back)

        clf.score = scoring  # type: ignore[method-assign]
    history = features.history_rows
    rows = np.empty((history + n, 96), np.float32)
    rows[:history] = features.features(history)[0]  # the silence rows stock starts with
    for k in range(n):
        calls.append([])
        detector.process(x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], (k + 1) * FRAME_S)
        assert features.mel_runs == k + 1  # ungated: one melspectrogram run a frame
        mel_ends[k] = filled
        rows[history + k] = features.features(1)[0, 0]
    samples = x[: n * FRAME_SAMPLES].astype(np.float32)
    mel_session, embed_session = features._mel, features._embed
    classifiers = [(c._session, c.input_name, c.rows) for c in detector.classifiers]
    started = time.thread_time()
    for k in range(n):
        end = (k + 1) * FRAME_SAMPLES
        mel_session.run(None, {"input": samples[max(0, end - FRAME_SAMPLES - 480) : end][None, :]})
        end = mel_ends[k]
        embed_session.run(None, {"input_1": mels[end - MEL_WINDOW : end][None, :, :, None]})
        for i, back in calls[k]:
            session, name, width = classifiers[i]
            last = history + k + 1 - back
            session.run(None, {name: rows[last - width : last][None]})
    return time.thread_time() - started


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeats))
