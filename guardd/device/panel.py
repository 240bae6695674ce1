"""The physical panel: one LED that tells the truth about what guardd is doing, and one button.

Both are gpiozero devices built on the pin factory passed in (MockFactory in tests, replay and
--simulate; the board's own factory on a Pi). Button edges are only stamped and handed to a
callback (the core's inbox); no decision is ever taken on gpiozero's thread. The LED's pattern
is worked out on the panel's clock (blinker.py): by a thread of its own in `guardd run`, and by
whoever moves the clock (`update()`) in replay and the tests.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from guardd.config.settings import ButtonConfig, LedConfig
from guardd.device.blinker import Blinker, BlinkThread
from guardd.errors import PanelError

if TYPE_CHECKING:
    from gpiozero import Factory

log = logging.getLogger(__name__)


class LedState(enum.Enum):
    """Each state has its own pattern: (on seconds, off seconds); (1, 0) is solid, (0, 1) dark;
    RINGING's is a rhythm (on, off, on, off). OFF is dark like IDLE, but says guardd is not
    listening (stopped, or not yet started)."""

    OFF = (0.0, 1.0, "off")
    IDLE = (0.0, 1.0, "idle")  # dark: listening for the wake word, nothing kept
    RECORDING = (1.0, 0.0)  # solid: audio after a wake word is being kept
    AWAITING = (0.5, 0.5)  # slow blink, 1 Hz: a request asks for a press
    SENDING = (0.15, 0.15)  # quick blink: approved bytes are leaving
    MUTED = (0.1, 2.9)  # a short blip every 3 s: the owner muted it (the long press unmutes)
    PAUSED = (0.1, 1.4)  # a short blip every 1.5 s: Home Assistant paused it (Home Assistant resumes it)
    FAULT = (0.05, 0.05)  # flicker: something is wrong, nothing will be sent
    # How a request ended, shown for ENDING_S when nothing else is going on, then the true state.
    APPROVED = (0.3, 0.1)  # long pulses: a press approved it
    DENIED = (0.1, 0.6)  # short blips: denied (a timeout, a long press, a cancel)
    SENT = (0.6, 0.15)  # slow long pulses: the destination took it
    FAILED = (0.05, 0.25)  # a stutter: the send failed; nothing is sent again without a new press
    NOT_UNDERSTOOD = (1.0, 0.5)  # one long glow: Home Assistant took it, and had no answer
    RINGING = (0.1, 0.1, 0.1, 0.7)  # a double flash each second: a timer rings (a press stops it)

    @property
    def steps(self) -> tuple[float, ...]:
        """The pattern: seconds lit, dark, lit, dark, ..."""
        return tuple(v for v in self.value if isinstance(v, float))

    @classmethod
    def of(cls, *, blocking_fault: bool, asking: bool, sending: bool, fault: bool, recording: bool,
           muted: bool, ending: LedState | None = None, paused: bool = False, ringing: bool = False) -> LedState:
        """The pattern for the daemon's state. Whenever a press can approve, the LED asks: only
        a fault that blocks sending (and so has denied whatever was armed) outranks the blink.
        How the last request ended (`ending`) shows only over a timer ringing, idle, muted or
        paused; a timer ringing shows over idle, muted and paused (a muted guardd still rings:
        the mute closes the microphone, and the ring is not it). The owner's mute (`muted`)
        shows over Home Assistant's pause (`paused`): it is the one that needs the long press."""
        if blocking_fault:
            return cls.FAULT
        if asking:
            return cls.AWAITING
        if sending:
            return cls.SENDING
        if fault:
            return cls.FAULT
        if recording:
            return cls.RECORDING
        if ending is not None:
            return ending
        if ringing:
            return cls.RINGING
        return cls.MUTED if muted else cls.PAUSED if paused else cls.IDLE


ENDING_S = 1.5  # how long an ending pattern shows


@dataclass(frozen=True)
class ButtonEdge:
    """The button went down (pressed=True) or up, at time t on the core's clock."""

    pressed: bool
    t: float


class Panel:
    def __init__(
        self,
        led: LedConfig,
        button: ButtonConfig,
        *,
        pin_factory: Factory | None,
        clock: Callable[[], float],
        on_edge: Callable[[ButtonEdge], None],
        on_show: Callable[[LedState], None] | None = None,
        blink_thread: bool = True,
    ) -> None:
        try:
            from gpiozero import LED, Button
            from gpiozero.exc import BadPinFactory, GPIOZeroError
        except ImportError as exc:  # pragma: no cover - gpiozero is a dependency
            raise PanelError("gpiozero is not installed: pip install gpiozero") from exc
        self._clock = clock
        self._on_edge = on_edge
        self._on_show = on_show
        self.state: LedState | None = None
        self._thread: BlinkThread | None = None
        try:
            self.led = LED(led.pin, active_high=led.active_high, initial_value=False, pin_factory=pin_factory)
            self.button = Button(button.pin, pull_up=button.pull_up, pin_factory=pin_factory)
        except BadPinFactory as exc:
            self.close()
            raise PanelError(
                "no GPIO pin factory could be loaded: on a Raspberry Pi 5 install python3-lgpio "
                "(and make the venv with --system-site-packages); on a machine without GPIO use "
                "`guardd run --simulate`"
            ) from exc
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self.close()
            raise PanelError(
                f"cannot set up the LED on GPIO{led.pin} and the button on GPIO{button.pin}: {exc}; "
                "check led.pin and button.pin in the config and that no other program uses them"
            ) from exc
        self.button.when_pressed = self._pressed
        self.button.when_released = self._released
        self.blinker = Blinker(lambda lit: self.led.on() if lit else self.led.off(), clock)
        self.state = LedState.OFF  # (LED made with initial_value=False) until the core shows its state
        if blink_thread:
            self._thread = BlinkThread(self.blinker)
            self._thread.start()

    def _pressed(self, *_: Any) -> None:
        self._on_edge(ButtonEdge(True, self._clock()))

    def _released(self, *_: Any) -> None:
        self._on_edge(ButtonEdge(False, self._clock()))

    @property
    def button_is_down(self) -> bool:
        return bool(self.button.is_pressed)

    def show(self, state: LedState) -> None:
        if state is self.state:
            return
        self.state = state
        self.blinker.show(*state.steps)
        if self._on_show is not None:
            self._on_show(state)

    def update(self) -> float:
        """Set the LED for the clock's now; the seconds until it next changes."""
        return self.blinker.update()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.stop()
        for name in ("led", "button"):
            device = getattr(self, name, None)
            if device is not None:
                if name == "led":
                    device.off()
                device.close()


def mock_factory() -> Factory:
    """gpiozero's own mock pins, for replay, --simulate and tests."""
    from gpiozero.pins.mock import MockFactory

    return MockFactory()
