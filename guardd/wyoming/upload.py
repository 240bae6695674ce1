"""An approved utterance as Home Assistant's Wyoming integration takes it from a satellite with
its own wake word: `detection`, `run-pipeline` from speech-to-text to text-to-speech,
`audio-start`, the utterance's exact bytes as `audio-chunk`s of CHUNK_SAMPLES, `audio-stop`.

The frames are made from the approved bytes, and the audio they carry is hashed again before
any is written: what leaves is what was approved, or nothing. Each frame's data is what the
`wyoming` package's own classes (wake.Detection, pipeline.RunPipeline, audio.AudioStart,
AudioChunk, AudioStop) put in theirs, key for key (tests/test_wyoming_frames.py compares them).
"""

from __future__ import annotations

import hashlib

from guardd.audioformat import SAMPLE_BYTES, SAMPLE_RATE
from guardd.wyoming.frames import Event

RATE, WIDTH, CHANNELS = SAMPLE_RATE, SAMPLE_BYTES, 1  # what guardd keeps; Home Assistant's STT takes it
CHUNK_SAMPLES = 1024  # as Home Assistant's own satellites send


class NotApproved(Exception):
    """The audio in the frames is not the approved audio."""


def _ms(at: int) -> int:
    """The timestamp of byte `at` of the audio, in milliseconds."""
    return at * 1000 // (RATE * WIDTH * CHANNELS)


def pipeline_frames(pcm: bytes, sha256: str) -> list[Event]:
    """The frames of one pipeline run carrying `pcm`; NotApproved unless the chunks' audio
    hashes to `sha256`."""
    step = CHUNK_SAMPLES * WIDTH * CHANNELS
    chunks = [pcm[at : at + step] for at in range(0, len(pcm), step)]
    framed = hashlib.sha256()
    for chunk in chunks:
        framed.update(chunk)
    if framed.hexdigest() != sha256:
        raise NotApproved("the audio in the frames is not the approved audio; nothing sent")
    audio = {"rate": RATE, "width": WIDTH, "channels": CHANNELS}
    return [
        # the wake word was heard here; its name says nothing more
        Event("detection", {"name": None, "timestamp": None, "speaker": None}),
        Event("run-pipeline", {"start_stage": "asr", "end_stage": "tts", "restart_on_end": False}),
        Event("audio-start", {**audio, "timestamp": 0}),
        *(Event("audio-chunk", {**audio, "timestamp": _ms(i * step)}, chunk) for i, chunk in enumerate(chunks)),
        Event("audio-stop", {"timestamp": _ms(len(pcm))}),
    ]
