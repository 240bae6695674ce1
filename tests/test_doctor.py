"""`guardd doctor`: one line per check, the fix for each failure, non-zero exit on any failure;
on this machine with and without PortAudio, with a bad pin config and a read-only state dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import files_under, unconfigured
from harness import ROOT, alsa_env, guardd, write_config
from test_cli import NO_PORTAUDIO


def lines_of(output: str) -> dict[str, str]:
    """check name -> its 'ok'/'skip'/'FAIL' line (and the fix line after a FAIL)."""
    found: dict[str, str] = {}
    rows = output.splitlines()
    for i, row in enumerate(rows):
        if row.startswith(("ok  ", "FAIL", "skip")):
            name = row[6:].split(":", 1)[0]
            fix = rows[i + 1].strip() if row.startswith("FAIL") and i + 1 < len(rows) else ""
            found[name] = row + ("\n" + fix if fix else "")
    return found


def speech_env(tmp_path: Path, manifest: dict) -> dict[str, str]:
    env = alsa_env(tmp_path, manifest["dir"] / manifest["demo"]["file"])
    env["GPIOZERO_PIN_FACTORY"] = "mock"
    return env


def test_doctor_passes_what_this_machine_has_and_names_the_fix_for_what_it_lacks(tmp_path, manifest):
    config = write_config(tmp_path, socket={"path": str(tmp_path / "run" / "guardd.sock")},
                          announce={"output": "device"})
    (tmp_path / "run").mkdir()
    result = guardd("doctor", "--config", str(config), env=speech_env(tmp_path, manifest), timeout=60)
    checks = lines_of(result.stdout)
    for name in ("config", "PortAudio", "microphone", "speaker", "speech", "wake models", "GPIO pin factory",
                 "LED and button pins", "state directory", "audit log", "control socket", "clock"):
        assert checks[name].startswith("ok  "), checks.get(name, result.stdout)
    assert "peak level" in checks["microphone"] and "plays" in checks["speaker"]
    assert checks["speech"].startswith("ok    speech: espeak-ng") and " s of speech in " in checks["speech"]
    # No systemd runs here: the one failure, with its fix, and the exit status says so.
    assert checks["service"].startswith("FAIL") and "fix: " in checks["service"]
    assert result.returncode == 1


@pytest.mark.skipif(Path("/etc/guardd/guardd.yaml").exists(), reason="this machine has a system config")
def test_doctor_without_a_config_only_looks_it_creates_no_state_dir_and_no_key(tmp_path):
    env, default_state = unconfigured(tmp_path)
    before = files_under(default_state)
    result = guardd("doctor", env=env, timeout=90)
    checks = lines_of(result.stdout)
    assert checks["config"] == "ok    config: <defaults>", result.stdout
    if before is None:
        assert checks["state directory"].startswith(
            f"ok    state directory: {default_state} does not exist yet; guardd creates it at first start")
        assert not default_state.exists(), f"doctor created {default_state}"
    assert files_under(default_state) == before, f"doctor changed {default_state}"


def test_doctor_without_portaudio_names_the_package(tmp_path, manifest):
    config = write_config(tmp_path)
    env = dict(os.environ, **speech_env(tmp_path, manifest))
    result = subprocess.run([sys.executable, "-c", NO_PORTAUDIO, "doctor", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    checks = lines_of(result.stdout)
    assert checks["PortAudio"] == ("FAIL  PortAudio: the PortAudio library is missing\n"
                                   "fix: install it with: sudo apt install libportaudio2")
    assert "microphone" not in checks  # nothing to open a microphone with
    assert result.returncode == 1


def test_doctor_on_a_machine_without_gpio_skips_the_pin_checks_and_does_not_fail_for_them(tmp_path):
    """A laptop has no GPIO, and that is nothing to fix: the checks say so and the exit status
    is left to real problems (here the service that no systemd runs, and nothing else)."""
    config = write_config(tmp_path, socket={"path": str(tmp_path / "guardd.sock")})
    result = guardd("doctor", "--hardware", "--config", str(config), env={"GPIOZERO_PIN_FACTORY": ""}, timeout=60)
    checks = lines_of(result.stdout)
    no_gpio = "no GPIO here (not a Raspberry Pi): `guardd run --simulate` stands in for the LED and button"
    assert checks["GPIO pin factory"] == f"skip  GPIO pin factory: skipped: {no_gpio}"
    assert checks["LED and button pins"] == f"skip  LED and button pins: skipped: {no_gpio}"
    assert checks["hardware"] == f"skip  hardware: skipped: LED and button test: {no_gpio}"
    failed = [name for name, line in checks.items() if line.startswith("FAIL")]
    assert not any("GPIO" in checks[name] or "pin" in name for name in failed), result.stdout
    assert "3 skipped" in result.stdout.splitlines()[-1]
    assert result.returncode == (1 if failed else 0)


def test_a_raspberry_pi_without_a_pin_factory_is_a_failure_with_the_fix():
    from guardd.cli.doctor.pins import check_pin_factory

    result = check_pin_factory(board="Raspberry Pi 4 Model B Rev 1.5")
    assert not result.ok and not result.skipped
    assert result.detail == "no pin factory loads on Raspberry Pi 4 Model B Rev 1.5"
    assert "python3-lgpio" in result.fix


def test_a_pin_factory_that_the_owner_named_and_that_does_not_load_is_a_failure(tmp_path):
    config = write_config(tmp_path)
    result = guardd("doctor", "--config", str(config), env={"GPIOZERO_PIN_FACTORY": "lgpio"}, timeout=60)
    checks = lines_of(result.stdout)
    assert checks["GPIO pin factory"].startswith("FAIL  GPIO pin factory: "), result.stdout
    assert result.returncode == 1


def test_no_input_device_is_named_with_the_fix_not_as_portaudio_error_minus_one(tmp_path):
    # A HOME without the tests' ~/.asoundrc: on a machine with no sound card PortAudio sees no input.
    (tmp_path / "home").mkdir()
    env = {"HOME": str(tmp_path / "home")}
    listed = subprocess.run([sys.executable, "-c", "from guardd.sounddevices import list_devices\n"
                             "print(len(list_devices('input')))"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ, **env))
    if listed.stdout.strip() != "0":
        pytest.skip("this machine has a sound card; the case needs one without")
    result = guardd("doctor", "--config", str(write_config(tmp_path, announce={"output": "device"})), env=env, timeout=60)
    checks = lines_of(result.stdout)
    assert checks["microphone"] == (
        "FAIL  microphone: no input device found (PortAudio sees none)\n"
        "fix: plug in a USB microphone or set audio.device; `guardd devices` lists them"), result.stdout
    assert checks["speaker"] == (
        "FAIL  speaker: no output device found (PortAudio sees none)\n"
        "fix: check the speaker and `aplay -l`; set audio.output_device (`guardd devices` lists them) "
        "or announce.output: none"), result.stdout
    assert "Error querying device" not in result.stdout + result.stderr
    # The daemon's fault record gets the same words when it opens the default input.
    opened = subprocess.run(
        [sys.executable, "-c", "from guardd.listen.microphone import Microphone\n"
         "try:\n    Microphone(None, 1.0).start()\nexcept Exception as exc:\n    print(exc)\n"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ, **env))
    assert opened.stdout.strip() == ("no input device found (PortAudio sees none): plug in a USB microphone "
                                     "or set audio.device; `guardd devices` lists them"), opened.stderr


def test_doctor_with_a_bad_pin_config_reports_the_line_and_still_checks_the_rest(tmp_path):
    config = tmp_path / "guardd.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\nled:\n  pin: 40\n")
    result = guardd("doctor", "--config", str(config), timeout=60)
    checks = lines_of(result.stdout)
    assert checks["config"].startswith(f"FAIL  config: {config}:3: led.pin: must be a BCM GPIO number 0..27 (got 40)")
    assert checks["PortAudio"].startswith("ok  ") and "clock" in checks
    assert result.returncode == 1


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop root")
def test_doctor_with_a_read_only_state_dir_says_so():
    # pytest's tmp_path sits under a 0700 directory that an ordinary user cannot enter.
    tmp_path = Path(tempfile.mkdtemp(prefix="guardd-doctor-", dir="/tmp"))
    tmp_path.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir(mode=0o555)
    config = tmp_path / "guardd.yaml"
    config.write_text(f"state_dir: {state}\n")
    config.chmod(0o644)
    # As root every directory is writable, so the owner's view is checked as an ordinary user.
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "guardd", "doctor", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ, HOME=str(tmp_path)),
    )
    checks = lines_of(result.stdout)
    assert checks["state directory"].startswith(f"FAIL  state directory: {state} is not writable: Permission denied"), result.stdout + result.stderr
    assert "StateDirectory=" in checks["state directory"]
    assert result.returncode == 1
    shutil.rmtree(tmp_path)


def test_doctor_without_a_speech_engine_names_the_package(tmp_path, manifest):
    (tmp_path / "bin").mkdir()  # a PATH with no espeak-ng on it
    env = dict(speech_env(tmp_path, manifest), PATH=str(tmp_path / "bin"))
    result = guardd("doctor", "--config", str(write_config(tmp_path)), env=env, timeout=60)
    checks = lines_of(result.stdout)
    assert checks["speech"] == ("FAIL  speech: no speech engine (espeak-ng): requests are announced with a "
                                "tone, not in words\nfix: sudo apt install espeak-ng")
    assert result.returncode == 1


@pytest.mark.parametrize("listen, verdict, says", [
    (None, "ok  ", "off (wyoming.listen is null)"),
    ("127.0.0.1:{free}", "ok  ", "free; allows 127.0.0.1"),
    ("127.0.0.1:{held}", "ok  ", "is in use (by guardd itself if it runs"),
    ("192.0.2.99:10700", "FAIL", "set wyoming.listen to this Pi's LAN address"),
], ids=["off", "free", "in use", "not this device's address"])
def test_doctor_checks_that_satellite_mode_can_listen_where_it_is_told(tmp_path, listen, verdict, says):
    import socket

    with socket.socket() as held, socket.socket() as free:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        free.bind(("127.0.0.1", 0))
        ports = {"held": held.getsockname()[1], "free": free.getsockname()[1]}
        free.close()
        wyoming = {"listen": listen.format(**ports), "allow": ["127.0.0.1"]} if listen else {"listen": None}
        config = write_config(tmp_path, wyoming=wyoming)
        result = guardd("doctor", "--config", str(config), env={"GPIOZERO_PIN_FACTORY": "mock"}, timeout=60)
    line = lines_of(result.stdout)["satellite mode"]
    assert line.startswith(verdict) and says in line, line
