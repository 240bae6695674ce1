"""An approved utterance as Home Assistant's Wyoming integration takes it from a satellite with
its own wake word: `detection`, `run-pipeline` from speech-to-text to text-to-speech,
`audio-start`, the utterance's exact bytes as `audio-chunk`s of CHUNK_SAMPLES, `audio-stop`.

The frames are made from the approved bytes, and the audio they carry is hashed again before
any is written: what leaves is what was approved, or nothing.
"""

from __future__ import annotations

import hashlib

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.wake import Detection

from guardd.audioformat import SAMPLE_BYTES, SAMPLE_RATE

RATE, WIDTH, CHANNELS = SAMPLE_RATE, SAMPLE_BYTES, 1  # what guardd keeps; Home Assistant's STT takes it
CHUNK_SAMPLES = 1024  # as Home Assistant's own satellites send


class NotApproved(Exception):
    """The audio in the frames is not the approved audio."""


def pipeline_frames(pcm: bytes, sha256: str) -> list[Event]:
    """The frames of one pipeline run carrying `pcm`; NotApproved unless the chunks' audio
    hashes to `sha256`."""
    step = CHUNK_SAMPLES * WIDTH * CHANNELS
    chunks = []
    for at in range(0, len(pcm), step):
        chunks.append(AudioChunk(rate=RATE, width=WIDTH, channels=CHANNELS, audio=pcm[at : at + step],
                                 timestamp=at * 1000 // (RATE * WIDTH * CHANNELS)))
    framed = hashlib.sha256()
    for chunk in chunks:
        framed.update(chunk.audio)
    if framed.hexdigest() != sha256:
        raise NotApproved("the audio in the frames is not the approved audio; nothing sent")
    return [
        Detection(name=None).event(),  # the wake word was heard here; its name says nothing more
        RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event(),
        AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS, timestamp=0).event(),
        *(chunk.event() for chunk in chunks),
        AudioStop(timestamp=len(pcm) * 1000 // (RATE * WIDTH * CHANNELS)).event(),
    ]
