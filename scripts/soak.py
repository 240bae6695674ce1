#!/usr/bin/env python3
"""Soak: hours of mixed speech through the real pipeline, on audio time, as fast as the CPU allows.

The speech fixtures (corpus/fixtures.py) (wake-word utterances and long stretches of speech without
one) are looped in a seeded random order through the same pipeline `guardd run` uses: the wake
models, the endpointer, the audit log on real files, the gate with a real gpiozero Button on
MockFactory pins, and sends over HTTP to a real server on loopback. Each kept utterance asks to
be uploaded there (after_wake.upload_to); a simulated owner approves some requests with a short
press, denies some with a long one and lets the rest time out, and a simulated local client sends
messages now and then and sometimes goes away before anyone answers. Recordings are deleted by
the size rule and the log rotates, so deletions and segment changes happen too.

Every simulated `--sample-every-s` seconds it samples this process's resident memory (VmRSS) and
open file descriptors. At the end it verifies the log (hash chain and forward seals, with the
verification key) and checks the gate invariant on what the receiver got: every body that arrived
was approved, by a press, on its own sha256. It prints memory growth per hour, fd growth, counts
and the verdict, and exits 1 when a limit is broken.

    python scripts/soak.py --hours 3
    python scripts/soak.py --hours 0.1 --sample-every-s 60 --json   # what tests/test_soak.py runs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.soak import soak

MAX_MB_PER_HOUR = 5.0  # the limit for memory growth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=3.0, help="simulated hours of audio (default 3)")
    parser.add_argument("--sample-every-s", type=float, default=600.0,
                        help="simulated seconds between memory and fd samples (default 600)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--state-dir", type=Path, help="keep the state here (default: a temp dir, removed)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parser.parse_args(argv)
    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    summary = soak(args.hours, sample_every_s=args.sample_every_s, seed=args.seed, state_dir=args.state_dir, say=say)
    failures = []
    if summary["simulated_hours"] >= 1 and summary["mb_per_hour"] > MAX_MB_PER_HOUR:
        failures.append(f"memory grew {summary['mb_per_hour']} MB/h (limit {MAX_MB_PER_HOUR})")
    if summary["fd_growth"] > 0:
        failures.append(f"{summary['fd_growth']} more file descriptors open at the end")
    if summary["verify_problems"]:
        failures.append(f"the log does not verify: {summary['verify_problems'][:3]}")
    if summary["gate_problems"]:
        failures.append(f"gate invariant: {summary['gate_problems'][:3]}")
    summary["failures"] = failures
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        s = summary
        print(f"simulated {s['simulated_hours']} h of audio in {s['wall_seconds']:.0f} s")
        print(f"memory: {s['rss_start_mb']} MB after warm-up -> {s['rss_end_mb']} MB at the end "
              f"(peak {s['rss_peak_mb']} MB): {s['mb_per_hour']:+.2f} MB/h")
        print(f"file descriptors: {s['fd_start']} -> {s['fd_end']} ({s['fd_growth']:+d})")
        print(f"wakes {s['wakes']}, utterances {s['utterances']}, requests {s['requests']}, "
              f"approvals {s['approvals']}, denials {sum(s['denials'].values())} {dict(s['denials'])}, "
              f"sends {s['sends']}, received {s['received']}, recordings deleted {dict(s['deleted'])}")
        print(f"log: {s['log_records']} records in {s['log_segments']} segments, "
              f"verify: {'ok' if not s['verify_problems'] else s['verify_problems'][:3]}; "
              f"gate invariant: {'ok' if not s['gate_problems'] else s['gate_problems'][:3]}")
        for failure in failures:
            print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
