"""Home Assistant's Wyoming integration as a satellite meets it, written with the `wyoming`
package's own AsyncTcpClient, following what Home Assistant Core 2026.11.0 was seen to do
(homeassistant/components/wyoming/, read and run in shared/ha-real):

- the satellite connection (assist_satellite.py `_connect_and_loop`, `_run_pipeline_loop`):
  connect, `run-satellite` FIRST, then `describe`, then a `ping` 2 s after each `pong`, giving
  the link up when no frame comes for 5 s; when the satellite sends `run-pipeline`, take its
  audio until `audio-stop`, then answer as a pipeline does: `transcript`, `synthesize`, and the
  reply's audio (22050 Hz, chunks of 1024 samples), and wait for `played`; a pipeline that ends
  in an error sends `error` with its code instead (on_pipeline_event, ERROR);
- its WyomingInfoCoordinator (coordinator.py, data.py `load_wyoming_info`): every 30 s
  (`poll_s`) a SECOND connection that sends `describe`, reads `info` and closes, while the
  satellite connection stays open;
- `close()`: `pause-satellite`, then the connection closed (`run`'s teardown: Home Assistant
  shutting down, restarting, reloading or removing the entry);
- `mute()` (its mute switch on: `_muted_changed` sends `pause-satellite`, the pipeline loop
  stops and nothing more is sent; the connection is left to the satellite to drop),
  `unmute()` (a new connection: `run-satellite`, `describe`, pings) and `toggle_mute()` (on and
  off again before the loop noticed: the pause, then the same connection goes on);
- with `reconnect`, a satellite connection that drops is made again 3 s later
  (`on_restart`, _RESTART_SECONDS), and 10 s after a connect that failed (`on_reconnect`);
- its voice timers (intent/timers.py TimerManager, and assist_satellite.py `_handle_timer`,
  which sends each change as the `wyoming` package's timer frames): `start_timer` sends
  `timer-started` (`id` a ULID, `total_seconds`, and `start_seconds` etc. as said; `name` only
  when one was said) and `timer-finished` when its time is up, unless `cancel_timer`
  (`timer-cancelled`), `pause_timer`, `unpause_timer` or `add_time` (`timer-updated`, with the
  seconds left as `total_seconds`) changed it first; an event while the satellite connection
  is down is dropped, as Home Assistant drops it.

It runs its own event loop on a thread; the test reads what arrived (`events`) and may send
anything (`send`), hostile frames included (`send_raw`).
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated
from wyoming.tts import Synthesize

PING_SEND_DELAY_S = 2.0  # _PING_SEND_DELAY
PING_TIMEOUT_S = 5.0  # _PING_TIMEOUT
RESTART_S = 3.0  # _RESTART_SECONDS
RECONNECT_S = 10.0  # _RECONNECT_SECONDS
POLL_S = 30.0  # coordinator.py UPDATE_INTERVAL
INFO_TIMEOUT_S = 5.0  # data.py _INFO_TIMEOUT
TTS_RATE = 22050  # _TTS_SAMPLE_RATE
CHUNK_SAMPLES = 1024  # _SAMPLES_PER_CHUNK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ulid() -> str:
    """An id like Home Assistant's timer ids (ulid_util.ulid_now: 26 Crockford base-32 characters)."""
    return "".join(random.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(26))


@dataclass
class Timer:
    """One of Home Assistant's timers (TimerInfo): seconds left at `updated_at`."""

    seconds: int
    updated_at: float
    active: bool = True
    task: Any = None

    def left(self) -> int:
        return max(0, self.seconds - int(time.monotonic() - self.updated_at)) if self.active else self.seconds


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
    error: str | None = None  # the pipeline ends with this error code instead (stt-no-text-recognized)


def audio_frames(samples: np.ndarray, rate: int = TTS_RATE) -> list[Event]:
    """Audio as Home Assistant streams it: audio-start, chunks of CHUNK_SAMPLES, audio-stop."""
    data = samples.astype("<i2").tobytes()
    step = CHUNK_SAMPLES * 2
    chunks = [AudioChunk(rate=rate, width=2, channels=1, audio=data[i : i + step], timestamp=0).event()
              for i in range(0, len(data), step)]
    return [AudioStart(rate=rate, width=2, channels=1, timestamp=0).event(), *chunks, AudioStop().event()]


