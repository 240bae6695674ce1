"""--simulate's stdin button: every line is checked, a line that is not a press changes nothing
and says why, and nothing typed there can leave the button down or stop the reader.

On gpiozero's MockFactory pins, through the same gpiozero Button the daemon's panel builds."""

from __future__ import annotations

import io

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from guardd.device.terminal import MAX_HOLD_S, SimulatedButton


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


# -- what the simulation says -------------------------------------------------------------------


def test_the_words_say_what_is_true(tmp_path):
    """A muted start, a queued request, a refused connection, a reload and a Ctrl-C, in
    `guardd run --simulate`'s own words."""
    import signal
    import wave

    import numpy as np
    from harness import Daemon, write_config

    wav = tmp_path / "quiet.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 60, dtype=np.int16).tobytes())
    config = write_config(tmp_path, unmuted=False, confirm={"queue": 2, "timeout_s": 5},
                          destinations={"inbox": {"url": "http://127.0.0.1:9/nobody-listens"}})
    d = Daemon(tmp_path, config, wav)
    said = d.said
    try:
        d.wait_until(lambda: "listening (models" in said(), "the daemon to listen")
        first = d.submit("one")
        d.wait_until(lambda: "waiting for a press" in said(), "the first request to ask")
        second = d.submit("two")
        d.wait_until(lambda: "queued: 1 ahead of it" in said(), "the second to queue")
        d.wait_announced()
        d.press()
        d.wait_until(lambda: "send failed: cannot reach inbox" in said(), "the refused connection")
        config.write_text(config.read_text().replace("timeout_s: 5", "timeout_s: 6"))
        d.send_signal(signal.SIGHUP)
        d.wait_until(lambda: said().count("listening (models") == 2, "the reload")
        assert d.stop(signal.SIGINT) == 0
        first.close(), second.close()
    finally:
        d.close()
    lines = said().splitlines()
    drawn = [line for line in lines if line.startswith("[LED")]
    assert drawn[0].startswith("[LED · blip") and "listening" not in drawn[0]  # muted from the first line
    assert "request r4" in next(line for line in lines if "queued:" in line)  # (r3 is the first's announce record)
    assert not any("HTTP 0" in line for line in lines)
    assert f"reloaded {config}" in lines and "stopped (reload)" not in said()
    assert "denied (reload)" in said()
    assert drawn[-1] == "[LED ○ off        stopped: not listening]" and lines[-1] == "stopped (SIGINT)"
