"""`guardd doctor`: one line per check of what guardd needs, and the fix for each failure.

Each check returns a Result; none raises. The checks only read and probe: the one exception is
the state directory check, which writes and removes a small file in it to prove it can. Doctor
creates nothing: a state directory that does not exist yet is reported, not made (making it is
the first start's job, with the log's sealing key).
"""

from __future__ import annotations

import datetime
import os
import queue
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from guardd.config.settings import Config

MIN_FREE_MB = 50  # below this a busy day of recordings and log could fill the disk
SILENCE_PEAK = 8  # int16 samples: a microphone that never exceeds this is muted or absent
SAMPLE_S = 1.0  # seconds of audio read to judge the input


@dataclass(frozen=True)
class Result:
    ok: bool
    name: str
    detail: str
    fix: str = ""


def _pass(name: str, detail: str) -> Result:
    return Result(True, name, detail)


def _fail(name: str, detail: str, fix: str) -> Result:
    return Result(False, name, detail, fix)


def check_portaudio() -> Result:
    from guardd.listen.microphone import PORTAUDIO_HINT, import_sounddevice
    from guardd.errors import AudioError

    try:
        sd = import_sounddevice()
    except AudioError:
        return _fail("PortAudio", "the PortAudio library is missing", PORTAUDIO_HINT.split("; ", 1)[1])
    return _pass("PortAudio", sd.get_portaudio_version()[1])


def check_microphone(config: Config) -> Result:
    from guardd.listen.microphone import NO_INPUT_DEVICE, NO_INPUT_FIX, Microphone, list_input_devices
    from guardd.errors import AudioError

    name = "microphone"
    if not list_input_devices():
        return _fail(name, NO_INPUT_DEVICE, NO_INPUT_FIX)
    try:
        mic = Microphone(config.audio.device, queue_s=5)
        mic.start()
    except AudioError as exc:
        return _fail(name, str(exc).split("; ")[0], "run `guardd devices` and set audio.device to your microphone")
    try:
        deadline = time.monotonic() + SAMPLE_S + 2
        blocks: list[bytes] = []
        while time.monotonic() < deadline and len(blocks) * 0.08 < SAMPLE_S:
            try:
                blocks.append(mic.frames.get(timeout=0.2))
            except queue.Empty:
                continue
    finally:
        mic.stop()
    if not blocks:
        return _fail(name, "the input device opened but delivered no audio in 3 s",
                     "check the microphone's cable and `arecord -l`; pick another audio.device")
    import numpy as np

    peak = int(np.abs(np.frombuffer(b"".join(blocks), dtype=np.int16)).max())
    if peak <= SILENCE_PEAK:
        return _fail(name, f"{len(blocks) * 0.08:.1f} s of audio, all silent (peak {peak})",
                     "raise the capture level in alsamixer (F4) and check the microphone is not muted")
    return _pass(name, f"{len(blocks) * 0.08:.1f} s of audio, peak level {peak}")


def check_models(config: Config) -> Result:
    from guardd.errors import ModelError
    from guardd.listen.wake import WakeDetector

    started = time.monotonic()
    try:
        WakeDetector(list(config.wake.models), config.wake.threshold)
    except ModelError as exc:
        return _fail("wake models", str(exc), "reinstall with `pip install openwakeword==0.4.0` or fix wake.models")
    return _pass("wake models", f"{', '.join(config.wake.models)} loaded in {time.monotonic() - started:.2f} s")


def _board() -> str | None:
    try:
        return Path("/proc/device-tree/model").read_text().strip("\0\n ")
    except OSError:
        return None


