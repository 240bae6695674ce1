"""Home Assistant's ESPHome integration as guardd meets it, made of aioesphomeapi's own APIClient
(the client that integration runs) and doing what Home Assistant Core 2026.11.0's
homeassistant/components/esphome/ does with a voice satellite (read in shared/ha-real's root):

- connect with the key, read the device info and the entities, watch the states, subscribe to
  the voice assistant with audio in the link (`assist_satellite.py` `async_added_to_hass`, for a
  device with API_AUDIO);
- `handle_start` answers a run with port 0 (audio in the link) and takes its audio until
  `handle_stop`; then it answers as its pipeline does (`on_pipeline_event`): run-start, stt-start,
  stt-end with the text, intent-start, intent-end, tts-start with the reply's text, tts-end with
  a URL, run-end; and, for a SPEAKER device, streams the reply's speech (`_stream_tts_audio`):
  tts-stream-start, 512-sample chunks of 16 kHz audio paced to stay 0.384 s ahead of real time,
  tts-stream-end; it waits for VoiceAssistantAnnounceFinished (`handle_announcement_finished`);
- `announce(url)`: `send_voice_assistant_announcement_await_response` (`_do_announce`);
- `switch(on)`: its mute switch turned on or off.

It runs its own event loop on a thread; the test reads what came (`audio`, `starts`, `finished`,
`mute_states`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aioesphomeapi import APIClient, SwitchState, VoiceAssistantEventType as E

from harness.home_assistant import tone

TTS_RATE = 16000  # what Home Assistant asks its TTS for, for a SPEAKER satellite
CHUNK_SAMPLES = 512  # _stream_tts_audio's samples_per_chunk
LEAD_S = 0.384  # the device's ring buffer, kept 75 % full


@dataclass
class Answer:
    transcript: str = "turn on the kitchen lights"
    text: str = "Turned on the kitchen lights"
    audio: np.ndarray | None = None  # int16 at 16 kHz; None: tone(0.6)
    error: str | None = None  # the pipeline ends with this error code instead
    continue_conversation: bool = False


@dataclass
class Seen:
    starts: list[tuple[str, int, str | None]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)  # every audio message, in order, runs included
    stops: list[bool] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)  # announce-finished messages (success)
    mute_states: list[bool] = field(default_factory=list)


class EsphomeHomeAssistant:
    def __init__(self, port: int, key: str | None, *, answer: Answer | None = Answer()) -> None:
        self.port = port
        self.key = key
        self.answer = answer
        self.seen = Seen()
        self.device_info: Any = None
        self.entities: list[Any] = []
        self.client: APIClient | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._unsubscribe: Any = None

    def _call(self, coroutine: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    # -- the connection ------------------------------------------------------------------------

    def connect(self, timeout_s: float = 30.0) -> "EsphomeHomeAssistant":
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._call(self._connect())
                return self
            except Exception:  # noqa: BLE001 - the daemon may still be starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    async def _connect(self) -> None:
        client = APIClient("127.0.0.1", self.port, None, noise_psk=self.key, client_info="Home Assistant 2026.11.0")
        await client.connect(login=True)
        self.client = client
        self.device_info, self.entities, _ = await client.device_info_and_list_entities()
        client.subscribe_states(self._on_state)
        self._unsubscribe = client.subscribe_voice_assistant(
            handle_start=self._start, handle_stop=self._stop, handle_audio=self._audio,
            handle_announcement_finished=self._finished)

    def _on_state(self, state: Any) -> None:
        if isinstance(state, SwitchState):
            self.seen.mute_states.append(bool(state.state))

    async def _start(self, conversation_id: str, flags: int, settings: Any, wake_word: str | None) -> int | None:
        self.seen.starts.append((conversation_id, flags, wake_word))
        return 0

    async def _audio(self, data: bytes, data2: bytes | None = None) -> None:
        self.seen.audio.append(data)

    async def _stop(self, abort: bool) -> None:
        self.seen.stops.append(abort)
        if self.answer is not None and not abort:
            asyncio.ensure_future(self._answer(self.answer))

    async def _finished(self, message: Any) -> None:
        self.seen.finished.append(bool(message.success))

    async def _answer(self, answer: Answer) -> None:
        assert self.client is not None
        send = self.client.send_voice_assistant_event
        send(E.VOICE_ASSISTANT_RUN_START, {})
        send(E.VOICE_ASSISTANT_STT_START, {})
        if answer.error is not None:
            send(E.VOICE_ASSISTANT_ERROR, {"code": answer.error, "message": "No text recognized"})
            send(E.VOICE_ASSISTANT_RUN_END, {})
            return
        send(E.VOICE_ASSISTANT_STT_END, {"text": answer.transcript})
        send(E.VOICE_ASSISTANT_INTENT_START, {})
        send(E.VOICE_ASSISTANT_INTENT_END, {"conversation_id": "c1", "speech": answer.text,
                                            "continue_conversation": "1" if answer.continue_conversation else "0"})
        send(E.VOICE_ASSISTANT_TTS_START, {"text": answer.text})
        send(E.VOICE_ASSISTANT_TTS_END, {"url": "http://127.0.0.1:8123/api/tts_proxy/x.wav"})
        send(E.VOICE_ASSISTANT_RUN_END, {})
        await asyncio.sleep(0)  # (the stream task runs after the events, as in Home Assistant)
        await self.stream(tone(0.6, rate=TTS_RATE) if answer.audio is None else answer.audio)

    async def stream(self, audio: np.ndarray) -> None:
        """_stream_tts_audio: stream-start, paced chunks, stream-end."""
        assert self.client is not None
        self.client.send_voice_assistant_event(E.VOICE_ASSISTANT_TTS_STREAM_START, {})
        data = audio.astype("<i2").tobytes()
        step = CHUNK_SAMPLES * 2
        start = time.monotonic()
        sent_s = 0.0
        for at in range(0, len(data), step):
            self.client.send_voice_assistant_audio(data[at:at + step])
            sent_s += CHUNK_SAMPLES / TTS_RATE
            wait = (sent_s - LEAD_S) - (time.monotonic() - start)
            if wait > 0:
                await asyncio.sleep(wait)
        self.client.send_voice_assistant_event(E.VOICE_ASSISTANT_TTS_STREAM_END, {})

    # -- what Home Assistant does on its own ---------------------------------------------------

    def announce(self, url: str, text: str = "Dinner is ready", timeout_s: float = 30.0,
                 start_conversation: bool = False) -> bool:
        """An announcement, waited for as Home Assistant waits: the AnnounceFinished's success."""
        async def go() -> bool:
            assert self.client is not None
            done = await self.client.send_voice_assistant_announcement_await_response(
                url, timeout_s, text, start_conversation=start_conversation)
            return bool(done.success)

        return self._call(go(), timeout_s + 5)

    def switch(self, on: bool) -> None:
        async def go() -> None:
            assert self.client is not None
            self.client.switch_command(self.entities[0].key, on)

        self._call(go())

    def send(self, event_type: Any, data: dict[str, str]) -> None:
        async def go() -> None:
            assert self.client is not None
            self.client.send_voice_assistant_event(event_type, data)

        self._call(go())

    def timer(self, event_type: Any, timer_id: str, total_s: int, left_s: int, name: str = "eggs") -> None:
        """What Home Assistant's timer manager sends a satellite that claims TIMERS
        (`send_voice_assistant_timer_event`)."""
        async def go() -> None:
            assert self.client is not None
            self.client.send_voice_assistant_timer_event(event_type, timer_id, name, total_s, left_s, True)

        self._call(go())

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def stop() -> None:
            if self.client is not None:
                await self.client.disconnect()

        try:
            self._call(stop(), 10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def uploaded(self, run: int = -1) -> bytes:
        return b"".join(self.seen.audio)
