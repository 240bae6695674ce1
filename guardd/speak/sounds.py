"""The samples of what guardd plays, int16 at SPEAKER_RATE, each part scaled to the volume on
its own (so no copy of a whole announcement is ever held as floats): a tone, or a request's
announcement, which is the asking tone, a pause, the upload's own audio and a pause (for
`announce.upload: playback`), and the spoken sentence."""

from __future__ import annotations

import logging

import numpy as np

from guardd.speak.clips import load_upload
from guardd.speak.earcons import SPEAKER_RATE, render
from guardd.speak.sentence import Announcement
from guardd.speak.voice import Espeak, VoiceError

log = logging.getLogger(__name__)

GAP_S = 0.15  # silence between the parts of an announcement


def scaled(x: np.ndarray, volume: float) -> np.ndarray:
    return np.round(x.astype(np.float32) * np.float32(volume)).astype(np.int16)


def announcement_samples(said: Announcement, voice: Espeak | None, volume: float) -> np.ndarray:
    gap = np.zeros(int(GAP_S * SPEAKER_RATE), dtype=np.int16)
    parts = [render("asking", volume), gap]
    if said.playback is not None:
        clip = load_upload(said.playback, said.playback_sha256, said.playback_type)
        if clip is not None:
            parts += [scaled(clip, volume), gap]
    if voice is not None:
        try:
            parts.append(scaled(voice.say(said.text), volume))
        except VoiceError as exc:
            log.warning("%s: %s is asked for with the tone alone", exc, said.request_id)
    return np.concatenate(parts)
