"""What a fault, a full disk and a hostile state directory do to the gate.

- Only the log fault stops sending; whenever a press can approve, the LED asks.
- A payload that cannot be copied in is refused (`disk_full`, `too_large`), logged, and the
  daemon keeps running.
- Start-up removes everything left in the outbox, and logs it.
- Spool, recording, key and mute files are never written or read through a planted symlink.

The device tests drive the real pipeline of tests/harness.py (real log, real HTTP server on loopback,
MockFactory pins); the full-disk case is also run against `guardd run` under a real file-size limit.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import tempfile
from pathlib import Path

import pytest
from conftest import silent_wav
from harness import T0, Daemon, Device, write_config

from guardd.auditlog import sealing
from guardd.errors import KeyStateError, Refused
from guardd.config.settings import RetentionConfig
from guardd.device.mute import read_muted
from guardd.device.panel import ENDING_S, LedState
from guardd.listen.recordings import Recordings


def _fail_writes_under(directory: Path, error: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write fails with `error` for files under `directory` (a dying disk, a full one)."""
    real = os.write

    def write(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory)):
            raise OSError(error, os.strerror(error))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


def _next_request_id(d: Device) -> str:
    return f"r{d.p.auditlog.head.seq + 1}"


# -- item 1: which faults block sending ------------------------------------------------------------


def test_a_microphone_fault_leaves_the_led_asking_and_a_press_sends(device, inbox):
    d = device()
    d.core.report_fault("audio", "no input device found")
    assert d.led is LedState.FAULT
    s = d.submit(b"still wanted")
    assert d.led is LedState.AWAITING, "a press can approve, so the LED must ask"
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(s, b"still wanted")
    inbox.assert_received_exactly(b"still wanted")
    assert d.led is LedState.FAULT  # the microphone is still missing


def test_a_log_fault_denies_at_once_and_logs_why_when_the_log_writes_again(device, inbox):
    d = device()
    armed = d.submit(b"one", client=1)
    waiting = d.submit(b"two", client=2)
    assert d.led is LedState.AWAITING
    d.journal.failing = "cannot write the log: Input/output error"
    d.core.note("reload")  # any record that cannot be written enters the log fault
    assert armed.final == {"status": "denied", "id": armed.id, "reason": "log unavailable"}
    assert waiting.final == {"status": "denied", "id": waiting.id, "reason": "log unavailable"}
    assert d.led is LedState.FAULT and not d.core.broker.busy and d.core.broker.armed is None
    d.press(T0 + 1.0)
    assert d.led is LedState.FAULT
    inbox.assert_nothing_arrived()
    d.journal.heal()
    d.core.note("reload")  # the log writes again: the denials it missed are recorded
    for s in (armed, waiting):
        d.assert_denied(s, "log unavailable")
    d.at(T0 + ENDING_S)  # the denials' ending, shown over the fault's end, has run out
    assert d.led is LedState.IDLE


# -- item 2: a payload that cannot be copied in ------------------------------------------------------


def test_a_full_disk_refuses_the_request_as_disk_full_and_leaves_no_partial_copy(device, inbox, monkeypatch):
    d = device()
    outbox = d.config.state_path / "outbox"
    _fail_writes_under(outbox, errno.ENOSPC, monkeypatch)
    with pytest.raises(Refused) as exc:
        d.submit(b"x" * 5000)
    monkeypatch.undo()
    assert exc.value.code == "disk_full"
    assert "No space left on device" in str(exc.value)
    [refused] = d.records("refused")
    assert (refused["code"], refused["bytes"]) == ("disk_full", 5000)
    assert d.records("request") == []
    assert list(outbox.iterdir()) == [], "a partial copy stayed in the outbox"
    s = d.submit(b"after the disk has room")  # the broker goes on
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(s, b"after the disk has room")


