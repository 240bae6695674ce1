"""Audio in: the microphone through sounddevice/PortAudio, a WAV file standing in for it in
real time (`guardd run --microphone FILE`), and 16 kHz WAV files read whole for replay.

The PortAudio callback (and the WAV's pacing thread) only copies the block and enqueues it: no
model, no log, no lock held by anything slow. The queue is bounded; when the core loop falls
behind by more than `audio.queue_s`, new blocks are dropped and counted rather than memory growing.
"""

from __future__ import annotations

import logging
import queue
import shlex
import struct
import threading
import time
import wave
from pathlib import Path
from typing import Any, Iterator, Protocol

from guardd.audioformat import FRAME_BYTES, FRAME_S, FRAME_SAMPLES, SAMPLE_RATE
from guardd.errors import AudioError
from guardd.sounddevices import import_sounddevice, list_devices, resolve_device

log = logging.getLogger(__name__)

NO_INPUT_DEVICE = "no input device found (PortAudio sees none)"
NO_INPUT_FIX = "plug in a USB microphone or set audio.device; `guardd devices` lists them"


class Capture(Protocol):
    """What the daemon's microphone keeper reads: blocks of 80 ms with the time.monotonic() at
    which each was taken, in a bounded queue; a Microphone, or a WavMicrophone standing in for one."""

    frames: queue.Queue[tuple[float, bytes]]
    overflows: int
    dropped: int

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def active(self) -> bool: ...


def _block_queue(queue_s: float) -> queue.Queue[tuple[float, bytes]]:
    return queue.Queue(maxsize=max(1, int(queue_s * SAMPLE_RATE / FRAME_SAMPLES)))


