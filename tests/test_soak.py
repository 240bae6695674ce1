"""A few simulated minutes of scripts/soak.py: mixed speech through the real pipeline, uploads
asked after each wake word, a simulated owner pressing, holding or ignoring, a client that
sometimes hangs up. The full run (`python scripts/soak.py --hours 3`) is the long-run check;
this one proves the script and its verdicts work and that nothing leaks over a short stretch."""

from __future__ import annotations

import json
import subprocess
import sys

from harness import ROOT


def test_a_short_soak_leaks_no_descriptors_and_its_log_verifies(manifest):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--hours", "0.06", "--sample-every-s", "60", "--json"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["failures"] == []
    assert summary["verify_problems"] == [] and summary["log_records"] > 20
    assert summary["gate_problems"] == []
    assert summary["fd_growth"] == 0 and len(summary["samples"]) >= 3
    assert summary["wakes"] > 0 and summary["requests"] >= summary["wakes"]
    assert summary["approvals"] > 0 and sum(summary["denials"].values()) > 0
    assert summary["sends"] == summary["received"] == summary["approvals"]
    assert summary["led_at_end"] == "idle"
