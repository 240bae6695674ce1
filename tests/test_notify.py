"""The sd_notify protocol against a real datagram socket: READY once `guardd run` is listening,
WATCHDOG while its core loop runs, none while the loop is stalled (a log write stuck on a slow
SD card), and STOPPING on SIGTERM."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

from harness import Daemon, write_config

# A driver that makes fdatasync stall for as long as a flag file exists, then runs guardd.
STALLING_RUN = """
import os, sys, time
real = os.fdatasync
def stalling(fd):
    while os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    return real(fd)
import guardd.auditlog.writer
guardd.auditlog.writer.os.fdatasync = stalling
from guardd.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


class Listener:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []

    def collect(self, seconds: float) -> list[str]:
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data))
            got.append(data)
        return got

    def wait_for(self, prefix: str, timeout_s: float = 30) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for data in self.collect(0.1):
                if data.startswith(prefix):
                    return data
        raise AssertionError(f"no {prefix} within {timeout_s} s; got {self.messages[-5:]}")


def start(tmp_path: Path, wav: Path, stall_flag: Path) -> tuple[Listener, Daemon]:
    listener = Listener(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000"}
    config = write_config(tmp_path, audio={"queue_s": 120})
    return listener, Daemon(tmp_path, config, wav, simulate=False, env=env, wait_for_socket=False,
                            program=[sys.executable, "-c", STALLING_RUN, str(stall_flag)])


def test_ready_then_watchdog_while_healthy_then_stopping(tmp_path, manifest):
    listener, d = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], tmp_path / "no-stall")
    try:
        ready = listener.wait_for("READY=1")
        assert "STATUS=listening" in ready
        assert (tmp_path / "guardd.sock").exists()  # the control socket was up before READY
        pings = [m for m in listener.collect(1.0) if m == "WATCHDOG=1"]
        assert 5 <= len(pings) <= 15  # every 0.1 s: half of WATCHDOG_USEC
        d.send_signal(signal.SIGTERM)
        assert listener.wait_for("STOPPING=1").startswith("STOPPING=1")
        assert d.proc.wait(timeout=10) == 0
    finally:
        d.close()


def test_no_watchdog_while_the_core_loop_is_stalled_on_the_log(tmp_path, manifest):
    flag = tmp_path / "stall"
    listener, d = start(tmp_path, manifest["dir"] / manifest["negatives"][0]["file"], flag)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.wait_for("READY=1")
        assert "WATCHDOG=1" in listener.collect(0.5)
        flag.touch()  # from now on a log write blocks, as on a stuck SD card
        client.connect(str(tmp_path / "guardd.sock"))
        client.sendall(b'{"call":"submit","to":"nowhere","text":"x"}\n')  # the core logs `refused`
        listener.collect(0.5)
        stalled = listener.collect(2.0)
        assert "WATCHDOG=1" not in stalled
        flag.unlink()  # the disk answers again
        assert listener.wait_for("WATCHDOG=1", timeout_s=10) == "WATCHDOG=1"
    finally:
        client.close()
        flag.unlink(missing_ok=True)
        try:
            assert d.stop() == 0
        finally:
            d.close()
