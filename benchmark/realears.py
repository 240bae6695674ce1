"""The ears judged on real audio (issue 29): false wakes an hour on real recorded speech (by
language group) and music, recall on the most natural voices this machine has (neural first)
clean, over real household noise, in other people's speech (babble) and across simulated
rooms, and near misses (synthesised, and real people saying other wake words), each for a rule:
thresholds and trigger frames per model, and a second look (corpus/realears.py and
corpus/realaudio.py make the audio; their splits are fixed in code).

Every frame's score (and the window of every frame at FLOOR or more) is computed once per file
and cached (benchmark/ears.py's traces), so any rule is judged in seconds, exactly as the
detector would (tests/test_ears.py holds Rule to WakeDetector). Choices are made on the tuning
part only (benchmark/earchoice.py); the figures reported are the held-out part's.

    python -m benchmark.realears [--json OUT] [--markdown] [--write-verifiers DIR] [--write-negatives NPZ]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from benchmark.ears import MODELS, Trace, traces
from guardd.audioformat import FRAME_S
from guardd.listen.scores import Rule

Say = Callable[[str], None]


def cache_root() -> Path:
    from corpus import fixtures

    return fixtures.cache_dir().parent  # ~/.cache/guardd


# -- the audio and its scores ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One scored file: what it is (take or stream metadata) and its trace."""

    meta: dict[str, Any]
    trace: Trace

    @property
    def hours(self) -> float:
        return len(self.trace[0][MODELS[0]]) * FRAME_S / 3600


@dataclass
class Evaluation:
    positives: list[Scored]  # meta: corpus/realears.Take fields
    near_misses: list[Scored]  # synthesised (realears) and real (precise-en), meta: model, half, source, ...
    negatives: list[Scored]  # real speech and music streams, meta: kind, source, group, half, variant

    def part(self, items: list[Scored], half: str) -> list[Scored]:
        return [s for s in items if s.meta["half"] == half]


def real_near_misses(cache: Path, recs: list[Any]) -> list[tuple[Path, dict[str, Any]]]:
    """Each precise-en recording of another wake word, with quiet around it (the detector needs
    its first frames to warm up), as a WAV of its own."""
    from corpus.realaudio import read
    from corpus.speech import write_wav

    directory = cache / "real-near-misses-1"
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for r in recs:
        if r.kind != "near_miss":
            continue
        path = directory / f"{r.source.split(':')[1]}_{r.path.stem}.wav"
        if not path.is_file():
            x = read(r.path).astype(np.float64) / 32768.0
            quiet = np.zeros(int(0.7 * 16000))
            write_wav(path, np.concatenate([quiet, x, quiet, quiet]))
        word = r.source.split(":")[1]
        for model in MODELS:
            out.append((path, {"model": model, "half": r.half, "source": r.source, "text": word, "file": path.name,
                               "engine": "people", "condition": "clean", "kind": "near_miss"}))
    return out


def collect(say: Say, workers: int = 1) -> Evaluation:
    """Make (once) and score (once) everything the evaluation judges."""
    from corpus import neural, realaudio, realears, rooms

    cache = cache_root()
    directory = realears.make(cache, say)
    takes = json.loads((directory / "manifest.json").read_text())["takes"]
    recs = realaudio.recordings(realaudio.fetch(cache, say))
    streams = [s for s in realaudio.streams(cache, recs, rooms.impulse_responses(cache, lambda: neural.venv(cache)), say)
               if s.kind == "speech" or s.variant == "as recorded"]
    real_near = real_near_misses(cache, recs)
    paths = [directory / t["file"] for t in takes] + [s.path for s in streams] + sorted({p for p, _ in real_near})
    say(f"ears: scoring {len(paths)} files (cached after the first run)")
    found = traces(paths, cache / "corpus" / "real-traces-1", workers=workers)
    positives = [Scored(t, found[directory / t["file"]]) for t in takes if t["kind"] == "positive"]
    near = [Scored(t, found[directory / t["file"]]) for t in takes if t["kind"] == "near_miss"]
    near += [Scored(meta, found[p]) for p, meta in real_near]
    negatives = [Scored({"kind": s.kind, "source": s.source, "group": s.group, "half": s.half, "variant": s.variant,
                         "file": s.path.name}, found[s.path]) for s in streams]
    return Evaluation(positives, near, negatives)


# -- judging ------------------------------------------------------------------------------------------


def wakes(rule: Rule, model: str, trace: Trace) -> int:
    scores, windows = trace
    return len(rule.wakes(model, scores[model], windows[model]))


