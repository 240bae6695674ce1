"""--simulate's stdin button: every line is checked, a line that is not a press changes nothing
and says why, and nothing typed there can leave the button down or stop the reader.

On gpiozero's MockFactory pins, through the same gpiozero Button the daemon's panel builds."""

from __future__ import annotations

import io

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from guardd.daemon import MAX_HOLD_S, SimulatedButton


@pytest.fixture
def wired():
    factory = MockFactory()
    button = Button(17, pull_up=True, pin_factory=factory)
    presses: list[str] = []
    button.when_pressed = lambda: presses.append("down")
    simulated = SimulatedButton()
    simulated.pin = button.pin
    yield simulated, button, presses
    button.close()


@pytest.mark.parametrize("line", ["hold -1", "hold 0", "hold nan", "hold inf", f"hold {MAX_HOLD_S + 1:g}",
                                  "hold abc", "hold", "hold 1 2", "press", "\x00", "hold 1e309"])
def test_a_line_that_is_no_press_leaves_the_button_up_and_says_why(wired, capsys, line):
    simulated, button, presses = wired
    simulated._read(io.StringIO(line + "\n"))
    assert presses == [] and not button.is_pressed
    assert capsys.readouterr().err.startswith("simulate: ")


def test_the_reader_goes_on_after_bad_lines_and_still_presses(wired, capsys):
    simulated, button, presses = wired
    simulated._read(io.StringIO("hold -1\nnonsense\n\nhold 0.05\n"))
    assert presses == ["down", "down"] and not button.is_pressed
    assert capsys.readouterr().err.count("simulate: ") == 2


def test_a_failing_pin_ends_released_and_the_reader_survives(wired, capsys):
    simulated, button, presses = wired
    real_sleep_pin = simulated.pin

    class Flaky:
        """A pin whose press is cut short by an error half-way down."""

        def drive_low(self) -> None:
            real_sleep_pin.drive_low()
            raise RuntimeError("pin went away")

        def drive_high(self) -> None:
            real_sleep_pin.drive_high()

    simulated.pin = Flaky()
    simulated._read(io.StringIO("\n"))
    assert not button.is_pressed  # released even though the press failed half-way
    simulated.pin = real_sleep_pin
    simulated._read(io.StringIO("\n"))
    assert presses == ["down", "down"]
    assert "that line did nothing (pin went away)" in capsys.readouterr().err
