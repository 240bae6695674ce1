"""A restart approves nothing: across a SIGKILL and a restart of `guardd run`, the request that
was asking is closed as aborted and a press afterwards sends nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from conftest import GUARDD, ROOT, alsa_env, silent_wav, wait_until, write_config

from guardd.auditlog.reading import read_records


# -- 14. a crash and a restart ----------------------------------------------------------------------


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_restart_aborts_the_armed_request_and_a_press_sends_nothing(tmp_path, inbox):
    # The control socket path must fit in sun_path (108 bytes); pytest's tmp_path may not.
    sock_dir = Path(tempfile.mkdtemp(prefix="guardd-gate-"))
    socket_path = sock_dir / "g.sock"
    config = write_config(
        tmp_path,
        audio={"queue_s": 120},
        destinations={"inbox": {"url": inbox.url}},
        socket={"path": str(socket_path)},
    )
    env = dict(os.environ)
    env.update(alsa_env(tmp_path, silent_wav(tmp_path / "silence.wav")))
    log_dir = tmp_path / "state" / "log"
    outbox = tmp_path / "state" / "outbox"
    procs: list[subprocess.Popen] = []

    def start_daemon(name: str) -> tuple[subprocess.Popen, Path]:
        stderr_path = tmp_path / f"{name}.stderr"
        with open(stderr_path, "w") as stderr:
            proc = subprocess.Popen(  # -v: the core logs each button edge it handles
                [*GUARDD, "-v", "run", "--simulate", "--config", str(config)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT,
                text=True,
            )
        procs.append(proc)
        return proc, stderr_path

    def records(type_: str) -> list[dict[str, Any]]:
        return [r for r in read_records(log_dir) if r["type"] == type_] if log_dir.is_dir() else []

    try:
        first, first_err = start_daemon("first")
        wait_until(lambda: records("start") and socket_path.exists(), "start record and control socket", 60.0, first)
        client = subprocess.Popen(
            [*GUARDD, "send", "--to", "inbox", "--text", "hi", "--socket", str(socket_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
        )
        procs.append(client)
        wait_until(lambda: bool(records("request")), "request record", 60.0, first)
        wait_until(lambda: "[LED ◐" in first_err.read_text(), "the LED asking", 60.0, first)
        [request] = records("request")
        assert (outbox / f"{request['id']}.bin").exists()

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        client.wait(10)  # its connection died with the daemon
        assert client.returncode != 0
        assert records("decision") == []  # killed: it never got to decide

        second, second_err = start_daemon("second")
        wait_until(lambda: "listening (models" in second_err.read_text(), "the second daemon listening", 60.0, second)
        aborted = [r for r in records("decision") if r["id"] == request["id"]]
        assert [(r["decision"], r["reason"]) for r in aborted] == [("denied", "aborted")]
        assert aborted[0]["seq"] > records("start")[1]["seq"]
        assert list(outbox.glob("*.bin")) == []

        assert second.stdin is not None
        second.stdin.write("\n")  # a short press, as --simulate reads it
        second.stdin.flush()
        wait_until(lambda: "button up at" in second_err.read_text(), "the core handling the press", 60.0, second)
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0

        inbox.assert_nothing_arrived()
        types = [r["type"] for r in read_records(log_dir)]
        assert "send" not in types and "sent" not in types
        assert [r["type"] for r in read_records(log_dir) if r.get("id") == request["id"]] == ["request", "decision"]
        assert types[-1] == "stop"
        assert "[LED ◐" not in second_err.read_text()  # the restarted daemon never asked
    finally:
        for proc in procs:
            _kill(proc)
        for p in sock_dir.iterdir():
            p.unlink()
        sock_dir.rmdir()
