"""A microphone that stops delivering and later returns, through the real PortAudio/ALSA path:
ALSA's file plugin reads a FIFO that this test writes in real time, then stops writing (the
capture read blocks, as a dead USB microphone's does), then resumes. guardd shows and logs the
fault once, retries with backoff, and is listening again within 5 seconds, without a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import wave
from pathlib import Path

from conftest import GUARDD, ROOT, wait_for_record, write_config

from guardd.auditlog.reading import read_records

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


def records(log_dir: Path) -> list[dict]:
    return list(read_records(log_dir)) if log_dir.is_dir() else []


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
    config = write_config(tmp_path)
    log_dir = tmp_path / "state" / "log"
    env = dict(os.environ, HOME=str(home), GPIOZERO_PIN_FACTORY="mock")
    proc = subprocess.Popen([*GUARDD, "run", "--config", str(config)], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_record(log_dir, "start")
        time.sleep(2.0)  # listening to silence
        mic.paused.set()  # the microphone stops delivering
        fault = wait_for_record(log_dir, "fault", timeout_s=10)
        assert fault["kind"] == "audio" and "stopped delivering" in fault["reason"]
        time.sleep(2.0)  # several retries while it is gone
        mic.play(demo)  # it comes back, and someone says "alexa, ..."
        resumed = time.monotonic()
        mic.paused.clear()
        wait_for_record(log_dir, "recovered", timeout_s=10)
        assert time.monotonic() - resumed <= 5.0
        wait_for_record(log_dir, "utterance", timeout_s=20)  # and guardd hears the wake word again
        types = [r["type"] for r in records(log_dir)]
        assert types.count("fault") == 1 and types.count("start") == 1
        assert types.index("fault") < types.index("recovered") < types.index("wake")
    finally:
        proc.send_signal(signal.SIGTERM)
        mic.paused.clear()
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            proc.kill()
            mic.done.set()
