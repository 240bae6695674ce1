"""Home Assistant's Wyoming integration as a satellite meets it, written with the `wyoming`
package's own AsyncTcpClient and following homeassistant/components/wyoming/assist_satellite.py:
connect, `run-satellite`, `describe`, a `ping` 2 s after each `pong` (and the link given up when
no frame comes for 5 s); when the satellite sends `run-pipeline`, take its audio until
`audio-stop`, then answer as a pipeline does: `transcript`, `synthesize`, and the reply's audio
(22050 Hz, chunks of 1024 samples), and wait for `played`.

It runs its own event loop on a thread; the test reads what arrived (`events`) and may send
anything (`send`), hostile frames included (`send_raw`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping
from wyoming.satellite import RunSatellite
from wyoming.tts import Synthesize

PING_SEND_DELAY_S = 2.0  # _PING_SEND_DELAY
PING_TIMEOUT_S = 5.0  # _PING_TIMEOUT
TTS_RATE = 22050  # _TTS_SAMPLE_RATE
CHUNK_SAMPLES = 1024  # _SAMPLES_PER_CHUNK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tone(seconds: float, hz: float = 523.0, rate: int = TTS_RATE) -> np.ndarray:
    """A reply's audio that is easy to find again in what the speaker played."""
    t = np.arange(int(seconds * rate)) / rate
    return np.round(np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


@dataclass
class Answer:
    """What the pipeline answers an upload with."""

    transcript: str = "turn on the kitchen lights"
    text: str = "Turned on the kitchen lights"
    audio: np.ndarray | None = None  # int16 at `rate`; None: tone(0.6)
    rate: int = TTS_RATE
    pace_s: float = 0.0  # between chunks: a text-to-speech that streams as it speaks


def audio_frames(samples: np.ndarray, rate: int = TTS_RATE) -> list[Event]:
    """Audio as Home Assistant streams it: audio-start, chunks of CHUNK_SAMPLES, audio-stop."""
    data = samples.astype("<i2").tobytes()
    step = CHUNK_SAMPLES * 2
    chunks = [AudioChunk(rate=rate, width=2, channels=1, audio=data[i : i + step], timestamp=0).event()
              for i in range(0, len(data), step)]
    return [AudioStart(rate=rate, width=2, channels=1, timestamp=0).event(), *chunks, AudioStop().event()]


class HomeAssistant:
    def __init__(self, port: int, *, answer: Answer | None = Answer(), ping: bool = True,
                 on_event: Callable[["HomeAssistant", Event], None] | None = None) -> None:
        self.port = port
        self.answer = answer
        self.ping = ping
        self.on_event = on_event
        self.events: list[tuple[float, Event]] = []  # from the satellite, with when they came
        self.closed = False  # the satellite ended the connection
        self.late_pongs = 0  # pings not answered within PING_TIMEOUT_S: Home Assistant would reconnect
        self.halfway = threading.Event()  # set when half of a reply's frames are written
        self._client: AsyncTcpClient | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._tasks: list[Any] = []

    # -- the connection --------------------------------------------------------------------------

    def connect(self, timeout_s: float = 30.0) -> "HomeAssistant":
        """Connect as the integration does (retrying while the satellite starts), send
        run-satellite and describe, and start pinging."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._call(self._connect())
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    async def _connect(self) -> None:
        client = AsyncTcpClient("127.0.0.1", self.port, connect_timeout=5)
        await client.connect()
        self._client = client
        await client.write_event(RunSatellite().event())
        await client.write_event(Describe().event())
        self._tasks.append(asyncio.ensure_future(self._read()))
        if self.ping:
            self._tasks.append(asyncio.ensure_future(self._pings()))

    async def _read(self) -> None:
        assert self._client is not None
        uploading = False
        while True:
            try:
                event = await self._client.read_event()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                event = None
            if event is None:
                self.closed = True
                return
            self.events.append((time.monotonic(), event))
            if event.type == "run-pipeline":
                uploading = True
            elif event.type == "audio-stop" and uploading:
                uploading = False
                if self.answer is not None:
                    await self._answer(self.answer)
            if self.on_event is not None:
                self.on_event(self, event)

    async def _answer(self, answer: Answer) -> None:
        assert self._client is not None
        await self._client.write_event(Transcript(text=answer.transcript).event())
        await self._client.write_event(Synthesize(text=answer.text).event())
        audio = tone(0.6) if answer.audio is None else answer.audio
        frames = audio_frames(audio, answer.rate)
        for i, event in enumerate(frames):
            await self._client.write_event(event)
            if answer.pace_s and event.type == "audio-chunk":
                await asyncio.sleep(answer.pace_s)
            if i == len(frames) // 2:
                self.halfway.set()  # half the reply is out

    async def _pings(self) -> None:
        """A ping 2 s after each pong; no frame at all within 5 s and the link is given up."""
        assert self._client is not None
        while not self.closed:
            await asyncio.sleep(PING_SEND_DELAY_S)
            pongs = self.count("pong")
            try:
                await self._client.write_event(Ping().event())
            except OSError:
                return
            deadline = time.monotonic() + PING_TIMEOUT_S
            while self.count("pong") == pongs and time.monotonic() < deadline and not self.closed:
                await asyncio.sleep(0.05)
            if self.count("pong") == pongs and not self.closed:
                self.late_pongs += 1

    def send(self, *events: Event) -> None:
        async def write() -> None:
            assert self._client is not None
            for event in events:
                await self._client.write_event(event)

        self._call(write())

    def send_raw(self, data: bytes) -> None:
        """Bytes written as they are (a hostile frame)."""
        async def write() -> None:
            assert self._client is not None and self._client._writer is not None
            self._client._writer.write(data)
            await self._client._writer.drain()

        self._call(write())

    def _call(self, coroutine: Any, timeout_s: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def close(self) -> None:
        async def stop() -> None:
            for task in self._tasks:
                task.cancel()
            if self._client is not None:
                await self._client.disconnect()

        try:
            self._call(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # -- what came -------------------------------------------------------------------------------

    def types(self) -> list[str]:
        return [e.type for _, e in list(self.events)]

    def count(self, type_: str) -> int:
        return sum(1 for _, e in list(self.events) if e.type == type_)

    def of(self, type_: str) -> list[Event]:
        return [e for _, e in list(self.events) if e.type == type_]

    def uploaded(self) -> bytes:
        """The audio the satellite's audio-chunks carried, in order."""
        return b"".join(e.payload or b"" for e in self.of("audio-chunk"))
