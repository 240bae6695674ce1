"""Doctor's checks of the LED and the button: a pin factory, the configured pins, and with
--hardware a blink and a press that prove the wiring."""

from __future__ import annotations

import os
import queue
import time
import warnings
from pathlib import Path
from typing import Callable

from guardd.cli.doctor.result import Result, failed, passed, skipped
from guardd.config.settings import Config

# Where the board names itself (the second is what /proc/device-tree links to).
MODEL_FILES = (Path("/proc/device-tree/model"), Path("/sys/firmware/devicetree/base/model"))
NO_GPIO = "no GPIO here (not a Raspberry Pi): `guardd run --simulate` stands in for the LED and button"


def _board() -> str | None:
    for path in MODEL_FILES:
        try:
            return path.read_text().strip("\0\n ")
        except OSError:
            continue
    return None


def is_pi(board: str | None) -> bool:
    return board is not None and "Raspberry Pi" in board


def check_pin_factory(board: str | None | bool = True) -> Result:
    """The pin factory gpiozero would use. With none on a machine that is not a Raspberry Pi
    (a laptop) the GPIO checks are skipped, not failed: nothing is wrong there. On a Pi, or
    when GPIOZERO_PIN_FACTORY names one, a missing factory is a real problem. `board`: the
    board's model (True: read it from the device tree)."""
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    name = "GPIO pin factory"
    if board is True:
        board = _board()
    assert board is None or isinstance(board, str)
    chosen = os.environ.get("GPIOZERO_PIN_FACTORY")
    with warnings.catch_warnings(record=True) as fallbacks:
        warnings.simplefilter("always")
        try:
            factory = Device._default_pin_factory()
        except BadPinFactory:
            factory = None
        except Exception as exc:  # noqa: BLE001 - a named factory whose library is missing: ImportError
            return failed(name, f"GPIOZERO_PIN_FACTORY={chosen} does not load ({type(exc).__name__}: {exc})",
                          "install its library (lgpio: sudo apt install python3-lgpio) or unset GPIOZERO_PIN_FACTORY")
    if factory is None and not is_pi(board) and not chosen:
        return skipped(name, NO_GPIO)
    if factory is None:
        where = board or "this machine, which is not a Raspberry Pi"
        return failed(name, f"no pin factory loads on {where}",
                     "on a Pi: sudo apt install python3-lgpio and make the venv with --system-site-packages; "
                     "elsewhere use `guardd run --simulate`")
    kind = type(factory).__name__
    factory.close()
    env_choice = os.environ.get("GPIOZERO_PIN_FACTORY")
    if env_choice:
        return passed(name, f"{kind}, chosen by GPIOZERO_PIN_FACTORY={env_choice}")
    if fallbacks:
        fell_back = "; ".join(str(w.message) for w in fallbacks)
        return failed(name, f"{kind} after falling back ({fell_back})",
                     "install python3-lgpio (the Pi 5 needs it) and use a venv made with --system-site-packages")
    return passed(name, f"{kind}" + (f" on {board}" if board else ""))


def check_pins(config: Config, pin_factory: object | None = None) -> Result:
    from guardd.errors import PanelError
    from guardd.device.panel import Panel

    name = "LED and button pins"
    try:
        panel = Panel(config.led, config.button, pin_factory=pin_factory, clock=time.monotonic,
                      on_edge=lambda edge: None, blink_thread=False)
    except PanelError as exc:
        return failed(name, str(exc).split("; ")[0], "check led.pin and button.pin, and that no other program holds them")
    panel.close()
    return passed(name, f"LED on GPIO{config.led.pin}, button on GPIO{config.button.pin}")


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
        return failed("hardware", str(exc).split("; ")[0], "check the wiring against hardware.md")
    try:
        panel.show(LedState.AWAITING)
        say(f"The LED on GPIO{config.led.pin} should blink now. Press the button on "
            f"GPIO{config.button.pin} within {wait_s:g} s.")
        try:
            edge = edges.get(timeout=wait_s)
        except queue.Empty:
            return failed("hardware", f"no press within {wait_s:g} s",
                         "check the button: one leg to the GPIO pin, the other to ground (hardware.md)")
        return passed("hardware", f"button {'pressed' if edge.pressed else 'released'}; "
                     "if the LED did not blink, check its polarity and resistor")
    finally:
        panel.close()


def hardware_skipped(why: str) -> Result:
    """--hardware asked for the LED and button test: say plainly that it did not happen."""
    return failed("hardware", f"LED and button test skipped: {why}",
                 "run it on the Pi, outside the service (it holds the pins): sudo systemctl stop guardd && "
                 "sudo /opt/guardd/venv/bin/guardd doctor --hardware; sudo systemctl start guardd")
