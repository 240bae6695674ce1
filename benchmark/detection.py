"""Detection: wake latency and recall on the positive fixtures, false accepts on hours of
negative speech (in worker processes, one a core as memory allows)."""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmark.machine import meminfo_mb
from corpus import audio as corpus_audio
from guardd.audioformat import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE
from guardd.config.settings import Config, WakeConfig
from guardd.listen.verifier import configured
from guardd.listen.wake import WakeDetector

WORKER_MB = 150  # what one false-accept worker needs: the models and a 10-minute file


def positives_run(fixtures: Path, manifest: dict[str, Any], config: Config) -> tuple[list[float], int, int]:
    """`replay` on each positive whose model is loaded: (latencies in seconds from the end of the
    spoken wake word to the wake event, which is when the LED goes on), woken, total."""
    from guardd.cli.replay import replay

    latencies: list[float] = []
    total = woken = 0
    for entry in manifest["positives"]:
        if entry["model"] not in config.wake.models:
            continue
        total += 1
        out = io.StringIO()
        replay(config, fixtures / entry["file"], json_out=True, out=out)
        wakes = [json.loads(line) for line in out.getvalue().splitlines()]
        wakes = [e for e in wakes if e["event"] == "wake" and e["model"] == entry["model"]]
        if wakes:
            woken += 1
            latencies.append(wakes[0]["t"] - entry["wake_end"])
    return latencies, woken, total


def _count_wakes(args: tuple[str, WakeConfig]) -> tuple[float, list[tuple[str, float]]]:
    path, wake = args
    x = corpus_audio.read_wav(Path(path))
    detector = WakeDetector(list(wake.models), wake.threshold, wake.trigger_frames, wake.refractory_s,
                            gate_silence=wake.gate_silence, thresholds=wake.per_model,
                            second_looks=configured(wake))
    wakes = []
    for k in range(len(x) // FRAME_SAMPLES):
        wake = detector.process(x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], (k + 1) * FRAME_S)
        if wake is not None:
            wakes.append((wake.model, round(wake.t, 2)))
    return len(x) / SAMPLE_RATE, wakes


def workers() -> int:
    """One worker a core, as many as the free memory holds (a Pi Zero 2 W has four cores and
    512 MB, shared with the assistant)."""
    available_mb = meminfo_mb("MemAvailable") or WORKER_MB
    return max(1, min(os.cpu_count() or 1, available_mb // WORKER_MB))


def false_accepts(paths: list[Path], wake: WakeConfig, workers: int) -> tuple[float, list[tuple[str, str, float]]]:
    """(hours of negative audio, every wake in it), the detector as `run` configures it."""
    jobs = [(str(p), wake) for p in paths]
    seconds = 0.0
    found: list[tuple[str, str, float]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for path, (s, wakes) in zip(paths, pool.map(_count_wakes, jobs)):
            seconds += s
            found += [(path.name, model, t) for model, t in wakes]
    return seconds / 3600, found
