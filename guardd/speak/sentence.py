"""What the speaker says for a request: one deterministic sentence, made by the daemon from the
request itself (never by the client), so the person who presses hears what they approve. It is
said in two parts. The first, the lead, says where to and how much, and never holds a client's
text; a press counts only once its last sample has played (docs/sending.md, the gate's rules).

    message:  "Send to LABEL: a message of N characters."  "It reads: TEXT. Press the button to send it."
    upload:   "Send to LABEL: D seconds of audio."  "Press the button to send it."
              "Send to LABEL: an upload of N kilobytes."  "Press the button to send it."  (not audio)
    playback: the upload's own audio first, then
              "Send to LABEL: the D seconds of audio you just heard."  "Press the button to send it."
              (an upload over PLAYBACK_MAX_S is described instead)

An upload is "audio" only when guardd vouches for its length from its bytes (clips.py); every
other upload is said by its size. LABEL is `destinations.NAME.label` (by default the name, - and
_ read as spaces). TEXT is the message's first READ_MAX characters, each run of control
characters and spaces made one space, then ", and N more characters" for the rest, and a full
stop unless it ends with . ! or ?; with `announce.read_text: false` there is no "It reads" part.
A message that is not UTF-8 is "a message of N bytes that is not text". LABEL and TEXT are made
literal (voice.literal: no markup reaches the engine). The engine is given the lead and the rest
as they are; the sentence is the two joined by a space, and the SHA-256 of its UTF-8 bytes goes
into the `announce` record before it plays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from guardd.config.settings import AnnounceConfig
from guardd.speak.clips import Clip, audio_seconds
from guardd.speak.voice import literal

READ_MAX = 200  # characters of a message read out; the rest are counted
PLAYBACK_MAX_S = 60.0  # a longer upload is described, not played back
PRESS = "Press the button to send it."


class Sentence(NamedTuple):
    lead: str  # where to, and how much: said first
    rest: str  # the message's text, and what to do

    @property
    def text(self) -> str:
        return f"{self.lead} {self.rest}"


@dataclass(frozen=True)
class Announcement:
    """A request's announcement: its sentence, and for `announce.upload: playback` the spooled
    upload whose audio plays first (checked against the request's SHA-256 before it plays)."""

    request_id: str
    sentence: Sentence
    clip: Clip | None = None

    @property
    def text(self) -> str:
        return self.sentence.text

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def counted(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def seconds_of_audio(seconds: float) -> str:
    if seconds < 1:
        return "less than a second of audio"
    return f"{counted(round(seconds), 'second')} of audio"


def size(n: int) -> str:
    if n < 1000:
        return counted(n, "byte")
    if round(n / 1000) < 1000:
        return counted(round(n / 1000), "kilobyte")
    return f"{n / 1_000_000:.1f} megabytes"


def spoken_text(text: str) -> str:
    """The message as it is read: literal, control characters and runs of spaces as one space,
    at most READ_MAX characters, then how many were left out."""
    flat = " ".join(literal(text).split())
    if len(flat) <= READ_MAX:
        return flat
    return f"{flat[:READ_MAX]}, and {counted(len(flat) - READ_MAX, 'more character')}"


def message_sentence(label: str, payload: bytes, read_text: bool) -> Sentence:
    to = f"Send to {literal(label)}:"
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Sentence(f"{to} a message of {size(len(payload))} that is not text.", PRESS)
    what = f"a message of {counted(len(text), 'character')}" if text else "an empty message"
    heard = spoken_text(text) if read_text else ""
    reads = f"It reads: {heard}{'' if heard[-1:] in ('.', '!', '?') else '.'} " if heard else ""
    return Sentence(f"{to} {what}.", f"{reads}{PRESS}")


def upload_sentence(label: str, payload: bytes, *, playback: bool, content_type: str,
                    kept: bool) -> tuple[Sentence, bool]:
    """The sentence, and whether the upload's own audio plays before it. `kept`: the upload is
    guardd's own kept utterance, not a client's bytes."""
    to = f"Send to {literal(label)}:"
    seconds = audio_seconds(payload, content_type, kept)
    if seconds is None:
        return Sentence(f"{to} an upload of {size(len(payload))}.", PRESS), False
    if playback and seconds <= PLAYBACK_MAX_S:
        return Sentence(f"{to} the {seconds_of_audio(seconds)} you just heard.", PRESS), True
    return Sentence(f"{to} {seconds_of_audio(seconds)}.", PRESS), False


def announcement(request_id: str, kind: str, label: str, payload: bytes, spool: Path, sha256: str,
                 config: AnnounceConfig, content_type: str, kept: bool) -> Announcement:
    if kind == "message":
        return Announcement(request_id, message_sentence(label, payload, config.read_text))
    sentence, plays = upload_sentence(label, payload, playback=config.upload == "playback",
                                      content_type=content_type, kept=kept)
    clip = Clip(spool, sha256, content_type, kept) if plays else None
    return Announcement(request_id, sentence, clip)