class HomeAssistant:
    def __init__(self, port: int, *, answer: Answer | None = Answer(), ping: bool = True,
                 on_event: Callable[["HomeAssistant", Event], None] | None = None,
                 poll_s: float | None = POLL_S, reconnect: bool = False) -> None:
        self.port = port
        self.answer = answer
        self.ping = ping
        self.on_event = on_event
        self.poll_s = poll_s
        self.reconnect = reconnect
        self.events: list[tuple[float, Event]] = []  # from the satellite, with when they came
        self.closed = False  # the satellite connection ended (not by us)
        self.drops = 0  # satellite connections that ended while we wanted them
        self.polls: list[str] = []  # the type each describe poll got back ("" when none came)
        self.muted = False
        self.late_pongs = 0  # pings not answered within PING_TIMEOUT_S: Home Assistant would reconnect
        self.halfway = threading.Event()  # set when half of a reply's frames are written
        self.finished = threading.Event()  # set when all of them are
        self._client: AsyncTcpClient | None = None
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._tasks: list[Any] = []
        self._poller: Any = None
        self.timers: dict[str, Timer] = {}

    # -- the connection --------------------------------------------------------------------------

    def connect(self, timeout_s: float = 30.0) -> "HomeAssistant":
        """Connect as the integration does (retrying while the satellite starts), send
        run-satellite and describe, start pinging, and poll `describe` every `poll_s` on a
        connection of its own."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._call(self._connect())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if self.poll_s and self._poller is None:
            self._poller = asyncio.run_coroutine_threadsafe(self._polls(), self._loop)
        return self

    async def _connect(self) -> None:
        client = AsyncTcpClient("127.0.0.1", self.port, connect_timeout=5)
        await client.connect()
        self._client = client
        self.closed = False
        await client.write_event(RunSatellite().event())  # before describe, as Home Assistant does
        await client.write_event(Describe().event())
        self._tasks.append(asyncio.ensure_future(self._read(client)))
        if self.ping:
            self._tasks.append(asyncio.ensure_future(self._pings(client)))

    async def _polls(self) -> None:
        """WyomingInfoCoordinator: describe on a second connection every poll_s."""
        while not self._closing:
            await asyncio.sleep(self.poll_s or POLL_S)
            got = ""
            try:
                async with AsyncTcpClient("127.0.0.1", self.port) as client:
                    async with asyncio.timeout(INFO_TIMEOUT_S):
                        await client.write_event(Describe().event())
                        while (event := await client.read_event()) is not None:
                            if event.type == "info":
                                got = "info"
                                break
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                pass
            self.polls.append(got)

    async def _read(self, client: AsyncTcpClient) -> None:
        uploading = False
        while True:
            try:
                event = await client.read_event()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                event = None
            if event is None:
                if client is self._client:
                    self.closed = True
                    if not (self._closing or self.muted):
                        self.drops += 1
                        if self.reconnect:
                            self._tasks.append(asyncio.ensure_future(self._reconnect()))
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

    async def _reconnect(self) -> None:
        """on_restart: 3 s, then connect again; 10 s more after each connect that fails."""
        await asyncio.sleep(RESTART_S)
        while not (self._closing or self.muted):
            try:
                await self._connect()
                return
            except OSError:
                await asyncio.sleep(RECONNECT_S)

    async def _answer(self, answer: Answer) -> None:
        assert self._client is not None
        if answer.error is not None:
            await self._client.write_event(Transcript(text="").event())
            await self._client.write_event(Error(text="No text recognized", code=answer.error).event())
            return
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
        self.finished.set()

    async def _pings(self, client: AsyncTcpClient) -> None:
        """A ping 2 s after each pong; no frame at all within 5 s and the link is given up."""
        while client is self._client and not self.closed and not self.muted:
            await asyncio.sleep(PING_SEND_DELAY_S)
            if client is not self._client or self.muted:
                return
            pongs = self.count("pong")
            try:
                await client.write_event(Ping().event())
            except OSError:
                return
            deadline = time.monotonic() + PING_TIMEOUT_S
            while self.count("pong") == pongs and time.monotonic() < deadline and not self.closed:
                await asyncio.sleep(0.05)
            if self.count("pong") == pongs and not self.closed:
                self.late_pongs += 1

    def mute(self) -> None:
        """The mute switch on: pause-satellite, and nothing more on this connection."""
        self.muted = True
        self.send(PauseSatellite().event())

    def toggle_mute(self) -> None:
        """The mute switch on and off again before the satellite loop saw it: pause-satellite,
        and the loop goes on on the same connection, with no new run-satellite (seen on Home
        Assistant 2026.11; `_muted_changed` sends the pause at once, the loop checks the switch
        only after its next event)."""
        self.send(PauseSatellite().event())

    def unmute(self) -> None:
        """The mute switch off: the old connection closed, a new one runs the satellite."""
        async def again() -> None:
            if self._client is not None:
                old, self._client = self._client, None
                await old.disconnect()
            self.muted = False
            await self._connect()

        self._call(again())

    def send(self, *events: Event) -> None:
        async def write() -> None:
            assert self._client is not None
            for event in events:
                await self._client.write_event(event)

        self._call(write())

    # -- its voice timers (TimerManager and _handle_timer) ----------------------------------------

    def start_timer(self, seconds: int, name: str | None = None) -> str:
        """"Set a timer for N seconds": timer-started now, timer-finished when it is up."""
        timer_id = ulid()

        async def start() -> None:
            timer = self.timers[timer_id] = Timer(seconds, time.monotonic())
            timer.task = asyncio.ensure_future(self._wait_for_timer(timer_id, seconds))
            await self._timer_event(TimerStarted(id=timer_id, total_seconds=seconds, name=name,
                                                 start_seconds=seconds).event())

        self._call(start())
        return timer_id

    def cancel_timer(self, timer_id: str) -> None:
        async def cancel() -> None:
            timer = self.timers.pop(timer_id)
            timer.task.cancel()
            await self._timer_event(TimerCancelled(id=timer_id).event())

        self._call(cancel())

    def pause_timer(self, timer_id: str) -> None:
        async def pause() -> None:
            timer = self.timers[timer_id]
            timer.seconds, timer.updated_at, timer.active = timer.left(), time.monotonic(), False
            timer.task.cancel()
            await self._timer_event(TimerUpdated(id=timer_id, is_active=False, total_seconds=timer.seconds).event())

        self._call(pause())

    def unpause_timer(self, timer_id: str) -> None:
        async def unpause() -> None:
            timer = self.timers[timer_id]
            timer.updated_at, timer.active = time.monotonic(), True
            timer.task = asyncio.ensure_future(self._wait_for_timer(timer_id, timer.seconds))
            await self._timer_event(TimerUpdated(id=timer_id, is_active=True, total_seconds=timer.seconds).event())

        self._call(unpause())

    def add_time(self, timer_id: str, seconds: int) -> None:
        async def add() -> None:
            timer = self.timers[timer_id]
            timer.seconds, timer.updated_at = max(0, timer.left() + seconds), time.monotonic()
            if timer.active:
                timer.task.cancel()
                timer.task = asyncio.ensure_future(self._wait_for_timer(timer_id, timer.seconds))
            await self._timer_event(TimerUpdated(id=timer_id, is_active=timer.active,
                                                 total_seconds=timer.seconds).event())

        self._call(add())

    async def _wait_for_timer(self, timer_id: str, seconds: int) -> None:
        await asyncio.sleep(seconds)
        if self.timers.pop(timer_id, None) is not None:
            await self._timer_event(TimerFinished(id=timer_id).event())

    async def _timer_event(self, event: Event) -> None:
        """As _handle_timer: dropped while the satellite is disconnected."""
        if self._client is not None and not self.closed:
            await self._client.write_event(event)

    def send_raw(self, data: bytes) -> None:
        """Bytes written as they are (a hostile frame)."""
        async def write() -> None:
            assert self._client is not None and self._client._writer is not None
            self._client._writer.write(data)
            await self._client._writer.drain()

        self._call(write())

    def _call(self, coroutine: Any, timeout_s: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def close(self, pause: bool = True) -> None:
        """Home Assistant stopping (or restarting, or reloading the entry): pause-satellite,
        then the connection closed; `pause=False`: it vanished (killed). Once."""
        if not self._thread.is_alive():
            return

        async def stop() -> None:
            self._closing = True
            for task in self._tasks + [t.task for t in self.timers.values()]:
                task.cancel()
            if self._poller is not None:
                self._poller.cancel()
            if self._client is not None:
                if pause and not self.closed:
                    try:
                        await self._client.write_event(PauseSatellite().event())
                    except OSError:
                        pass
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
