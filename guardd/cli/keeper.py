"""The daemon's microphone: open while unmuted, closed while muted, brought back when lost."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from guardd.config.settings import Config
from guardd.core import Core
from guardd.errors import AudioError
from guardd.listen.microphone import Capture, Microphone

# Opens the microphone; its argument says whether PortAudio should look for devices again.
OpenMicrophone = Callable[[bool], Capture]

POLL_S = 0.1  # the longest a read waits for audio before the loop looks at signals and the inbox
WAKE = (-1.0, b"")  # not a block: an input is waiting in the inbox (wake())


class MicrophoneKeeper:
    """Keeps the microphone open while unmuted and closed while muted (promise 5: closed, not
    ignored), and brings a lost one back: a stream that fails or stops delivering is a fault,
    logged once, and is reopened with backoff (PortAudio re-scanned, so a replugged USB
    microphone is found) until audio flows again."""

    STALL_S = 1.0  # no block for this long from an open stream: the microphone is lost
    BACKOFF_S = (0.25, 0.5, 1.0, 2.0)  # between reopen attempts; the last repeats

    def __init__(self, config: Config, core: Core, open_microphone: OpenMicrophone | None = None) -> None:
        self.config = config
        self.core = core
        self._open_microphone = open_microphone or (
            lambda rescan: Microphone(config.audio.device, config.audio.queue_s, rescan=rescan))
        self.mic: Capture | None = None
        self.failures = 0
        self.next_try = 0.0
        self.last_block = 0.0
        self.overflows = self.dropped = 0
        self._woken = threading.Event()  # for a read while no stream is open

    def wake(self) -> None:
        """From any thread: an input waits for the core, so a read waiting for audio returns now.
        At most one WAKE waits among the audio blocks: a burst of inputs (a reply's chunks) must
        not fill the queue that the microphone's blocks need."""
        if self._woken.is_set():
            return
        self._woken.set()
        mic = self.mic
        if mic is not None:
            try:
                mic.frames.put_nowait(WAKE)
            except queue.Full:
                pass  # (audio is waiting: the read returns at once anyway)

    def read(self, now: float, wait_s: float = POLL_S) -> tuple[float, bytes] | None:
        """One block of audio and when it was taken, or None after waiting at most `wait_s`
        (and POLL_S), or as soon as wake() was called."""
        wait_s = min(max(wait_s, 0.0), POLL_S)
        if self.core.muted:
            self.close()
            self._woken.wait(wait_s)
            self._woken.clear()
            return None
        if self.mic is None and not self._open(now):
            return None
        assert self.mic is not None
        self._woken.clear()  # a wake() from now on puts one WAKE behind the blocks waiting
        try:
            block = self.mic.frames.get(timeout=wait_s)
            if block is WAKE:
                return None
        except queue.Empty:
            if time.monotonic() - self.last_block > self.STALL_S or not self.mic.active:
                self._lost("the microphone stopped delivering audio")
            return None
        self.last_block = time.monotonic()
        if self.failures:
            self.failures = 0
            self.core.clear_fault("audio")
        return block

    def _open(self, now: float) -> bool:
        if now < self.next_try:
            time.sleep(min(POLL_S, self.next_try - now))
            return False
        try:
            mic = self._open_microphone(self.failures > 0)
            mic.start()
        except AudioError as exc:
            self._lost(str(exc))
            return False
        self.mic = mic
        self.last_block = time.monotonic()
        return True

    def _lost(self, reason: str) -> None:
        # The fault first: closing a stream whose capture thread is stuck in a read can take as
        # long as the device stays stuck, and the LED and the log must not wait for that.
        self.core.report_fault("audio", reason)  # logged the first time only
        self.close()
        self.next_try = time.monotonic() + self.BACKOFF_S[min(self.failures, len(self.BACKOFF_S) - 1)]
        self.failures += 1

    def close(self) -> None:
        if self.mic is not None:
            self.overflows += self.mic.overflows
            self.dropped += self.mic.dropped
            self.mic.stop()
            self.mic = None