def check_pin_factory() -> Result:
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    name = "GPIO pin factory"
    board = _board()
    with warnings.catch_warnings(record=True) as fallbacks:
        warnings.simplefilter("always")
        try:
            factory = Device._default_pin_factory()
        except BadPinFactory:
            factory = None
    if factory is None:
        where = board or "this machine, which is not a Raspberry Pi"
        return _fail(name, f"no pin factory loads on {where}",
                     "on a Pi: sudo apt install python3-lgpio and make the venv with --system-site-packages; "
                     "elsewhere use `guardd run --simulate`")
    kind = type(factory).__name__
    factory.close()
    env_choice = os.environ.get("GPIOZERO_PIN_FACTORY")
    if env_choice:
        return _pass(name, f"{kind}, chosen by GPIOZERO_PIN_FACTORY={env_choice}")
    if fallbacks:
        skipped = "; ".join(str(w.message) for w in fallbacks)
        return _fail(name, f"{kind} after falling back ({skipped})",
                     "install python3-lgpio (the Pi 5 needs it) and use a venv made with --system-site-packages")
    return _pass(name, f"{kind}" + (f" on {board}" if board else ""))


def check_pins(config: Config, pin_factory: object | None = None) -> Result:
    from guardd.errors import PanelError
    from guardd.device.panel import Panel

    name = "LED and button pins"
    try:
        panel = Panel(config.led, config.button, pin_factory=pin_factory, clock=time.monotonic,
                      on_edge=lambda edge: None)
    except PanelError as exc:
        return _fail(name, str(exc).split("; ")[0], "check led.pin and button.pin, and that no other program holds them")
    panel.close()
    return _pass(name, f"LED on GPIO{config.led.pin}, button on GPIO{config.button.pin}")


def check_state_dir(config: Config) -> Result:
    name = "state directory"
    path = config.state_path
    fix = f"give guardd's user a writable {path} (the service's StateDirectory= does this) or change state_dir"
    if not path.exists():
        parent = next(p for p in path.parents if p.exists())
        if not os.access(parent, os.W_OK | os.X_OK):
            return _fail(name, f"{path} does not exist yet and {parent} is not writable", fix)
        return _pass(name, f"{path} does not exist yet; guardd creates it at first start "
                     f"({parent} is writable)")
    try:
        probe = path / f".doctor-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"guardd doctor")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink()
    except OSError as exc:
        return _fail(name, f"{path} is not writable: {exc.strerror}", fix)
    free_mb = shutil.disk_usage(path).free / 1e6
    if free_mb < MIN_FREE_MB:
        return _fail(name, f"{path}: only {free_mb:.0f} MB free",
                     "free some space or lower retention.max_total_mb")
    return _pass(name, f"{path} writable, {free_mb:,.0f} MB free")


def check_log(config: Config) -> Result:
    from guardd.auditlog.verify import verify
    from guardd.pipeline import log_dir

    directory = Path(log_dir(config))
    if not directory.is_dir():
        return _pass("audit log", f"no log yet in {directory} (guardd creates it at first start)")
    count, problems = verify(directory)
    if problems:
        return _fail("audit log", f"{len(problems)} problem(s), first: {problems[0]}",
                     "run `guardd verify` to see every problem; keep the log as evidence")
    return _pass("audit log", f"{count} records verify")


def check_socket(config: Config) -> Result:
    name = "control socket"
    path = Path(config.socket.path)
    if not path.exists():
        parent = path.parent
        if parent.is_dir() and os.access(parent, os.W_OK):
            return _pass(name, f"{path} not there yet; {parent} is writable")
        return _fail(name, f"{parent} does not exist or is not writable",
                     "under systemd RuntimeDirectory=guardd provides it; otherwise set socket.path")
    st = path.stat()
    mode = st.st_mode & 0o777
    if mode & 0o007:
        return _fail(name, f"{path} is mode {mode:04o}: anyone may submit sends",
                     "restart guardd (it creates the socket 0660) and check nothing chmods it")
    if config.socket.group:
        import grp

        try:
            want = grp.getgrnam(config.socket.group).gr_gid
        except KeyError:
            return _fail(name, f"socket.group {config.socket.group!r} does not exist",
                         f"sudo groupadd {config.socket.group}")
        if st.st_gid != want:
            return _fail(name, f"{path} belongs to group {st.st_gid}, not {config.socket.group}",
                         "restart guardd")
    return _pass(name, f"{path} mode {mode:04o}")


