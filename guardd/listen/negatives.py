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
from guardd.listen.verifier import Verifier

FLOOR = 0.15  # frames scoring below this are not kept: no rule worth choosing wakes on them
SHIPPED = Path(__file__).with_name("negative_scores.npz")


@dataclass(frozen=True)
class Negatives:
    hours: float
    real_hours: float  # of them, real recordings (the rest: generated talk)
    kept: dict[str, tuple[np.ndarray, np.ndarray]]  # model -> (frame numbers, scores), scores >= FLOOR
    windows: dict[str, np.ndarray]  # model -> the embedding window at each kept frame

    def false_accepts(self, model: str, threshold: float, frames: int, verifier: Verifier | None = None,
                      half: int | None = None) -> int | None:
        """Wakes of `frames` frames in a row at or above `threshold`, with the refractory time
        (and the verifier's say, as the detector has it); None when there are no scores for
        `model`. `half` (0 or 1): only the events of that half (event_half: the
        verifier trains on one, is judged on the other)."""
        if model not in self.kept or threshold < FLOOR or (verifier is not None and model not in self.windows):
            return None
        where, scores = self.kept[model]
        found, run, last, quiet_until = 0, 0, -2, -1
        for i in np.flatnonzero(scores >= threshold):
            k = int(where[i])
            run = run + 1 if k == last + 1 else 1
            last = k
            if k <= quiet_until or (half is not None and event_half(k) != half):
                continue
            if run >= frames and (verifier is None or verifier.accepts(self.windows[model][i])):
                found += 1
                quiet_until = k + REFRACTORY_FRAMES - 1
                run = 0
        return found

    def per_hour(self, model: str, threshold: float, frames: int, verifier: Verifier | None = None,
                 half: int | None = None) -> float | None:
        n = self.false_accepts(model, threshold, frames, verifier, half)
        hours = self.hours if half is None else self.hours / 2
        return None if n is None or not hours else n / hours

    def training_windows(self, model: str) -> np.ndarray:
        """The windows of half 0, for a verifier to learn what is not the owner."""
        where, _ = self.kept[model]
        return self.windows[model][[event_half(int(k)) == 0 for k in where]]


def event_half(frame: int) -> int:
    """Which half a kept frame belongs to: stretches of a minute, alternately, so the frames
    of one event stay in one half."""
    return (frame // 750) % 2


def write(path: Path, traces: list[tuple[bool, dict[str, np.ndarray], dict[str, np.ndarray]]]) -> None:
    """Keep every frame at or above FLOOR of each file's scores, and its window, files one
    after another with a refractory time between them (a run never spans two files)."""
    offset, frames, real = 0, 0, 0
    kept: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    windows: dict[str, list[np.ndarray]] = {}
    for is_real, scores, file_windows in traces:
        n = len(next(iter(scores.values())))
        for model, s in scores.items():
            where = np.flatnonzero(s >= FLOOR)
            kept.setdefault(model, []).append((where + offset, s[where].astype(np.float32)))
            if model in file_windows:
                windows.setdefault(model, []).append(file_windows[model].astype(np.float16))
        offset += n + REFRACTORY_FRAMES
        frames += n
        real += n if is_real else 0
    arrays = {"hours": np.float64(frames * FRAME_S / 3600), "real_hours": np.float64(real * FRAME_S / 3600)}
    for model, parts in kept.items():
        arrays[f"{model}.frames"] = np.concatenate([w for w, _ in parts]).astype(np.int64)
        arrays[f"{model}.scores"] = np.concatenate([s for _, s in parts])
        if model in windows:
            arrays[f"{model}.windows"] = np.concatenate(windows[model])
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
        windows = {m: z[f"{m}.windows"].astype(np.float32) for m in models if f"{m}.windows" in z.files}
        return Negatives(float(z["hours"]), float(z["real_hours"]), kept, windows)
