"""What the running daemon imports, and so holds in memory (issue 31: at most 64 MB; each module
is code and data for good, docs/performance.md "Memory of the running daemon"): `guardd run`
in satellite mode, with Home Assistant connected, loads no asyncio and no `ssl` (OpenSSL), nor
the `wyoming` package that would bring them (guardd frames Wyoming itself: frames.py)."""

from __future__ import annotations

import re

from conftest import silent_wav
from harness import Daemon, write_config
from harness.home_assistant import HomeAssistant, free_port

NOT_AT_RUN_TIME = ("asyncio", "ssl", "_ssl", "wyoming")  # and anything under them


def imported(stderr: str) -> set[str]:
    """The modules a process imported, from what `-X importtime` wrote to its stderr."""
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", stderr, re.MULTILINE))


def test_guardd_run_in_satellite_mode_imports_no_asyncio_no_ssl_and_not_the_wyoming_package(tmp_path):
    port = free_port()
    config = write_config(tmp_path, after_wake={"upload_to": "wyoming"},
                          wyoming={"listen": f"127.0.0.1:{port}", "allow": ["127.0.0.1"]})
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"), env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        d.wait_until(lambda: "satellite mode: listening" in d.said(), "the listener")
        ha = HomeAssistant(port).connect()
        try:
            d.wait_until(lambda: "info" in ha.types() and "pong" in ha.types(), "info and a pong at Home Assistant")
        finally:
            ha.close()
    finally:
        assert d.stop() == 0
    modules = imported(d.said())
    assert {"guardd.wyoming.link", "guardd.listen.onnxrt", "sounddevice", "gpiozero"} <= modules, sorted(modules)
    loaded = sorted(m for m in modules if m.split(".")[0] in NOT_AT_RUN_TIME)
    assert loaded == [], f"guardd run imported {loaded}"