def test_a_payload_over_the_file_size_limit_is_refused_and_the_daemon_keeps_running(tmp_path, inbox):
    """`guardd run` under RLIMIT_FSIZE: the kernel's EFBIG on the spool is a `too_large` refusal."""
    sock_dir = Path(tempfile.mkdtemp(prefix="guardd-fsize-"))
    socket_path = sock_dir / "g.sock"
    config = write_config(tmp_path, audio={"queue_s": 120}, socket={"path": str(socket_path)},
                          destinations={"inbox": {"url": inbox.url, "max_bytes": 4_000_000}})
    limit = 1_000_000  # bytes any one file may reach; the log's segments stay far below it

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG

    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"), preexec_fn=limited, sock=socket_path)
    try:
        big = tmp_path / "big.bin"
        big.write_bytes(b"y" * 2_000_000)
        send = d.send("--to", "inbox", "--file", str(big))
        out, err = send.communicate(timeout=60)
        assert send.returncode == 9, out + err
        assert "File too large" in out + err
        assert d.proc.poll() is None, "the daemon died on a spool it could not write"
        assert [(r["code"], r["bytes"]) for r in d.records("refused")] == [("too_large", 2_000_000)]
        assert list((tmp_path / "state" / "outbox").glob("*")) == []
        assert d.call({"call": "status"})["status"] == "ok"  # and it still answers
    finally:
        d.stop()
        for p in sock_dir.iterdir():
            p.unlink()
        sock_dir.rmdir()
    inbox.assert_nothing_arrived()


# -- item 3: leftovers in the outbox ------------------------------------------------------------------


def test_start_up_logs_and_removes_every_outbox_leftover(device, tmp_path):
    outbox = tmp_path / "state" / "outbox"
    outbox.mkdir(parents=True)
    (outbox / "r5.tmp").write_bytes(b"half a payload")
    (outbox / "r6.bin").write_bytes(b"a whole payload")
    (outbox / "r7.abcdef123456.tmp").write_bytes(b"")
    d = device()
    assert list(outbox.iterdir()) == []
    deleted = {r["file"]: (r["reason"], r["bytes"]) for r in d.records("deleted")}
    assert deleted == {"outbox/r5.tmp": ("leftover", 14), "outbox/r6.bin": ("leftover", 15),
                       "outbox/r7.abcdef123456.tmp": ("leftover", 0)}


# -- item 6: planted symlinks ------------------------------------------------------------------------


def test_a_symlink_planted_in_the_outbox_is_never_written_through(device, inbox, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"the owner's file")
    d = device()
    outbox = d.config.state_path / "outbox"
    outbox.mkdir(exist_ok=True)
    request_id = _next_request_id(d)
    (outbox / f"{request_id}.tmp").symlink_to(victim)  # the temporary name older guardd used
    (outbox / f"{request_id}.bin").symlink_to(victim)
    s = d.submit(b"the payload")
    assert s.id == request_id
    assert victim.read_bytes() == b"the owner's file"
    spooled = outbox / f"{request_id}.bin"
    assert not spooled.is_symlink() and spooled.read_bytes() == b"the payload"
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(s, b"the payload")
    assert victim.read_bytes() == b"the owner's file"


def test_a_symlink_planted_where_a_recording_goes_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"the owner's file")
    recordings = Recordings(tmp_path / "recordings", RetentionConfig())
    recordings.directory.mkdir()
    recordings.path_for(12).symlink_to(victim)
    planted_temp = recordings.path_for(12).with_suffix(".tmp")  # the temporary name older guardd used
    planted_temp.symlink_to(victim)
    kept = recordings.keep(12, b"RIFF a recording")
    assert victim.read_bytes() == b"the owner's file"
    assert not kept.is_symlink() and kept.read_bytes() == b"RIFF a recording"
    assert recordings.stray_temp_files() == [planted_temp]  # left for start-up to log and delete


def test_a_key_state_or_mute_file_that_is_a_symlink_is_refused(tmp_path):
    real_key = tmp_path / "elsewhere"
    real_key.mkdir()
    sealing.save_state(real_key, sealing.KeyState(1, b"k" * 32, "0" * 64))
    key_dir = tmp_path / "key"
    key_dir.mkdir()
    (key_dir / sealing.STATE_NAME).symlink_to(real_key / sealing.STATE_NAME)
    with pytest.raises(KeyStateError, match="symlink"):
        sealing.load_state(key_dir)
    fifo_dir = tmp_path / "fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / sealing.STATE_NAME)
    with pytest.raises(KeyStateError, match="not a regular file"):
        sealing.load_state(fifo_dir)  # and it does not hang

    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "says-unmuted").write_text("unmuted\n")
    (state / "mute").symlink_to(tmp_path / "says-unmuted")
    assert read_muted(state), "a planted symlink must read as muted"
