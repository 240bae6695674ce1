"""What a wake rule costs in false wakes, from negative audio guardd ships as scores, not as
audio: every frame of hours of it that scored at least FLOOR on a built-in model, with where it
was (so runs of frames can be told) and its window. Two files, read the same way:

- REAL (real_negatives.npz): real recorded speech (corpus/realaudio.py) from the sources whose
  licences let guardd ship data derived from them (LICENSES.md beside this file: CC BY-SA 4.0),
  made by `python -m benchmark.realears --write-negatives`. Half 0 is of the evaluation's tuning
  part, half 1 of its held-out part (split by source: no speaker or recording on both sides).
  `guardd tune` quotes the cost of a threshold on half 1 and trains the owner's verifier on half 0.
- SHIPPED (negative_scores.npz): generated household talk and near misses in synthetic voices,
  and real recordings played across rooms, made by `python -m benchmark.ears --write-negatives`;
  the synthetic evaluation and the choice of the second looks read it. Its near misses are split
  as that evaluation splits their speakers, the generated talk by file, the real recordings by
  time, so no voice, file or recorded sentence is on both sides.

Every kept frame belongs to one of four parts: half 0 is parts 0 and 1, half 1 parts 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guardd.audioformat import FRAME_S
from guardd.listen.scores import REFRACTORY_FRAMES, second_look, wake_frames
from guardd.listen.verifier import SecondLook, Verifier

FLOOR = 0.15  # frames scoring below this are not kept: no rule worth choosing wakes on them
SHIPPED = Path(__file__).with_name("negative_scores.npz")  # generated talk (the synthetic evaluation)
REAL = Path(__file__).with_name("real_negatives.npz")  # real recorded speech: what guardd tune quotes


@dataclass(frozen=True)
class Kept:
    """One model's kept frames: their numbers (in order), scores, windows and parts."""

    frames: np.ndarray
    scores: np.ndarray
    windows: np.ndarray  # (n, rows, 96)
    parts: np.ndarray  # 0..3

    def at(self, frame: int) -> int:
        """The index of kept frame `frame` (only kept frames are ever asked for)."""
        return int(np.searchsorted(self.frames, frame))

    def part_of(self, frame: int) -> int:
        """The part of any frame: its own, or that of the newest kept frame before it (a wake
        falls on the frame after the one that was heard, which need not be kept; files are
        apart by a refractory time, so that frame is always of the same file)."""
        return int(self.parts[max(int(np.searchsorted(self.frames, frame, side="right")) - 1, 0)])


@dataclass(frozen=True)
class Negatives:
    hours: float
    real_hours: float  # of them, real recordings (the rest: generated talk)
    half_hours: tuple[float, float]
    real_half_hours: tuple[float, float]
    kept: dict[str, Kept]

    def wakes(self, model: str, threshold: float, frames: int, verifier: Verifier | None = None,
              look: SecondLook | None = None) -> list[int]:
        """The frames at which the rule wakes: `frames` frames in a row at or above `threshold`,
        with the refractory time, the owner's `verifier` and a second `look`, as the detector
        has them."""
        kept = self.kept[model]
        scores = np.zeros(int(kept.frames.max(initial=-1)) + 2, np.float32)  # a wake is due a frame later
        scores[kept.frames] = kept.scores
        windows = _Windows(kept)
        accepts = None if verifier is None else (lambda k: verifier.accepts(windows[k]))
        second = None if look is None else second_look(look, scores, windows)
        return wake_frames(scores, threshold, frames, accepts, second)

    def false_accepts(self, model: str, threshold: float, frames: int, verifier: Verifier | None = None,
                      half: int | None = None, look: SecondLook | None = None,
                      parts: tuple[int, ...] | None = None) -> int | None:
        """How many of wakes() fall in `half` (or `parts`; all without either); None when there
        are no scores for `model` or a threshold is under FLOOR."""
        lowest = min(threshold, look.threshold if look else threshold)
        if model not in self.kept or lowest < FLOOR:
            return None
        kept = self.kept[model]
        chosen = parts if parts is not None else (None if half is None else (2 * half, 2 * half + 1))
        found = self.wakes(model, threshold, frames, verifier, look)
        return sum(1 for k in found if chosen is None or kept.part_of(k) in chosen)

    def per_hour(self, model: str, threshold: float, frames: int, verifier: Verifier | None = None,
                 half: int | None = None, look: SecondLook | None = None) -> float | None:
        n = self.false_accepts(model, threshold, frames, verifier, half, look)
        hours = self.hours if half is None else self.half_hours[half]
        return None if n is None or not hours else n / hours

    def training_windows(self, model: str, parts: tuple[int, ...] = (0, 1)) -> np.ndarray:
        """The windows of half 0 (or of `parts`), for a verifier to learn what is not the wake word."""
        kept = self.kept[model]
        return kept.windows[np.isin(kept.parts, parts)]


class _Windows:
    def __init__(self, kept: Kept) -> None:
        self._kept = kept

    def __getitem__(self, frame: int) -> np.ndarray:
        return self._kept.windows[self._kept.at(frame)]


def write(path: Path, traces: list[tuple[bool, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]],
          sources: tuple[str, ...] = ()) -> None:
    """Keep every frame at or above FLOOR of each file's scores, with its window and part
    (`traces`: real?, each frame's part, scores, windows of the frames at FLOOR or more), files
    one after another with a refractory time between them (a run never spans two files);
    `sources` names what the audio came from (kept as `sources`, for its licence)."""
    offset, frames, real = 0, 0, 0
    half_frames, real_half_frames = [0, 0], [0, 0]
    arrays: dict[str, list[np.ndarray]] = {}
    for is_real, parts, scores, windows in traces:
        n = len(parts)
        for model, s in scores.items():
            where = np.flatnonzero(s >= FLOOR)
            arrays.setdefault(f"{model}.frames", []).append(where + offset)
            arrays.setdefault(f"{model}.scores", []).append(s[where].astype(np.float32))
            arrays.setdefault(f"{model}.parts", []).append(parts[where].astype(np.int8))
            arrays.setdefault(f"{model}.windows", []).append(windows[model].astype(np.float16))
        offset += n + REFRACTORY_FRAMES
        frames += n
        real += n if is_real else 0
        for h in (0, 1):
            n_half = int(np.isin(parts, (2 * h, 2 * h + 1)).sum())
            half_frames[h] += n_half
            real_half_frames[h] += n_half if is_real else 0
    out = {key: np.concatenate(parts) for key, parts in arrays.items()}
    out.update(hours=np.float64(frames * FRAME_S / 3600), real_hours=np.float64(real * FRAME_S / 3600),
               half_hours=np.array(half_frames, np.float64) * FRAME_S / 3600,
               real_half_hours=np.array(real_half_frames, np.float64) * FRAME_S / 3600,
               sources=np.array(sorted(sources), dtype=str))
    np.savez_compressed(path, **out)


def load(path: Path = SHIPPED) -> Negatives | None:
    """The shipped negatives, or None when the file is missing (a source tree never built)."""
    try:
        z = np.load(path)
    except OSError:
        return None
    with z:
        models = {key.split(".")[0] for key in z.files if key.endswith(".frames")}
        kept = {m: Kept(z[f"{m}.frames"], z[f"{m}.scores"], z[f"{m}.windows"].astype(np.float32), z[f"{m}.parts"])
                for m in models}
        halves, real = z["half_hours"].tolist(), z["real_half_hours"].tolist()
        return Negatives(float(z["hours"]), float(z["real_hours"]), tuple(halves), tuple(real), kept)