def poisson_interval(k: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Garwood) interval for a Poisson mean from `k` events."""
    alpha = 1 - confidence

    def cdf(n: int, mean: float) -> float:  # P(X <= n)
        term = total = math.exp(-mean)
        for i in range(1, n + 1):
            term *= mean / i
            total += term
        return total

    def solve(target: Callable[[float], float]) -> float:  # target rises with the mean
        lo, hi = 0.0, 10.0 + 10.0 * k
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if target(mid) < 0 else (lo, mid)
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(lambda m: (1 - cdf(k - 1, m)) - alpha / 2)
    upper = solve(lambda m: alpha / 2 - cdf(k, m))
    return lower, upper


def false_wakes(rule: Rule, items: Iterable[Scored], models: tuple[str, ...] = MODELS) -> tuple[int, float]:
    """(wakes of any of `models`, hours) over negative streams."""
    items = list(items)
    return sum(wakes(rule, m, s.trace) for s in items for m in models), sum(s.hours for s in items)


def rate(k: int, hours: float) -> dict[str, Any]:
    lo, hi = poisson_interval(k)
    return {"wakes": k, "hours": round(hours, 2), "per_hour": round(k / hours, 3) if hours else None,
            "interval_95": [round(lo / hours, 3), round(hi / hours, 3)] if hours else None}


def recall(rule: Rule, items: Iterable[Scored]) -> tuple[int, int]:
    items = list(items)
    return sum(wakes(rule, s.meta["model"], s.trace) > 0 for s in items), len(items)


def engine_family(meta: dict[str, Any]) -> str:
    return "neural" if meta["engine"] in ("piper", "kokoro") else "classic"


def judge(rule: Rule, ev: Evaluation, half: str) -> dict[str, Any]:
    """Everything the report says of `rule` on `half`."""
    pos = ev.part(ev.positives, half)
    out: dict[str, Any] = {"recall": {}, "false_wakes": {}, "near_misses": {}}
    for model in MODELS:
        for family in ("neural", "classic"):
            for c in sorted({s.meta["condition"] for s in pos}):
                chosen = [s for s in pos if s.meta["model"] == model and engine_family(s.meta) == family
                          and s.meta["condition"] == c]
                w, n = recall(rule, chosen)
                out["recall"][f"{model} {family} {c}"] = [w, n]
    neg = ev.part(ev.negatives, half)
    speech = [s for s in neg if s.meta["kind"] == "speech"]
    for group in sorted({s.meta["group"] for s in speech}):
        out["false_wakes"][f"speech {group}"] = rate(*false_wakes(rule, [s for s in speech if s.meta["group"] == group]))
    out["false_wakes"]["speech, all"] = rate(*false_wakes(rule, speech))
    out["false_wakes"]["speech, all, as recorded"] = rate(*false_wakes(rule, [s for s in speech if s.meta["variant"] == "as recorded"]))
    for model in MODELS:
        out["false_wakes"][f"speech, all, {model} alone"] = rate(*false_wakes(rule, speech, (model,)))
    out["false_wakes"]["music"] = rate(*false_wakes(rule, [s for s in neg if s.meta["kind"] == "music"]))
    near = ev.part(ev.near_misses, half)
    for model in MODELS:
        for key in sorted({(s.meta["engine"] == "people", s.meta["text"], s.meta["condition"]) for s in near
                           if s.meta["model"] == model}):
            chosen = [s for s in near if s.meta["model"] == model and (s.meta["engine"] == "people", s.meta["text"],
                                                                      s.meta["condition"]) == key]
            w, n = recall(rule, chosen)
            who = "people" if key[0] else "voices"
            out["near_misses"][f"{model} {who}: {key[1]} ({key[2]})"] = [w, n]
    return out


def totals(judged: dict[str, Any]) -> dict[str, Any]:
    """The headline of a judged rule: recall by condition over both models and families."""
    by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, (w, n) in judged["recall"].items():
        model, family, c = key.split(" ")
        for k in (c, f"{family} {c}", f"{model} {c}"):
            by[k][0] += w
            by[k][1] += n
    near = sum(w for w, _ in judged["near_misses"].values()), sum(n for _, n in judged["near_misses"].values())
    return {"recall": {k: f"{w}/{n} ({100 * w / n:.1f} %)" for k, (w, n) in sorted(by.items()) if n},
            "near_miss_wakes": f"{near[0]}/{near[1]}"}


def main(argv: list[str] | None = None) -> int:
    from benchmark import earchoice

    parser = argparse.ArgumentParser(prog="python -m benchmark.realears", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the whole report here")
    parser.add_argument("--write-verifiers", type=Path, metavar="DIR",
                        help="train the shipped second looks on the tuning part (guardd/listen/verifiers)")
    parser.add_argument("--write-negatives", type=Path, metavar="NPZ",
                        help="write the held-out real speech's kept scores for guardd tune "
                             "(guardd/listen/real_negatives.npz)")
    parser.add_argument("--workers", type=int, default=1, help="processes scoring audio (default 1)")
    parser.add_argument("--markdown", action="store_true", help="print docs/ears.md's tables, not JSON")
    args = parser.parse_args(argv)
    say: Say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    ev = collect(say, args.workers)
    if args.write_verifiers:
        earchoice.write_verifiers(args.write_verifiers, ev, say)
    if args.write_negatives:
        earchoice.write_negatives(args.write_negatives, ev, say)
    report = earchoice.report(ev, say)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text)
    if args.markdown:
        from benchmark.eartables import markdown

        print(markdown(report))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