class Microphone:
    """A RawInputStream of 16 kHz mono int16 in 80 ms blocks, feeding a bounded queue, each
    with the time.monotonic() at which the callback took it (guardd's own sounds are masked by it)."""

    def __init__(self, device: str | int | None, queue_s: float, *, rescan: bool = False) -> None:
        self._sd = import_sounddevice()
        if rescan:
            # PortAudio lists devices once, at initialisation: start it again so a microphone
            # plugged back in is found. Only the keeper calls this, with no stream open.
            self._sd._terminate()
            self._sd._initialize()
        self.device = resolve_device(self._sd, device, "input")
        self.frames = _block_queue(queue_s)
        self.overflows = 0  # PortAudio said input was lost before it reached us
        self.dropped = 0  # blocks we dropped because the core loop was too far behind
        self._stream: Any = None

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
        try:
            self.frames.put_nowait((time.monotonic(), bytes(indata)))
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        sd = self._sd
        try:
            self._stream = sd.RawInputStream(
                samplerate=SAMPLE_RATE,
                blocksize=FRAME_SAMPLES,
                channels=1,
                dtype="int16",
                device=self.device,
                callback=self._callback,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            self._stream = None
            if self.device is None and not list_devices("input"):
                # PortAudio's own words for this are "Error querying device -1".
                raise AudioError(f"{NO_INPUT_DEVICE}: {NO_INPUT_FIX}") from None
            raise AudioError(
                f"cannot open the input device {self.device if self.device is not None else '(default)'} "
                f"for 16 kHz mono: {exc}; pick one that `guardd devices` lists (a 'plughw' or "
                "'default' device resamples for you)"
            ) from None

    @property
    def active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None


# WAVE format tags a file may carry, for naming what it is when it is not 16-bit PCM.
WAV_ENCODINGS = {1: "PCM", 2: "ADPCM", 3: "float", 6: "A-law", 7: "µ-law", 0x11: "IMA ADPCM", 0x55: "MP3"}


def wav_fix(path: Path) -> str:
    quoted = shlex.quote(str(path))
    return f"guardd needs 16-bit PCM, mono, 16 kHz: convert with `sox {quoted} -b 16 -r 16000 -c 1 out.wav`"


def _channels(n: int) -> str:
    return {1: "mono", 2: "stereo"}.get(n, f"{n} channels")


def _describe(tag: int, channels: int, rate: int, bits: int) -> str:
    """What a WAV's fmt chunk says it holds, in the words of wav_fix()."""
    encoding = WAV_ENCODINGS.get(tag, f"format {tag:#06x}")
    if tag in (1, 3):
        encoding = f"{bits}-bit {encoding}"
    if tag != 1:
        return f"{encoding} audio"
    return f"{encoding}, {_channels(channels)}, {rate / 1000:g} kHz"


def wav_problem(path: Path) -> str:
    """Why `path` is no WAV guardd can read, read from its RIFF header: the message names what
    the file is and how to convert it. (Python's wave module says only "unknown format: 3".)"""
    with open(path, "rb") as f:
        data = f.read(65536)  # the header: the fmt chunk sits near the start
    if not data:
        return f"{path} is empty (0 bytes): not a WAV file"
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if len(data) < 12 and b"RIFF".startswith(data[:4]):
            return f"{path} ends inside its WAV header ({len(data)} bytes): it was cut short; record or export it again"
        return f"{path} is not a WAV file (no RIFF WAVE header); {wav_fix(path)}"
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if chunk == b"fmt ":
            body = data[at + 8 : at + 8 + size]
            if len(body) < 16:
                break
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag is in SubFormat
                tag = struct.unpack("<H", body[24:26])[0]
            if (tag, channels, rate, bits) == (1, 1, SAMPLE_RATE, 16):
                break  # the right format, so what wave refused is a missing data chunk
            return f"{path} is {_describe(tag, channels, rate, bits)}; {wav_fix(path)}"
        at += 8 + size + (size & 1)
    return f"{path} ends inside its WAV header ({path.stat().st_size} bytes): it was cut short; record or export it again"


def read_wav_frames(path: Path) -> Iterator[bytes]:
    """80 ms blocks of a 16 kHz mono 16-bit WAV; the last block is padded with silence."""
    try:
        w = wave.open(str(path), "rb")
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AudioError(f"{path} is a directory, not a WAV file") from None
    except (wave.Error, EOFError):
        raise AudioError(wav_problem(path)) from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read it: {exc.strerror}") from None
    with w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            what = _describe(1, w.getnchannels(), w.getframerate(), 8 * w.getsampwidth())
            raise AudioError(f"{path} is {what}; {wav_fix(path)}")
        while True:
            block = w.readframes(FRAME_SAMPLES)
            if not block:
                return
            if len(block) < FRAME_BYTES:
                block += bytes(FRAME_BYTES - len(block))
            yield block


class WavSource:
    """A WAV file as the sound in the room, for `guardd run --microphone`: its 80 ms blocks in
    order, then silence, or with `loop` the file again from its start. Where it has got to is
    kept while the microphone is closed (muted), so the file plays to a microphone that listens:
    a fresh install starts muted, and the file begins once the owner has unmuted."""

    SILENCE = bytes(FRAME_BYTES)

    def __init__(self, path: Path, *, loop: bool = False) -> None:
        self.path = path
        self.loop = loop
        self._blocks = read_wav_frames(path)
        first = next(self._blocks, None)  # a bad file fails here, before the daemon starts
        self._first = first
        self.ended = first is None

    def next_block(self) -> bytes:
        if self._first is not None:
            block, self._first = self._first, None
            return block
        if not self.ended:
            block = next(self._blocks, None)
            if block is not None:
                return block
            self.ended = True
            log.info("microphone: %s ended%s", self.path.name, "; playing it again" if self.loop else "; silence from now")
        if self.loop:
            self._blocks, self.ended = read_wav_frames(self.path), False
            return next(self._blocks, self.SILENCE)
        return self.SILENCE


class WavMicrophone:
    """A WavSource delivered as a microphone delivers: a block every 80 ms of real time (paced on
    time.monotonic(), so the daemon sees what it sees on the device), into the same bounded
    queue, from a thread of its own that does nothing else."""

    def __init__(self, source: WavSource, queue_s: float) -> None:
        self.source = source
        self.frames = _block_queue(queue_s)
        self.overflows = 0  # (a file never overflows; the keeper reads it as it reads a Microphone)
        self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _deliver(self) -> None:
        started = time.monotonic()
        n = 1  # the nth block is whole, as from a real microphone, n * 80 ms after the start
        while not self._stop.wait(max(0.0, started + n * FRAME_S - time.monotonic())):
            n += 1
            try:
                self.frames.put_nowait((time.monotonic(), self.source.next_block()))
            except queue.Full:
                self.dropped += 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._deliver, name="wav-microphone", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
