"""How well guardd's ears generalise (issue 17): every frame's score of every wake model on the
evaluation's takes (corpus/ears.py), with the embedding window of every frame that scored, then
any wake rule judged on those scores without running the models again; false accepts on the
negative speech guardd ships as scores and windows (guardd/listen/negatives.py).

A rule is chosen on the tuning half only (its voices, its requests, half 0 of the shipped
negatives) and reported on the held-out half (other voices and accents, other requests, half 1).
The scores are stock openWakeWord's (guardd's detector scoring every frame); a rule here fires
exactly as guardd's detector would with the same settings (tests/test_ears.py and
tests/test_second_look.py check it against WakeDetector); `--write-negatives` remakes the
generated negatives guardd ships. This synthetic evaluation is no longer the headline
(benchmark/realears.py judges on real audio and trains the looks guardd ships).

    python -m benchmark.ears [--write-negatives NPZ [--negative-hours H]]
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

from guardd.config.settings import WakeConfig
from guardd.listen.negatives import FLOOR, Negatives
from guardd.listen.negatives import load as load_negatives
from guardd.listen.scores import Rule, scores_and_windows
from guardd.listen.verifier import shipped

MODELS = ("alexa", "hey_jarvis")


def simple(name: str, threshold: float, frames: int) -> Rule:
    return Rule(name, {m: threshold for m in MODELS}, frames)


DEFAULT = simple("0.7, 2 frames (the default before issue 29)", 0.7, 2)
STOCK = simple("stock openWakeWord (0.5, 1 frame)", 0.5, 1)


# -- scores ---------------------------------------------------------------------------------------

Trace = tuple[dict[str, np.ndarray], dict[str, dict[int, np.ndarray]]]  # scores; frame -> window


def trace(path: str) -> Trace:
    """Every frame's score of every model on one WAV, and the window of each frame at FLOOR or more."""
    scores, windows = _scores_and_windows(path)
    return scores, {m: dict(zip(np.flatnonzero(scores[m] >= FLOOR).tolist(), windows[m])) for m in MODELS}


def traces(paths: list[Path], cache: Path, workers: int = 2) -> dict[Path, Trace]:
    """Scores and windows of each file, computed once per machine (kept as .npz in `cache`)."""
    cache.mkdir(parents=True, exist_ok=True)

    def kept(p: Path) -> Path:
        key = hashlib.sha256(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}".encode()).hexdigest()[:20]
        return cache / f"{key}.npz"

    todo = [p for p in paths if not kept(p).is_file()]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for p, (scores, windows) in zip(todo, pool.map(trace, [str(p) for p in todo], chunksize=4)):
            arrays = {m: scores[m] for m in MODELS}
            for m in MODELS:
                arrays[f"{m}.frames"] = np.array(sorted(windows[m]), np.int64)
                arrays[f"{m}.windows"] = np.array([windows[m][k] for k in sorted(windows[m])], np.float32)
            np.savez(kept(p), **arrays)
    found = {}
    for p in paths:
        with np.load(kept(p)) as z:
            found[p] = ({m: z[m] for m in MODELS},
                        {m: dict(zip(z[f"{m}.frames"].tolist(), z[f"{m}.windows"])) for m in MODELS})
    return found


# -- judging a rule -------------------------------------------------------------------------------

Take = tuple[dict[str, Any], Trace]


@dataclass
class Judged:
    recall: dict[str, tuple[int, int]]  # group -> (woken, takes)
    false_accepts: dict[str, int]  # model -> wakes on the negatives' half
    hours: float
    near_misses: tuple[int, int]  # (near-miss and household takes woken, of them) in the same voices


def woke(rule: Rule, model: str, found: Trace) -> bool:
    scores, windows = found
    return bool(rule.wakes(model, scores[model], windows[model]))


