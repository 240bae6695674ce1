"""The report: the figures against their targets, as a table or as JSON keys."""

from __future__ import annotations

from typing import Any

TARGETS = {  # issue 6, for one wake model on the machine the figures come from
    "overhead_ratio": ("<=", 1.15),
    "peak_rss_mb": ("<=", 80),
    "ready_s": ("<=", 1.0),
    "wake_latency_p95_ms": ("<=", 300),
    "each_extra_model_cpu_pct": ("<=", 5.0),
    "false_accepts_per_hour": ("<=", 0.5),
    "recall": (">=", 0.95),
    "announce_first_sample_p95_ms": ("<=", 300),  # issue 15
    "announce_rss_growth_mb": ("<=", 5.0),
    "satellite_press_to_last_chunk_p50_ms": ("<=", 100),  # issue 16
    "satellite_reply_to_first_sample_p50_ms": ("<=", 200),
    "satellite_idle_cpu_pct": ("<", 0.1),
    "daemon_peak_rss_mb": ("<=", 64),  # issue 31
}


def meets(value: Any, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    if op == "<":
        return value < bound
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
    ("announce_first_sample_p50_ms", "request armed to first announced sample, median (ms)"),
    ("announce_first_sample_p95_ms", "request armed to first announced sample, 95th pct (ms)"),
    ("announce_rss_growth_mb", "guardd's peak memory, announcements on minus unspoken (MB)"),
    ("satellite_press_to_last_chunk_p50_ms", "satellite: press to last audio-chunk of 5 s, median (ms)"),
    ("satellite_press_to_last_chunk_p95_ms", "satellite: press to last audio-chunk of 5 s, 95th pct (ms)"),
    ("satellite_reply_to_first_sample_p50_ms", "satellite: reply audio-start to first played sample, median (ms)"),
    ("satellite_reply_to_first_sample_p95_ms", "satellite: reply audio-start to first played sample, 95th pct (ms)"),
    ("satellite_idle_cpu_pct", "satellite: a connected peer's pings, % of one core"),
    ("daemon_audio_s", "`guardd run`, satellite mode on: audio fed (s)"),
    ("daemon_peak_rss_mb", "  its peak memory, start-up included (MB)"),
    ("daemon_end_anon_mb", "  at the end: anonymous memory (MB)"),
    ("daemon_end_file_mb", "  at the end: pages mapped from files (MB)"),
    ("daemon_cpu_s", "  its CPU (s)"),
    ("daemon_wakes", "  its wakes"),
    ("daemon_dropped_blocks", "  audio blocks it dropped (fed too fast if not 0)"),
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
    for engine, figures in result.get("speech_engines", {}).items():
        lines.append(f"speech engine {engine}: first audio {figures['first_audio_ms']} ms, CPU "
                     f"{figures['cpu_ms_per_sentence']} ms a sentence, peak memory {figures['peak_rss_mb']} MB "
                     "(its own process)")
    if result["false_accept_events"]:
        lines.append("false accepts: " + "; ".join(result["false_accept_events"]))
    return "\n".join(lines)
