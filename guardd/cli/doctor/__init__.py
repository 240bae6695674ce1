"""`guardd doctor`: one line per check of what guardd needs, and the fix for each failure.

Each check returns a Result; none raises. The checks only read and probe: the one exception is
the state directory check, which writes and removes a small file in it to prove it can. Doctor
creates nothing: a state directory that does not exist yet is reported, not made (making it is
the first start's job, with the log's sealing key).
"""

from __future__ import annotations

from typing import Callable

from guardd.cli.doctor.audio import check_microphone, check_models, check_portaudio, check_speaker, check_speech
from guardd.cli.doctor.pins import NO_GPIO, check_pin_factory, check_pins, hardware_skipped, hardware_test
from guardd.cli.doctor.result import Result, skipped
from guardd.cli.doctor.system import (
    check_clock, check_log, check_satellite, check_service, check_socket, check_state_dir,
)
from guardd.config.settings import Config

__all__ = ["Result", "run_checks"]


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
        results += [check_microphone(config), check_speaker(config)]
    results.append(check_speech())
    results += [check_models(config), check_pin_factory()]
    no_gpio = results[-1].skipped
    if no_gpio:
        results.append(skipped("LED and button pins", NO_GPIO))
    elif results[-1].ok:
        results.append(check_pins(config))
    results += [check_state_dir(config), check_log(config), check_socket(config), check_satellite(config),
                check_clock(), check_service()]
    if hardware:
        blocked = [r for r in results if r.name in ("GPIO pin factory", "LED and button pins") and not r.ok]
        if no_gpio:
            results.append(skipped("hardware", f"LED and button test: {NO_GPIO}"))
        elif not blocked:
            results.append(hardware_test(config, say=say))
        elif blocked[0].name == "GPIO pin factory":
            results.append(hardware_skipped("no GPIO pins here (not a Raspberry Pi, or /dev/gpiochip* "
                                            "is hidden from this process)"))
        else:
            results.append(hardware_skipped("the LED and button pins did not open (above)"))
    return results
