"""The people around the speaker in a soak: its owner at the button, and a local program that
sends messages. Both act on audio time, from a seeded random generator.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

from guardd.config.settings import ConfirmConfig
from guardd.confirm.outbox import Caller
from guardd.core import Core
from guardd.errors import Refused

FINAL = ("denied", "sent", "failed")  # a client's last reply


class Owner:
    """A person near the speaker: looks at a blinking LED and presses (approve), holds (deny) or
    does nothing; now and then presses with nothing asking."""

    def __init__(self, rng: random.Random, confirm: ConfirmConfig, counts: Counter[str]) -> None:
        self._rng = rng
        self._confirm = confirm
        self._counts = counts
        self._actions: list[tuple[float, bool]] = []  # (time, pressed), in order
        self._next_stray = 90.0

    @property
    def done(self) -> bool:
        return not self._actions

    def sees_request(self, t: float) -> None:
        roll = self._rng.random()
        if roll < 0.5:
            down = t + self._rng.uniform(0.3, self._confirm.timeout_s - 1.0)
            self._press(down, down + self._rng.uniform(0.08, 0.4), "owner presses")
        elif roll < 0.6:
            down = t + self._rng.uniform(0.3, 3.0)
            self._press(down, down + self._confirm.long_press_s + 0.5, "owner long presses")
        else:
            self._counts["owner ignores"] += 1

    def idle(self, t: float, busy: bool) -> None:
        """A press with nothing asking (it must approve nothing later)."""
        if t >= self._next_stray and not busy:
            self._next_stray = t + self._rng.uniform(60, 400)
            self._press(t + 0.01, t + 0.2, "stray presses")

    def act(self, t: float, pin: Any) -> None:
        while self._actions and self._actions[0][0] <= t:
            _, pressed = self._actions.pop(0)
            (pin.drive_low if pressed else pin.drive_high)()

    def _press(self, down: float, up: float, what: str) -> None:
        self._actions.extend([(down, True), (up, False)])
        self._actions.sort()
        self._counts[what] += 1


class LocalClient:
    """A local program that asks to send a message every few minutes and sometimes goes away
    before anyone answers."""

    def __init__(self, rng: random.Random, counts: Counter[str]) -> None:
        self._rng = rng
        self._counts = counts
        self._me = Caller(os.getuid(), os.getpid(), "soak client")
        self._next = 200.0
        self._last_id = 0
        self._replies: dict[int, list[dict[str, Any]]] = {}
        self._hang_up_at: dict[int, float] = {}

    def step(self, t: float, core: Core) -> None:
        if t >= self._next:
            self._next = t + self._rng.uniform(120, 600)
            self._submit(t, core)
        for client, when in list(self._hang_up_at.items()):
            if when <= t:
                del self._hang_up_at[client]
                core.cancel_client(client)
                self._counts["client hangs up"] += 1
        for client in [c for c, r in self._replies.items() if r and r[-1]["status"] in FINAL]:
            self._counts[f"client final {self._replies.pop(client)[-1]['status']}"] += 1

    def _submit(self, t: float, core: Core) -> None:
        self._last_id += 1
        client = self._last_id
        self._replies[client] = got = []
        try:
            core.submit("message", "inbox", f"note {client} at {t:.1f}".encode(), self._me,
                        reply=got.append, client=client)
        except Refused as exc:
            self._counts[f"client refused {exc.code}"] += 1
            return
        self._counts["client submits"] += 1
        if self._rng.random() < 0.2:
            self._hang_up_at[client] = t + self._rng.uniform(0.5, 5.0)
