"""A restart approves nothing: across a SIGKILL and a restart of `guardd run`, the request that
was asking is closed as aborted and a press afterwards sends nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from conftest import silent_wav

from harness import Daemon, write_config


# -- 14. a crash and a restart ----------------------------------------------------------------------


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
    silence = silent_wav(tmp_path / "silence.wav")
    outbox = tmp_path / "state" / "outbox"
    daemons: list[Daemon] = []

    def start(name: str) -> Daemon:  # -v: the core logs each button edge it handles
        daemons.append(Daemon(tmp_path, config, silence, verbose=True, name=name, sock=socket_path))
        return daemons[-1]

    try:
        first = start("first")
        first.wait_for_record("start")
        client = first.send("--to", "inbox", "--text", "hi")
        first.wait_for_record("request")
        first.wait_until(lambda: "[LED ◐" in first.said(), "the LED asking", 60.0)
        [request] = first.records("request")
        assert (outbox / f"{request['id']}.bin").exists()

        first.kill()
        client.wait(10)  # its connection died with the daemon
        assert client.returncode != 0
        assert first.records("decision") == []  # killed: it never got to decide

        second = start("second")
        second.wait_until(lambda: "listening (models" in second.said(), "the second daemon listening", 60.0)
        aborted = [r for r in second.records("decision") if r["id"] == request["id"]]
        assert [(r["decision"], r["reason"]) for r in aborted] == [("denied", "aborted")]
        assert aborted[0]["seq"] > second.records("start")[1]["seq"]
        assert list(outbox.glob("*.bin")) == []

        second.press()  # a short press, as --simulate reads it
        second.wait_until(lambda: "button up at" in second.said(), "the core handling the press", 60.0)
        assert second.stop() == 0

        inbox.assert_nothing_arrived()
        types = second.types()
        assert "send" not in types and "sent" not in types
        assert [r["type"] for r in second.records() if r.get("id") == request["id"]] == ["request", "announce", "decision"]
        assert types[-1] == "stop"
        assert "[LED ◐" not in second.said()  # the restarted daemon never asked
    finally:
        for d in daemons:
            d.close()
        for p in sock_dir.iterdir():
            p.unlink()
        sock_dir.rmdir()
