"""guardd leaves nothing outside its state directory: `guardd run` (audio through ALSA's file
plugin, a wake word heard, the models run) and `guardd replay`, each in a fresh HOME with fresh
XDG folders and TMPDIR, write no file anywhere but the state directory and the control socket.
onnxruntime 1.29 and later would write ~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid
and an event store there (guardd/listen/onnxrt.py); no library may. And a home that cannot be
written (as under a hardened service) changes nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from harness import GUARDD, Daemon, guardd, write_config

XDG = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR")


def fresh_places(directory: Path) -> dict[str, str]:
    """An environment whose HOME, XDG folders and TMPDIR are empty folders under `directory`."""
    env = {"HOME": str(directory / "home"), "TMPDIR": str(directory / "tmp")}
    env.update({name: str(directory / "xdg" / name.lower()) for name in XDG})
    for place in env.values():
        Path(place).mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


def tree(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def wake_wav(manifest: dict) -> Path:
    return manifest["dir"] / manifest["demo"]["file"]


def test_run_and_replay_write_nothing_outside_the_state_dir(tmp_path: Path, manifest: dict) -> None:
    env = fresh_places(tmp_path)
    config = write_config(tmp_path)  # state in tmp_path/state, socket tmp_path/guardd.sock
    # What the test itself makes: the microphone's .asoundrc and raw audio, the daemon's stderr.
    before = tree(tmp_path) | {"home/.asoundrc", f"{wake_wav(manifest).stem}.raw", "daemon.stderr"}

    daemon = Daemon(tmp_path, config, wake_wav(manifest), simulate=False, env=env, wait_for_socket=False)
    daemon.wait_for_record("utterance")  # the models loaded, ran on the audio and woke
    assert daemon.stop(signal.SIGTERM) == 0
    replayed = guardd("replay", str(wake_wav(manifest)), "--config", str(config), env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert '"wake"' in replayed.stdout or "wake word" in replayed.stdout + replayed.stderr

    new = sorted(p for p in tree(tmp_path) - before if not p.startswith("state/"))
    assert new == [], "written outside the state dir"


@pytest.fixture
def read_only_home(tmp_path: Path) -> list[str]:
    """A command prefix that runs its command with tmp_path/home mounted read-only (a mount
    namespace of its own), so even root cannot write there, as under ProtectHome=read-only."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    prefix = ["unshare", "--mount", "sh", "-c", f'mount --bind -o ro "{home}" "{home}" && exec "$@"', "sh"]
    probe = subprocess.run([*prefix, "touch", str(home / "probe")], capture_output=True, text=True, timeout=30)
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only mount here (needs root and mount namespaces): {probe.stderr.strip()}")
    return prefix


def test_a_read_only_home_breaks_neither_run_nor_replay(tmp_path: Path, manifest: dict,
                                                         read_only_home: list[str]) -> None:
    env = fresh_places(tmp_path)
    config = write_config(tmp_path)
    daemon = Daemon(tmp_path, config, wake_wav(manifest), simulate=False, env=env, wait_for_socket=False,
                    program=[*read_only_home, *GUARDD])  # the .asoundrc is written before the mount
    daemon.wait_for_record("utterance")
    assert daemon.stop(signal.SIGTERM) == 0
    assert "Read-only" not in daemon.said() and "Traceback" not in daemon.said(), daemon.said()

    replayed = subprocess.run([*read_only_home, *GUARDD, "replay", str(wake_wav(manifest)), "--config", str(config)],
                              capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert replayed.returncode == 0, replayed.stderr
    assert "Traceback" not in replayed.stderr
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [".asoundrc"]
