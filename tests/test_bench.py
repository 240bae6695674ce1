"""`python -m benchmark` runs end to end on a tiny input and reports every figure
docs/performance.md quotes, with the machine it ran on. (The real benchmark is not run in CI.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np

from harness import ROOT

from benchmark.processes import peak_rss_of

KEYS = {
    "audio_s", "raw_inference_cpu_s", "pipeline_cpu_s", "overhead_ratio", "peak_rss_mb", "ready_s",
    "wake_latency_p50_ms", "wake_latency_p95_ms", "log_appends_per_s", "false_accepts_per_hour",
    "negative_hours", "real_negative_hours", "false_accepts_real", "recall", "quiet_cpu_per_audio_s",
    "each_extra_model_cpu_pct", "machine", "daemon_peak_rss_mb", "daemon_end_anon_mb", "daemon_end_file_mb",
}

# The benchmark is started by a small go-between: a process exec'd straight from this test's
# worker (hundreds of MB by now) would carry the worker's memory high-water mark into its own
# ru_maxrss, and bench_peak_rss_mb would be ours, not the benchmark's.
GO_BETWEEN = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def test_the_benchmark_reports_every_figure_on_a_tiny_input(tmp_path, manifest, real_speech):
    fixtures = tmp_path / "fixtures" / "audio"
    fixtures.mkdir(parents=True)
    positive = next(e for e in manifest["positives"] if e["model"] == "alexa")
    negative = manifest["negatives"][0]
    for entry in (positive, negative):
        shutil.copy(manifest["dir"] / entry["file"], fixtures / entry["file"])
    small = {"positives": [positive], "negatives": [negative], "negative_seconds": negative["duration"]}
    (fixtures / "manifest.json").write_text(json.dumps(small))
    out = subprocess.run(
        [sys.executable, "-S", "-c", GO_BETWEEN, sys.executable, "-m", "benchmark", "--json", "--repeats", "1", "--quiet-minutes", "0.2",
         "--peer-idle-s", "3", "--no-compare-stock", "--fixtures", str(fixtures), "--state-dir", str(tmp_path / "state"),
         "--cache", str(real_speech), "--real-variants", "1", "--daemon-minutes", "0.5", "--daemon-speed", "5"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert KEYS <= result.keys()
    assert result["recall"] == 1.0 and result["positives"] == 1
    assert result["negative_hours"] > result["real_negative_hours"] > 0.06  # 229 s of real speech
    assert result["false_accepts_per_hour"] >= 0
    assert 0 < result["raw_inference_cpu_s"] and 0 < result["pipeline_cpu_s"]
    assert 0 < result["peak_rss_mb"] < 1000 and 0 < result["ready_s"] < 30
    # The benchmark itself must fit on a Pi Zero 2 W (512 MB) beside the assistant.
    assert 0 < result["bench_peak_rss_mb"] < 250
    assert {"cpu", "cores", "memory_mb", "python", "numpy", "onnxruntime"} <= result["machine"].keys()
    # The announcements: each request armed to its first sample at the output, and the memory
    # they add; the speech engine in its own process.
    assert 0 < result["announce_first_sample_p50_ms"] <= result["announce_first_sample_p95_ms"] < 2000
    assert -5 < result["announce_rss_growth_mb"] < 50 and result["announce_peak_rss_mb"] > 0
    espeak = result["speech_engines"]["espeak-ng"]
    assert 0 < espeak["first_audio_ms"] < 2000 and 0 < espeak["cpu_ms_per_sentence"] and 0 < espeak["peak_rss_mb"] < 100
    # Satellite mode on loopback, Home Assistant's side in a process of its own.
    assert 0 < result["satellite_press_to_last_chunk_p50_ms"] <= result["satellite_press_to_last_chunk_p95_ms"] < 2000
    assert 0 < result["satellite_reply_to_first_sample_p50_ms"] <= result["satellite_reply_to_first_sample_p95_ms"] < 2000
    assert 0 <= result["satellite_idle_cpu_pct"] < 5
    # `guardd run` over half a minute of speech, satellite mode on: all of it taken, memory read.
    assert result["daemon_audio_s"] == 30.0 and result["daemon_dropped_blocks"] >= 0
    # (each figure is rounded to 0.1 MB on its own, so their sum may pass the peak by that much)
    assert 0 < result["daemon_end_anon_mb"] + result["daemon_end_file_mb"] <= result["daemon_peak_rss_mb"] + 0.1 < 1000


def test_peak_memory_is_the_childs_own_not_ours():
    ballast = np.ones(200 * 1024 * 1024 // 8)  # 200 MB here must not show up in the child
    rss_mb, _ = peak_rss_of([sys.executable, "-c", "pass"])
    assert rss_mb < 100
    del ballast
