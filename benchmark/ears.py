"""How well guardd's ears generalise (issue 17): every frame's score of every wake model on the
evaluation's takes (corpus/ears.py) and on hours of negative speech, then any wake rule judged
on those scores without running the models again.

A rule is chosen on the tuning half only (its voices, its requests, the even-numbered negative
files) and reported on the held-out half (other voices and accents, other requests, the odd
negative files). The scores are stock openWakeWord's (guardd's detector scoring every frame);
a rule here fires exactly as guardd's detector would with the same settings
(tests/test_ears.py checks it against WakeDetector).

    python -m benchmark.ears [--negative-hours H] [--write-negatives NPZ]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from guardd.audioformat import FRAME_S
from guardd.listen.scores import Rule, score_frames

MODELS = ("alexa", "hey_jarvis")


def simple(name: str, threshold: float, frames: int) -> Rule:
    return Rule(name, {m: threshold for m in MODELS}, frames)


DEFAULT = simple("guardd default (0.7, 2 frames)", 0.7, 2)
STOCK = simple("stock openWakeWord (0.5, 1 frame)", 0.5, 1)


# -- scores ---------------------------------------------------------------------------------------


def trace(path: str) -> dict[str, np.ndarray]:
    """Every frame's score of every model on one WAV."""
    from corpus.audio import read_wav

    return score_frames(read_wav(Path(path)), list(MODELS))


def traces(paths: list[Path], cache: Path, workers: int = 2) -> dict[Path, dict[str, np.ndarray]]:
    """Scores of each file, computed once per machine (kept as .npz beside the cache)."""
    cache.mkdir(parents=True, exist_ok=True)

    def kept(p: Path) -> Path:
        key = hashlib.sha256(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}".encode()).hexdigest()[:20]
        return cache / f"{key}.npz"

    todo = [p for p in paths if not kept(p).is_file()]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for p, scores in zip(todo, pool.map(trace, [str(p) for p in todo], chunksize=4)):
            np.savez(kept(p), **scores)
    found = {}
    for p in paths:
        with np.load(kept(p)) as z:
            found[p] = {m: z[m] for m in MODELS}
    return found


# -- judging a rule -------------------------------------------------------------------------------


@dataclass
class Judged:
    recall: dict[str, tuple[int, int]]  # group -> (woken, takes)
    false_accepts: dict[str, int]  # model -> wakes on negatives
    hours: float
    real_hours: float
    real_false_accepts: int


def judge(rule: Rule, positives: list[tuple[dict[str, Any], dict[str, np.ndarray]]],
          negatives: list[tuple[bool, dict[str, np.ndarray]]]) -> Judged:
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for take, scores in positives:
        woke = bool(rule.wakes(take["model"], scores[take["model"]]))
        for group in ("all", f"model {take['model']}", f"family {take['family']}", f"condition {take['condition']}"):
            groups[group][0] += woke
            groups[group][1] += 1
    fa = {m: 0 for m in MODELS}
    frames = real_frames = real_fa = 0
    for real, scores in negatives:
        n = len(next(iter(scores.values())))
        frames += n
        real_frames += n if real else 0
        for m in MODELS:
            count = len(rule.wakes(m, scores[m]))
            fa[m] += count
            real_fa += count if real else 0
    return Judged({g: (w, t) for g, (w, t) in groups.items()}, fa, frames * FRAME_S / 3600,
                  real_frames * FRAME_S / 3600, real_fa)


def per_hour(judged: Judged, model: str) -> float:
    return judged.false_accepts[model] / judged.hours if judged.hours else 0.0


THRESHOLDS = [round(float(t), 2) for t in np.arange(0.30, 0.86, 0.05)]


def choose(positives: list[Any], negatives: list[Any], frames: int = 2, common: float = 0.7) -> Rule:
    """On the tuning half alone: for each model, going down from `common` in 0.05 steps (at
    `frames` frames), the last threshold before the tuning negatives' first false accept; a
    model that has one just under `common` keeps it. (No false accept, not "under 0.5 an hour": some six
    hours of negatives tell 0.5 an hour from none only by three wakes, and the halves differ.)"""
    thresholds = {m: common for m in MODELS}
    lowering = set(MODELS)
    for t in sorted((t for t in THRESHOLDS if t < common), reverse=True):  # down from `common`
        fa = judge(Rule("", {x: t for x in MODELS}, frames), [], negatives).false_accepts
        for m in list(lowering):
            if fa[m]:
                lowering.discard(m)  # the first false accept on the way down stops this model
            else:
                thresholds[m] = t
    return Rule("chosen on the tuning half: " + ", ".join(f"{m} {t}" for m, t in thresholds.items())
                + f", {frames} frames", thresholds, frames)


