"""How well guardd's ears generalise (issue 17): every frame's score of every wake model on the
evaluation's takes (corpus/ears.py), with the embedding window of every frame that scored, then
any wake rule judged on those scores without running the models again; false accepts on the
negative speech guardd ships as scores and windows (guardd/listen/negatives.py).

A rule is chosen on the tuning half only (its voices, its requests, half 0 of the shipped
negatives) and reported on the held-out half (other voices and accents, other requests, half 1).
The scores are stock openWakeWord's (guardd's detector scoring every frame); a rule here fires
exactly as guardd's detector would with the same settings (tests/test_ears.py and
tests/test_second_look.py check it against WakeDetector). `--write-verifiers` chooses and trains
the second looks guardd ships (choose_looks); `--write-negatives` remakes the shipped negatives.

    python -m benchmark.ears [--write-negatives NPZ [--negative-hours H]] [--write-verifiers DIR]
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

from guardd.listen.negatives import FLOOR, Negatives
from guardd.listen.negatives import load as load_negatives
from guardd.listen.scores import Rule, scores_and_windows
from guardd.listen.verifier import SecondLook, Verifier, shipped, train, write_shipped

MODELS = ("alexa", "hey_jarvis")


def simple(name: str, threshold: float, frames: int) -> Rule:
    return Rule(name, {m: threshold for m in MODELS}, frames)


DEFAULT = simple("guardd default (0.7, 2 frames)", 0.7, 2)
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


# -- the second look, chosen on the tuning half ---------------------------------------------------

LOOK_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
LOOK_ACCEPTS = (0.5, 0.7, 0.9)  # the verifier's probability from which it says yes
LOOK_FA_LIMIT = 0.2  # false accepts an hour a model may add, in the tuning half's cross-validation


def tuning_only(positives: list[Take]) -> None:
    held_out = [t["file"] for t, _ in positives if t["half"] != "tune"]
    if held_out:
        raise ValueError(f"the second looks learn from the tuning half only, not {held_out[0]}")


def train_look(model: str, positives: list[Take], negatives: Negatives, parts: tuple[int, ...]) -> Verifier:
    """A verifier of `model`'s wake word: its takes' windows (every frame at FLOOR or more) against
    the windows of the negatives' `parts` (half 0's: 0, 1)."""
    tuning_only(positives)
    if not set(parts) <= {0, 1}:
        raise ValueError(f"the second looks learn from the negatives' half 0 only, not parts {parts}")
    windows = [w for t, (_, ws) in positives if t["model"] == model for w in ws[model].values()]
    return train(model, np.array(windows), negatives.training_windows(model, parts))


def choose_looks(positives: list[Take], negatives: Negatives, say: Any) -> dict[str, tuple[float, float]]:
    """Each model's second look (threshold, accept), on the tuning half alone, by two-fold
    cross-validation: the tuning speakers in two folds, the tuning negatives (half 0) in its
    two parts; a verifier trained on one fold and one part is judged on the others. The
    choice: the most takes woken (with guardd's own rule beside the look) while the looks add at
    most LOOK_FA_LIMIT false accepts an hour; a tie goes to fewer false accepts, then to the
    higher threshold and accept."""
    tuning_only(positives)
    speakers = sorted({t["speaker"] for t, _ in positives})
    folds = [[p for p in positives if speakers.index(p[0]["speaker"]) % 2 == i] for i in (0, 1)]
    hours = negatives.half_hours[0]  # its two parts
    chosen = {}
    for model in MODELS:
        trained = [(train_look(model, folds[f], negatives, (f,)), folds[1 - f], 1 - f) for f in (0, 1)]
        args = (model, DEFAULT.thresholds[model], DEFAULT.frames)
        rows = []
        for threshold in LOOK_THRESHOLDS:
            for accept in LOOK_ACCEPTS:
                woken = added = 0
                for verifier, judged, other in trained:
                    look = SecondLook(threshold, verifier, accept)
                    rule = Rule("", {model: args[1]}, args[2], {model: look})
                    woken += sum(woke(rule, model, f) for t, f in judged if t["model"] == model)
                    added += (negatives.false_accepts(*args, look=look, parts=(other,)) or 0) - (
                        negatives.false_accepts(*args, parts=(other,)) or 0)
                rows.append((woken, -added, threshold, accept))
                say(f"ears: {model} second look from {threshold}, accepting from {accept}: {woken} tuning "
                    f"takes woken in cross-validation, +{added / hours:.2f} false accepts an hour")
        allowed = [r for r in rows if -r[1] / hours <= LOOK_FA_LIMIT]
        best = max(allowed) if allowed else (0, 0, 1.0, 1.0)
        chosen[model] = (best[2], best[3])
    return chosen


def write_verifiers(directory: Path, positives: list[Take], negatives: Negatives, say: Any) -> None:
    """The shipped second looks (guardd/listen/verifiers/): each model's threshold and accept
    chosen by choose_looks, its verifier trained on every tuning take against the negatives' half 0."""
    directory.mkdir(parents=True, exist_ok=True)
    for model, (threshold, accept) in choose_looks(positives, negatives, say).items():
        verifier = train_look(model, positives, negatives, (0, 1))
        write_shipped(directory / f"{model}.npz", SecondLook(threshold, verifier, accept))
        say(f"ears: wrote {directory / model}.npz (from {threshold}, accepting from {accept})")


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
             Rule("guardd's default: 0.7, 2 frames, and the shipped verifiers' second look",
                  DEFAULT.thresholds, DEFAULT.frames, shipped(MODELS)))
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
    parser.add_argument("--write-verifiers", type=Path, metavar="DIR",
                        help="first choose and train the shipped verifiers on the tuning half (guardd/listen/verifiers)")
    args = parser.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.write_negatives:
        write_negatives(args.write_negatives, args.negative_hours, say)
    found = load_negatives(args.write_negatives) if args.write_negatives else load_negatives()
    if found is None:
        raise SystemExit("no shipped negatives: make them with --write-negatives guardd/listen/negative_scores.npz")
    pos, neg = collect(say)
    if args.write_verifiers:
        write_verifiers(args.write_verifiers, pos["tune"], found, say)
    print(json.dumps(report(pos, neg, found), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
