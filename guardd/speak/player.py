"""Audio out: guardd's own sounds on the speaker, through sounddevice/PortAudio, from a thread
of its own. The core's side only enqueues: play() never blocks, and when PLAY_QUEUE sounds
already wait the new one is dropped (counted), never waited for.

Each sound opens the output stream, writes the samples, and closes the stream once they have
played. A speaker that is missing or fails is a fault of the speaker alone: listening goes on
and requests are still asked for by the LED. `report(reason)` says so, once per change:
`report(None)` when a sound plays again.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable

from guardd.sounddevices import import_sounddevice, resolve_device
from guardd.speak.earcons import SPEAKER_RATE, render

log = logging.getLogger(__name__)

PLAY_QUEUE = 8
SPEAKER_FIX = "check the speaker and `aplay -l`; set audio.output_device (`guardd devices` lists them) or announce.output: none"


@dataclass(frozen=True)
class SpeakerReport:
    """The speaker failed (why), or plays again (None): an input for the daemon's loop."""

    failure: str | None


class Player:
    def __init__(self, device: str | int | None, volume: float, report: Callable[[str | None], None]) -> None:
        self._device = device
        self._volume = volume
        self._report = report
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=PLAY_QUEUE)
        self._thread = threading.Thread(target=self._run, name="guardd-speaker", daemon=True)
        self._failing: str | None = None
        self.dropped = 0  # sounds not played because PLAY_QUEUE were already waiting
        self.played = 0

    def start(self) -> None:
        self._thread.start()

    def play(self, name: str) -> None:
        """Queue an earcon by name; returns at once."""
        try:
            self._queue.put_nowait(name)
        except queue.Full:
            self.dropped += 1

    def stop(self) -> None:
        """Drop what waits, let the sound playing now finish, and end the thread: a stop must
        not wait on a queue of sounds (the daemon stops within 2 s)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(2.0)

    def _run(self) -> None:
        while (name := self._queue.get()) is not None:
            try:
                self._write(render(name, self._volume).tobytes())
            except Exception as exc:  # noqa: BLE001 - any failure is a fault of the speaker alone
                self._changed(f"the speaker cannot play: {exc}; {SPEAKER_FIX}")
                continue
            self.played += 1
            self._changed(None)

    def _write(self, samples: bytes) -> None:
        sd: Any = import_sounddevice()
        device = resolve_device(sd, self._device, "output")
        with sd.RawOutputStream(samplerate=SPEAKER_RATE, channels=1, dtype="int16", device=device) as stream:
            stream.write(samples)

    def _changed(self, failure: str | None) -> None:
        if failure == self._failing:
            return
        self._failing = failure
        if failure is not None:
            log.warning("%s", failure)
        self._report(failure)