# -- the run --------------------------------------------------------------------------------------


def collect(negative_hours: float, say: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(positives by half, negatives by half), each a list of (take or real?, scores)."""
    from corpus import audio, ears, fixtures, realspeech

    cache = fixtures.cache_dir()
    directory = ears.make(cache, say=say)
    manifest = json.loads((directory / "manifest.json").read_text())
    takes = manifest["takes"]
    neg_paths = list(audio.negative_speech(cache, negative_hours)) if negative_hours else []
    real_paths = list(realspeech.variants(cache, say=say))
    paths = [directory / t["file"] for t in takes] + neg_paths + real_paths
    say(f"ears: scoring {len(paths)} files (cached after the first run)")
    scored = traces(paths, cache / "ears-traces")
    pos: dict[str, list[Any]] = {"tune": [], "held-out": []}
    neg: dict[str, list[Any]] = {"tune": [], "held-out": []}
    for t in takes:
        entry = (t, scored[directory / t["file"]])
        (pos if t["kind"] == "positive" else neg)[t["half"]].append(entry if t["kind"] == "positive" else (False, entry[1]))
    for i, p in enumerate(neg_paths):
        neg["tune" if i % 2 == 0 else "held-out"].append((False, scored[p]))
    for i, p in enumerate(real_paths):
        neg["tune" if i % 2 == 0 else "held-out"].append((True, scored[p]))
    return pos, neg


def _scores_and_windows(path: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from corpus.audio import read_wav
    from guardd.listen.negatives import FLOOR
    from guardd.listen.scores import scores_and_windows

    return scores_and_windows(read_wav(Path(path)), list(MODELS), FLOOR)


def write_negatives(path: Path, negative_hours: float, say: Any) -> None:
    """Every negative's kept scores and windows, for `guardd tune` (guardd/listen/negative_scores.npz)."""
    from corpus import audio, ears, fixtures, realspeech
    from guardd.listen import negatives

    cache = fixtures.cache_dir()
    directory = ears.make(cache, say=say)
    takes = json.loads((directory / "manifest.json").read_text())["takes"]
    files = [(False, directory / t["file"]) for t in takes if t["kind"] == "negative"]
    files += [(False, p) for p in audio.negative_speech(cache, negative_hours)]
    files += [(True, p) for p in realspeech.variants(cache, say=say)]
    say(f"ears: the windows of {len(files)} negative files")
    with ProcessPoolExecutor(max_workers=2) as pool:
        found = list(pool.map(_scores_and_windows, [str(p) for _, p in files], chunksize=4))
    negatives.write(path, [(real, scores, windows) for (real, _), (scores, windows) in zip(files, found)])


def report(pos: dict[str, Any], neg: dict[str, Any]) -> dict[str, Any]:
    chosen = choose(pos["tune"], neg["tune"])
    out: dict[str, Any] = {"rules": {}}
    for rule in (DEFAULT, STOCK, simple("0.5, 2 frames", 0.5, 2), chosen):
        held = judge(rule, pos["held-out"], neg["held-out"])
        tuned = judge(rule, pos["tune"], neg["tune"])
        out["rules"][rule.name] = {
            "thresholds": rule.thresholds, "frames": rule.frames,
            "held_out_recall": {g: f"{w}/{t}" for g, (w, t) in sorted(held.recall.items())},
            "tune_recall": f"{tuned.recall['all'][0]}/{tuned.recall['all'][1]}",
            "held_out_false_accepts_per_hour": {m: round(per_hour(held, m), 3) for m in MODELS},
            "held_out_negative_hours": round(held.hours, 2), "held_out_real_hours": round(held.real_hours, 2),
            "held_out_real_false_accepts": held.real_false_accepts,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.ears", description=__doc__.split("\n\n")[0])
    parser.add_argument("--negative-hours", type=float, default=1.0, help="hours of generated negative talk")
    parser.add_argument("--write-negatives", type=Path, metavar="NPZ",
                        help="also write every negative's kept scores for `guardd tune` (guardd/listen/negative_scores.npz)")
    args = parser.parse_args(argv)
    pos, neg = collect(args.negative_hours, lambda m: print(m, file=sys.stderr))
    if args.write_negatives:
        write_negatives(args.write_negatives, args.negative_hours, lambda m: print(m, file=sys.stderr))
    print(json.dumps(report(pos, neg), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
