"""The samples of what guardd plays, int16 at SPEAKER_RATE, each part scaled to the volume on
its own (so no copy of a whole announcement is ever held as floats): a tone, or a request's
announcement, which is the asking tone, a pause, the upload's own audio and a pause (for
`announce.upload: playback`), then the sentence's lead and its rest, each spoken on its own."""

from __future__ import annotations

import logging

import numpy as np

from guardd.speak.clips import load_clip
from guardd.speak.earcons import SPEAKER_RATE, render
from guardd.speak.sentence import Announcement
from guardd.speak.voice import Espeak, VoiceError

log = logging.getLogger(__name__)

GAP_S = 0.15  # silence between the parts of an announcement


def scaled(x: np.ndarray, volume: float) -> np.ndarray:
    y = x.astype(np.float32)  # one float copy, scaled and rounded in place
    y *= np.float32(volume)
    return np.round(y, out=y).astype(np.int16)


def announcement_samples(said: Announcement, voice: Espeak | None, volume: float) -> tuple[np.ndarray, int]:
    """The announcement's samples, and how many of them make its first part: up to the end of
    the spoken lead (where to, and how much), after the upload's audio for playback. Without a
    voice, or when the engine fails, the first part ends with what did play: the upload's audio,
    or else the asking tone."""
    gap = np.zeros(int(GAP_S * SPEAKER_RATE), dtype=np.int16)
    parts = [render("asking", volume)]
    first = len(parts[0])
    if said.clip is not None:
        clip = load_clip(said.clip)
        if clip is not None:
            parts += [gap, scaled(clip, volume)]
            first += len(gap) + len(clip)
    parts.append(gap)
    if voice is not None:
        try:
            lead, rest = (scaled(part, volume) for part in voice.say_all(said.sentence))  # (at once)
        except VoiceError as exc:
            log.warning("%s: %s is asked for with the tone alone", exc, said.request_id)
        else:
            first += len(gap) + len(lead)
            parts += [lead, rest]
    return np.concatenate(parts), first
