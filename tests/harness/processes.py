"""guardd as the owner and systemd meet it: the CLI run to completion, and `guardd run` as a
long-lived process (Daemon) with ALSA's file plugin as its microphone; configs written to a temp
directory; and the one wait of every test."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Sequence

import numpy as np
import yaml

from guardd.auditlog.reading import read_records

ROOT = Path(__file__).resolve().parent.parent.parent
GUARDD = [sys.executable, "-m", "guardd"]
WAIT_S = 10.0  # the longest any real-time wait of the harness may take


def write_config(directory: Path, *, unmuted: bool = True, **sections: Any) -> Path:
    """A config whose state_dir lives in `directory`; keyword arguments add or replace sections.

    A fresh state starts muted (promise 5); `unmuted` leaves the state as the owner's long
    press would, so a test of listening does not first have to hold the button for 3 s.
    guardd's sounds go nowhere (`announce.output: none`) unless the test gives `announce`."""
    body: dict[str, Any] = {"state_dir": str(directory / "state"),
                            "socket": {"path": str(directory / "guardd.sock")},
                            "announce": {"output": "none"}}
    body.update(sections)
    path = directory / "guardd.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    if unmuted:
        from guardd.device.mute import write_muted

        write_muted(directory / "state", False)
    return path


def guardd(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
           check: bool = False, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the guardd CLI to completion and capture its output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [*GUARDD, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
        check=check, input=input, cwd=ROOT,
    )


def wait_until(condition, what: str, timeout_s: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout_s`, or at once when the
    process `proc` (a guardd being watched) exits first. The one wait of every test."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"guardd exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what} ({timeout_s:g} s)")


def wait_for_record(log_dir: Path, type_: str, proc: subprocess.Popen | None = None,
                    timeout_s: float = 60.0) -> dict[str, Any]:
    """The first record of `type_` in a log another process writes; fails if that process exits."""
    from guardd.auditlog.reading import read_records

    found: list[dict[str, Any]] = []

    def seen() -> bool:
        assert proc is None or proc.poll() is None, "guardd exited early"
        found[:] = [r for r in read_records(log_dir) if r["type"] == type_] if log_dir.is_dir() else []
        return bool(found)

    wait_until(seen, f"a {type_} record in {log_dir}", timeout_s)
    return found[0]


ASOUNDRC = """\
# The default device is ALSA's file plugin: the real sounddevice -> PortAudio -> ALSA path, on a
# machine with no sound card. Capture reads a raw file (not paced in real time; after the file
# it delivers silence); playback appends what is played, as raw samples, to another file. The
# two directions are two PCMs (asym), since a file PCM also copies what it captures to its file.
pcm.!default {{
    type asym
    capture.pcm "guardd_in"
    playback.pcm "guardd_out"
    hint {{ show on description "guardd test input and output" }}
}}
pcm.guardd_in {{
    type plug
    slave.pcm {{ type file slave.pcm "null" file "/dev/null" infile "{raw}" format "raw" }}
}}
pcm.guardd_out {{
    type plug
    slave.pcm {{ type file slave.pcm "null" file "|{take} >> {played}" format "raw" }}
}}
"""


def alsa_env(directory: Path, wav: Path, played: Path | None = None, vanishes_after: int | None = None) -> dict[str, str]:
    """An environment whose ALSA default input plays `wav` (16 kHz mono 16-bit) once, and whose
    default output appends what it plays to `played` (or to /dev/null); with `vanishes_after`
    the output takes that many bytes, then its pipe closes and every write fails (a speaker
    unplugged mid-sentence)."""
    import wave

    with wave.open(str(wav), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        raw = directory / (wav.stem + ".raw")
        raw.write_bytes(w.readframes(w.getnframes()))
    home = directory / "home"
    home.mkdir(exist_ok=True)
    take = "cat" if vanishes_after is None else f"head -c {vanishes_after}"
    (home / ".asoundrc").write_text(ASOUNDRC.format(raw=raw, played=played or "/dev/null", take=take))
    return {"HOME": str(home)}


def heard(played: Path, at_least: int = 0, timeout_s: float = 10.0) -> np.ndarray:
    """The samples the output has appended to `played` so far. ALSA's file plugin hands them to
    `cat` through a pipe it never waits on, so the last of a sound can reach the file a moment
    after the player (or the process) is done with it: with `at_least`, wait up to `timeout_s`
    for that many samples before reading."""
    deadline = time.monotonic() + timeout_s
    while at_least and (not played.exists() or played.stat().st_size < 2 * at_least) and time.monotonic() < deadline:
        time.sleep(0.01)
    return np.fromfile(played, dtype="<i2") if played.exists() else np.zeros(0, dtype="<i2")




class Daemon:
    """`guardd run` in its own process, as systemd starts it, with the config at `config` (its
    state under `directory`): ALSA's file plugin plays `wav` once as the microphone, then silence;
    gpiozero's mock pins stand in for the LED and the button. With `simulate` it draws the LED
    on stderr and takes a press for each line on stdin. What it plays on the speaker is
    appended to `played` (raw samples), if given (up to `vanishes_after` bytes, then the speaker
    is gone). stderr is kept in a file. `extra` arguments follow `run`'s own. `program` is
    what runs guardd's main (a test may run it through a driver that patches a seam first)."""

    def __init__(self, directory: Path, config: Path, wav: Path | None = None, *, simulate: bool = True,
                 verbose: bool = False, env: dict[str, str] | None = None, name: str = "daemon",
                 preexec_fn: Callable[[], None] | None = None, wait_for_socket: bool = True,
                 sock: Path | None = None, program: Sequence[str] = GUARDD, played: Path | None = None,
                 vanishes_after: int | None = None, extra: Sequence[str] = ()) -> None:
        self.directory = directory
        self.config = config
        self.sock = sock or directory / "guardd.sock"  # write_config's socket.path unless told
        self.log_dir = directory / "state" / "log"
        self.env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
        if wav is not None:
            self.env.update(alsa_env(directory, wav, played, vanishes_after))
            self.raw = str(directory / (wav.stem + ".raw"))
        self.env.update(env or {})
        self.stderr_path = directory / f"{name}.stderr"
        args = [*program, *(["-v"] if verbose else []), "run", *(["--simulate"] if simulate else []),
                "--config", str(config), *extra]
        self._stderr: IO[str] = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr, text=True,
                                     preexec_fn=preexec_fn)
        if wait_for_socket:
            self.wait_until(self.sock.exists, "the control socket", 60.0)

    # -- watching it ---------------------------------------------------------------------------

    def wait_until(self, condition: Callable[[], Any], what: str, timeout_s: float = 30.0) -> None:
        """As wait_until, failing at once if the daemon exits first."""
        wait_until(condition, what, timeout_s, self.proc)

    def wait_for_record(self, type_: str, timeout_s: float = 60.0) -> dict[str, Any]:
        return wait_for_record(self.log_dir, type_, self.proc, timeout_s)

    def said(self) -> str:
        """What it wrote to stderr so far (the log lines, and the LED drawn by --simulate)."""
        return self.stderr_path.read_text()

    def wait_announced(self, count: int = 1, timeout_s: float = 30.0) -> None:
        """Until the `count`th announcement has said where to and how much: from then a press
        counts. Its journal line (written as it begins) says how long that takes."""
        found: list[str] = []

        def begun() -> bool:
            found[:] = re.findall(r" is announced \([\d.]+ s; a press counts after ([\d.]+) s\)", self.said())
            return len(found) >= count

        self.wait_until(begun, f"announcement #{count} to begin", timeout_s)
        # (the line is written as it begins; the player thread says when the first part is out,
        # which on a loaded machine can come a little after the time the line gives)
        time.sleep(float(found[count - 1]) + 0.5)

    def records(self, type_: str | None = None) -> list[dict[str, Any]]:
        if not self.log_dir.is_dir():
            return []
        return [r for r in read_records(self.log_dir) if type_ is None or r["type"] == type_]

    def types(self) -> list[str]:
        return [str(r["type"]) for r in self.records()]

    def microphone_open(self) -> bool:
        """Whether the process holds the ALSA input (the file plugin's infile) open."""
        fds = Path(f"/proc/{self.proc.pid}/fd")
        return any(os.path.realpath(fd) == self.raw for fd in fds.iterdir() if fd.is_symlink())

    # -- talking to it -------------------------------------------------------------------------

    def stdin(self, line: str = "") -> None:
        """A line on stdin: under --simulate, a press (an empty line) or another command."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def press(self) -> None:
        self.stdin("")

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """One call on the control socket, and its first reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT_S)
            s.connect(str(self.sock))
            s.sendall(json.dumps(message).encode() + b"\n")
            return json.loads(s.makefile("rb").readline())

    def submit(self, text: str, to: str = "inbox") -> socket.socket:
        """A message submitted on the control socket, left open for its replies."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(WAIT_S)
        s.connect(str(self.sock))
        s.sendall(json.dumps({"call": "submit", "to": to, "text": text}).encode() + b"\n")
        return s

    def send(self, *args: str) -> subprocess.Popen[str]:
        """`guardd send` against this daemon's socket, running."""
        return subprocess.Popen([*GUARDD, "send", "--socket", str(self.sock), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, env=self.env)

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = WAIT_S) -> int:
        """Signal it and wait for it to exit; its exit code (it is killed if it does not)."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self._stderr.close()
