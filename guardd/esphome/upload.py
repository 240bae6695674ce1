"""An approved utterance as Home Assistant's ESPHome integration takes it from a satellite with
its own wake word: a VoiceAssistantRequest that starts a run at speech-to-text (no wake word
stage, no wake word named: that it was heard here says nothing more), the utterance's exact bytes
as VoiceAssistantAudio messages of CHUNK_SAMPLES, and one with `end` set.

The messages are made from the approved bytes, and the audio they carry is hashed again before
any is written: what leaves is what was approved, or nothing.
"""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message

from guardd.audioformat import SAMPLE_BYTES
from guardd.esphome.messages import pb

CHUNK_SAMPLES = 512  # as Home Assistant streams speech to ESPHome satellites


class NotApproved(Exception):
    """The audio in the messages is not the approved audio."""


def run_messages(pcm: bytes, sha256: str) -> tuple[Message, list[Message]]:
    """(the request that starts the run, the audio messages and the end); NotApproved unless the
    audio the messages carry hashes to `sha256`."""
    step = CHUNK_SAMPLES * SAMPLE_BYTES
    audio = [pb.VoiceAssistantAudio(data=pcm[at : at + step]) for at in range(0, len(pcm), step)]
    framed = hashlib.sha256()
    for message in audio:
        framed.update(message.data)
    if framed.hexdigest() != sha256:
        raise NotApproved("the audio in the messages is not the approved audio; nothing sent")
    start = pb.VoiceAssistantRequest(start=True, conversation_id="", flags=0, wake_word_phrase="",
                                     audio_settings=pb.VoiceAssistantAudioSettings())
    return start, [*audio, pb.VoiceAssistantAudio(end=True)]
