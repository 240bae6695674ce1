"""What a wake rule costs in false accepts, from negative speech guardd ships as scores, not as
audio: every frame of hours of talk that scored at least FLOOR on a built-in model, with where it
was (so runs of frames can be told). Made by `python -m benchmark.ears --write-negatives` from
the evaluation's negatives (generated household talk and near misses in many voices, and real
recordings played across rooms); `guardd tune` reads it to say what a threshold would cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guardd.audioformat import FRAME_S
from guardd.listen.scores import REFRACTORY_FRAMES

FLOOR = 0.15  # frames scoring below this are not kept: no rule worth choosing wakes on them
SHIPPED = Path(__file__).with_name("negative_scores.npz")


@dataclass(frozen=True)
class Negatives:
    hours: float
    real_hours: float  # of them, real recordings (the rest: generated talk)
    kept: dict[str, tuple[np.ndarray, np.ndarray]]  # model -> (frame numbers, scores), scores >= FLOOR

    def false_accepts(self, model: str, threshold: float, frames: int) -> int | None:
        """Wakes of `frames` frames in a row at or above `threshold`, with the refractory time;
        None when there are no scores for `model`."""
        if model not in self.kept or threshold < FLOOR:
            return None
        where, scores = self.kept[model]
        found, run, last, quiet_until = 0, 0, -2, -1
        for k in where[scores >= threshold]:
            run = run + 1 if k == last + 1 else 1
            last = k
            if k <= quiet_until:
                continue
            if run >= frames:
                found += 1
                quiet_until = k + REFRACTORY_FRAMES - 1
                run = 0
        return found

    def per_hour(self, model: str, threshold: float, frames: int) -> float | None:
        n = self.false_accepts(model, threshold, frames)
        return None if n is None or not self.hours else n / self.hours


def write(path: Path, traces: list[tuple[bool, dict[str, np.ndarray]]]) -> None:
    """Keep every frame at or above FLOOR of each file's scores, files one after another with a
    refractory time between them (a run never spans two files)."""
    offset, frames, real = 0, 0, 0
    kept: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for is_real, scores in traces:
        n = len(next(iter(scores.values())))
        for model, s in scores.items():
            where = np.flatnonzero(s >= FLOOR)
            kept.setdefault(model, []).append((where + offset, s[where].astype(np.float32)))
        offset += n + REFRACTORY_FRAMES
        frames += n
        real += n if is_real else 0
    arrays = {"hours": np.float64(frames * FRAME_S / 3600), "real_hours": np.float64(real * FRAME_S / 3600)}
    for model, parts in kept.items():
        arrays[f"{model}.frames"] = np.concatenate([w for w, _ in parts]).astype(np.int64)
        arrays[f"{model}.scores"] = np.concatenate([s for _, s in parts])
    np.savez_compressed(path, **arrays)


def load(path: Path = SHIPPED) -> Negatives | None:
    """The shipped negatives, or None when the file is missing (a source tree never built)."""
    try:
        z = np.load(path)
    except OSError:
        return None
    with z:
        models = {key.split(".")[0] for key in z.files if key.endswith(".frames")}
        kept = {m: (z[f"{m}.frames"], z[f"{m}.scores"]) for m in models}
        return Negatives(float(z["hours"]), float(z["real_hours"]), kept)
