"""The machine the figures come from, as the report names it."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np


def meminfo_mb(field: str) -> int | None:
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
        "memory_mb": meminfo_mb("MemTotal") or 0,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
