"""A microphone that stops delivering and later returns, through the real PortAudio/ALSA path:
ALSA's file plugin reads a FIFO that this test writes in real time, then stops writing (the
capture read blocks, as a dead USB microphone's does), then resumes. guardd shows and logs the
fault once, retries with backoff, and is listening again within 5 seconds, without a restart."""

from __future__ import annotations

import os
import threading
import time
import wave
from pathlib import Path

from harness import Daemon, write_config


ASOUNDRC = """\
pcm.!default {{
    type plug
    slave.pcm "fifo_input"
}}
pcm.fifo_input {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{fifo}"
    format "raw"
}}
"""
BLOCK = 2560  # 80 ms of 16 kHz 16-bit mono


class Microphone(threading.Thread):
    """Writes audio into the FIFO at the speed of time; `paused` stops the flow."""

    def __init__(self, fifo: Path, audio: bytes) -> None:
        super().__init__(daemon=True)
        self.fifo = fifo
        self.audio = audio
        self.paused = threading.Event()
        self.done = threading.Event()
        self.position = 0

    def play(self, audio: bytes) -> None:
        self.audio, self.position = audio, 0

    def run(self) -> None:
        while not self.done.is_set():
            try:
                # Opening blocks until guardd (or PortAudio probing devices) opens it for reading.
                fd = os.open(self.fifo, os.O_WRONLY)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                while not self.done.is_set():
                    if self.paused.is_set():
                        time.sleep(0.02)
                        continue
                    chunk = self.audio[self.position : self.position + BLOCK] or bytes(BLOCK)
                    os.write(fd, chunk.ljust(BLOCK, b"\0"))
                    self.position += BLOCK
                    time.sleep(0.08)
            except BrokenPipeError:
                pass  # the reader closed (a probe, or guardd reopening): open again
            finally:
                os.close(fd)


def test_a_microphone_that_stops_and_returns_is_a_fault_once_then_guardd_listens_again(tmp_path, manifest):
    fifo = tmp_path / "mic.fifo"
    os.mkfifo(fifo)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(ASOUNDRC.format(fifo=fifo))
    with wave.open(str(manifest["dir"] / manifest["demo"]["file"]), "rb") as w:
        demo = w.readframes(w.getnframes())
    quiet = bytes(BLOCK * 25)  # two seconds of silence before the demo's wake word
    mic = Microphone(fifo, quiet + bytes(BLOCK * 1000))
    mic.start()
    d = Daemon(tmp_path, write_config(tmp_path), simulate=False, env={"HOME": str(home)}, wait_for_socket=False)
    try:
        d.wait_for_record("start")
        time.sleep(2.0)  # listening to silence
        mic.paused.set()  # the microphone stops delivering
        fault = d.wait_for_record("fault", timeout_s=10)
        assert fault["kind"] == "audio" and "stopped delivering" in fault["reason"]
        time.sleep(2.0)  # several retries while it is gone
        mic.play(demo)  # it comes back, and someone says "alexa, ..."
        resumed = time.monotonic()
        mic.paused.clear()
        d.wait_for_record("recovered", timeout_s=10)
        assert time.monotonic() - resumed <= 5.0
        d.wait_for_record("utterance", timeout_s=20)  # and guardd hears the wake word again
        types = d.types()
        assert types.count("fault") == 1 and types.count("start") == 1
        assert types.index("fault") < types.index("recovered") < types.index("wake")
    finally:
        mic.paused.clear()
        try:
            assert d.stop(timeout_s=15) == 0
        finally:
            mic.done.set()


def test_a_burst_of_inputs_puts_one_wake_among_the_microphones_blocks_not_one_each():
    import queue as queuemod
    from types import SimpleNamespace

    from guardd.cli.keeper import WAKE, MicrophoneKeeper
    from guardd.config.settings import Config

    keeper = MicrophoneKeeper(Config(), SimpleNamespace(muted=False))
    frames: queuemod.Queue = queuemod.Queue(maxsize=10)
    keeper.mic = SimpleNamespace(frames=frames, active=True)
    for _ in range(1000):  # a reply's chunks arriving faster than the loop turns
        keeper.wake()
    assert frames.qsize() == 1  # the queue stays free for the microphone's blocks
    assert keeper.read(0.0) is None and frames.empty()  # the read returns at once: an input waits
    keeper.wake()
    assert list(frames.queue) == [WAKE]  # and the next input wakes the next read
