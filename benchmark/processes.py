"""Memory, start-up and the log's speed, each measured in a fresh process or on a real disk."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guardd.audioformat import SAMPLE_RATE
from guardd.auditlog.writer import AuditLog

LOG_APPENDS = 200  # per log_appends_per_s run


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
        stop(proc)
        sock.close()


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM, as systemd stops guardd; SIGKILL if it has not exited within `timeout_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