def check_clock() -> Result:
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.year < 2025:
        return _fail("clock", f"the wall clock says {now:%Y-%m-%d}",
                     "a Pi has no real-time clock: enable time sync (timedatectl set-ntp true); "
                     "retention by age needs a sane clock")
    return _pass("clock", f"{now:%Y-%m-%d %H:%M} UTC")


def check_service() -> Result:
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return _fail("service", "systemd is not running here",
                     "on the Pi install the unit with scripts/install.sh")
    state = subprocess.run(["systemctl", "is-active", "guardd"], capture_output=True, text=True, timeout=10)
    status = state.stdout.strip() or state.stderr.strip()
    if status != "active":
        return _fail("service", f"guardd.service is {status}",
                     "sudo systemctl enable --now guardd; then journalctl -u guardd")
    return _pass("service", "guardd.service is active")


def hardware_test(config: Config, wait_s: float = 15.0, pin_factory: object | None = None,
                  say: Callable[[str], None] = print) -> Result:
    """Blink the LED and wait for one press: proves the wiring of both."""
    from guardd.errors import PanelError
    from guardd.device.panel import LedState, Panel

    edges: queue.Queue = queue.Queue()
    try:
        panel = Panel(config.led, config.button, pin_factory=pin_factory, clock=time.monotonic,
                      on_edge=edges.put)
    except PanelError as exc:
        return _fail("hardware", str(exc).split("; ")[0], "check the wiring against hardware.md")
    try:
        panel.show(LedState.AWAITING)
        say(f"The LED on GPIO{config.led.pin} should blink now. Press the button on "
            f"GPIO{config.button.pin} within {wait_s:g} s.")
        try:
            edge = edges.get(timeout=wait_s)
        except queue.Empty:
            return _fail("hardware", f"no press within {wait_s:g} s",
                         "check the button: one leg to the GPIO pin, the other to ground (hardware.md)")
        return _pass("hardware", f"button {'pressed' if edge.pressed else 'released'}; "
                     "if the LED did not blink, check its polarity and resistor")
    finally:
        panel.close()


def run_checks(config: Config | None, *, hardware: bool = False,
               say: Callable[[str], None] = print) -> list[Result]:
    """Every check; with no config (it did not load) only those that need none."""
    if config is None:
        results = [check_portaudio(), check_pin_factory(), check_clock(), check_service()]
        if hardware:
            results.append(hardware_skipped("the config did not load, so the pins are unknown"))
        return results
    results = [check_portaudio()]
    if results[0].ok:
        results.append(check_microphone(config))
    results += [check_models(config), check_pin_factory()]
    if results[-1].ok:
        results.append(check_pins(config))
    results += [check_state_dir(config), check_log(config), check_socket(config), check_clock(), check_service()]
    if hardware:
        blocked = [r for r in results if r.name in ("GPIO pin factory", "LED and button pins") and not r.ok]
        if not blocked:
            results.append(hardware_test(config, say=say))
        elif blocked[0].name == "GPIO pin factory":
            results.append(hardware_skipped("no GPIO pins here (not a Raspberry Pi, or /dev/gpiochip* "
                                            "is hidden from this process)"))
        else:
            results.append(hardware_skipped("the LED and button pins did not open (above)"))
    return results


def hardware_skipped(why: str) -> Result:
    """--hardware asked for the LED and button test: say plainly that it did not happen."""
    return _fail("hardware", f"LED and button test skipped: {why}",
                 "run it on the Pi, outside the service (it holds the pins): sudo systemctl stop guardd && "
                 "sudo /opt/guardd/venv/bin/guardd doctor --hardware; sudo systemctl start guardd")