def judge(rule: Rule, positives: list[Take], negatives: Negatives, half: int, negative_takes: list[Take]) -> Judged:
    """Recall on `positives` by group, false accepts on the shipped negatives' `half`, and how
    many of `negative_takes` woke any model."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for take, found in positives:
        w = woke(rule, take["model"], found)
        for group in ("all", f"model {take['model']}", f"family {take['family']}", f"condition {take['condition']}"):
            groups[group][0] += w
            groups[group][1] += 1
    fa = {m: negatives.false_accepts(m, rule.thresholds[m], rule.frames, half=half, look=rule.second_looks.get(m))
          or 0 for m in MODELS}
    near = sum(any(woke(rule, m, found) for m in MODELS) for _, found in negative_takes)
    return Judged({g: (w, t) for g, (w, t) in groups.items()}, fa, negatives.half_hours[half],
                  (near, len(negative_takes)))


def per_hour(judged: Judged, model: str) -> float:
    return judged.false_accepts[model] / judged.hours if judged.hours else 0.0


# -- the run --------------------------------------------------------------------------------------


def collect(say: Any) -> tuple[dict[str, list[Take]], dict[str, list[Take]]]:
    """(positives by half, negative takes by half): each take with its scores and windows."""
    from corpus import ears, fixtures

    directory = ears.make(fixtures.cache_dir(), say=say)
    takes = json.loads((directory / "manifest.json").read_text())["takes"]
    say(f"ears: scoring {len(takes)} takes (cached after the first run)")
    scored = traces([directory / t["file"] for t in takes], fixtures.cache_dir() / "ears-traces-2")
    pos: dict[str, list[Take]] = {"tune": [], "held-out": []}
    neg: dict[str, list[Take]] = {"tune": [], "held-out": []}
    for t in takes:
        (pos if t["kind"] == "positive" else neg)[t["half"]].append((t, scored[directory / t["file"]]))
    return pos, neg


def _scores_and_windows(path: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from corpus.audio import read_wav

    return scores_and_windows(read_wav(Path(path)), list(MODELS), FLOOR)


def write_negatives(path: Path, negative_hours: float, say: Any) -> None:
    """Every negative's kept scores, windows and parts (guardd/listen/negatives.py says how they
    are split), for `guardd tune` and this benchmark (guardd/listen/negative_scores.npz)."""
    from corpus import audio, ears, fixtures, realspeech
    from guardd.listen import negatives

    cache = fixtures.cache_dir()
    directory = ears.make(cache, say=say)
    takes = [t for t in json.loads((directory / "manifest.json").read_text())["takes"] if t["kind"] == "negative"]
    speakers = {h: sorted({t["speaker"] for t in takes if t["half"] == h}) for h in ("tune", "held-out")}

    def near_miss(t: dict[str, Any]) -> Any:
        half = 0 if t["half"] == "tune" else 1
        return lambda n: np.full(n, 2 * half + speakers[t["half"]].index(t["speaker"]) % 2)

    files = [(False, directory / t["file"], near_miss(t)) for t in takes]
    files += [(False, p, lambda n, i=i: np.full(n, i % 4)) for i, p in enumerate(audio.negative_speech(cache, negative_hours))]
    files += [(True, p, lambda n: np.arange(n) * 4 // max(n, 1)) for p in realspeech.variants(cache, say=say)]
    say(f"ears: the windows of {len(files)} negative files")
    with ProcessPoolExecutor(max_workers=2) as pool:
        found = list(pool.map(_scores_and_windows, [str(p) for _, p, _ in files], chunksize=4))
    negatives.write(path, [(real, parts(len(scores[MODELS[0]])), scores, windows)
                           for (real, _, parts), (scores, windows) in zip(files, found)])


def report(pos: dict[str, list[Take]], neg: dict[str, list[Take]], negatives: Negatives) -> dict[str, Any]:
    rules = (DEFAULT, STOCK, simple("0.5, 2 frames", 0.5, 2),
             Rule("guardd's default since issue 29 (0.7, 2 frames, hey_jarvis' look)",
                  {m: WakeConfig().threshold_of(m) for m in MODELS}, WakeConfig().trigger_frames,
                  shipped(MODELS) if WakeConfig().shipped_verifiers else {}))
    out: dict[str, Any] = {"held_out_negative_hours": round(negatives.half_hours[1], 2),
                           "held_out_negative_real_hours": round(negatives.real_half_hours[1], 2), "rules": {}}
    for rule in rules:
        held = judge(rule, pos["held-out"], negatives, 1, neg["held-out"])
        tuned = judge(rule, pos["tune"], negatives, 0, neg["tune"])
        out["rules"][rule.name] = {
            "thresholds": rule.thresholds, "frames": rule.frames,
            "second_looks": {m: {"threshold": look.threshold, "accept": look.accept} for m, look in rule.second_looks.items()},
            "held_out_recall": {g: f"{w}/{t}" for g, (w, t) in sorted(held.recall.items())},
            "tune_recall": f"{tuned.recall['all'][0]}/{tuned.recall['all'][1]}",
            "held_out_false_accepts_per_hour": {m: round(per_hour(held, m), 3) for m in MODELS},
            "held_out_near_misses_woken": f"{held.near_misses[0]}/{held.near_misses[1]}",
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.ears", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-negatives", type=Path, metavar="NPZ",
                        help="first write every negative's kept scores and windows (guardd/listen/negative_scores.npz)")
    parser.add_argument("--negative-hours", type=float, default=12.0,
                        help="with --write-negatives: hours of generated talk among them")
    args = parser.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.write_negatives:
        write_negatives(args.write_negatives, args.negative_hours, say)
    found = load_negatives(args.write_negatives) if args.write_negatives else load_negatives()
    if found is None:
        raise SystemExit("no shipped negatives: make them with --write-negatives guardd/listen/negative_scores.npz")
    pos, neg = collect(say)
    print(json.dumps(report(pos, neg, found), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
