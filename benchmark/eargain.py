"""Would gain before the features (an AGC) help the ears hear through babble? The tuning part's
babble and clean takes (corpus/realears.py), rescored at other fixed levels and through a
simple AGC, judged by a rule: if the models' scores barely move with the level, no gain
control can lift recall (an AGC changes the level, not the speech-to-babble ratio).

    python -m benchmark.eargain [--threshold 0.7 --frames 2]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from benchmark.ears import MODELS
from benchmark.realears import cache_root
from guardd.audioformat import FRAME_SAMPLES
from guardd.listen.scores import Rule, score_frames

TARGET_DBFS = -25.0  # the AGC's aim: frame RMS


def agc(x: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Frame-by-frame gain toward `target_dbfs`: the level falls fast (one frame) and rises slowly
    (about 1 s), the gain bounded to +-18 dB, as a speaker's AGC would."""
    y = x.astype(np.float64).copy()
    level = None
    for k in range(len(y) // FRAME_SAMPLES):
        frame = y[k * FRAME_SAMPLES:(k + 1) * FRAME_SAMPLES]
        rms = float(np.sqrt(np.mean(frame**2))) + 1.0
        level = rms if level is None or rms > level else 0.92 * level + 0.08 * rms
        gain = np.clip(32768 * 10 ** (target_dbfs / 20) / level, 10 ** (-18 / 20), 10 ** (18 / 20))
        y[k * FRAME_SAMPLES:(k + 1) * FRAME_SAMPLES] = frame * gain
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def main(argv: list[str] | None = None) -> int:
    from corpus import realears
    from corpus.audio import read_wav

    parser = argparse.ArgumentParser(prog="python -m benchmark.eargain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--frames", type=int, default=2)
    args = parser.parse_args(argv)
    directory = realears.make(cache_root(), lambda m: print(m, file=sys.stderr))
    takes = [t for t in json.loads((directory / "manifest.json").read_text())["takes"]
             if t["half"] == "tune" and t["kind"] == "positive" and t["condition"] in ("clean", "babble10")]
    rule = Rule("", {m: args.threshold for m in MODELS}, args.frames)
    treatments = {"as made": lambda x: x, "-12 dB": lambda x: (x * 10 ** (-12 / 20)).astype(np.int16),
                  "+6 dB": lambda x: np.clip(x * 2.0, -32768, 32767).astype(np.int16), "AGC": agc}
    out = {}
    for name, treat in treatments.items():
        for c in ("clean", "babble10"):
            chosen = [t for t in takes if t["condition"] == c]
            woken = 0
            for t in chosen:
                scores = score_frames(treat(read_wav(directory / t["file"])), [t["model"]])
                woken += bool(rule.wakes(t["model"], scores[t["model"]]))
            out[f"{name}, {c}"] = f"{woken}/{len(chosen)}"
            print(f"ears: {name}, {c}: {woken}/{len(chosen)}", file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
