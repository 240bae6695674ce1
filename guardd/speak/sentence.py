"""What the speaker says for a request: one deterministic sentence, made by the daemon from the
request itself (never by the client), so the person who presses hears what they approve.

    message:  "Send to LABEL: a message of N characters. It reads: TEXT. Press the button to send it."
    upload:   "Send to LABEL: D seconds of audio. Press the button to send it."
              "Send to LABEL: an upload of N kilobytes. Press the button to send it."  (not a WAV)
    playback: the upload's own audio first, then
              "Send to LABEL: the D seconds of audio you just heard. Press the button to send it."
              (an upload over PLAYBACK_MAX_S is described instead)

LABEL is `destinations.NAME.label` (by default the name, - and _ read as spaces). TEXT is the
message's first READ_MAX characters, each run of control characters and spaces made one space,
then ", and N more characters" for the rest, and a full stop unless it ends with . ! or ?; with `announce.read_text: false` there is no "It
reads" part. A message that is not UTF-8 is "a message of N bytes that is not text". The
SHA-256 of the sentence's UTF-8 bytes goes into the `announce` record before it plays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from guardd.config.settings import AnnounceConfig
from guardd.speak.clips import audio_seconds

READ_MAX = 200  # characters of a message read out; the rest are counted
PLAYBACK_MAX_S = 60.0  # a longer upload is described, not played back


@dataclass(frozen=True)
class Announcement:
    """A request's announcement: its words, and for `announce.upload: playback` the spooled
    upload whose audio plays first (it is checked against the request's SHA-256 before)."""

    request_id: str
    text: str
    playback: Path | None = None
    playback_sha256: str = ""
    playback_type: str = ""  # the upload's content type (a WAV, or guardd's bare samples)

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
    if n < 1_000_000:
        return counted(round(n / 1000), "kilobyte")
    return f"{n / 1_000_000:.1f} megabytes"


def spoken_text(text: str) -> str:
    """The message as it is read: control characters and runs of spaces as one space, at most
    READ_MAX characters, then how many were left out."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(flat) <= READ_MAX:
        return flat
    return f"{flat[:READ_MAX]}, and {counted(len(flat) - READ_MAX, 'more character')}"


def message_sentence(label: str, payload: bytes, read_text: bool) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return f"Send to {label}: a message of {size(len(payload))} that is not text. Press the button to send it."
    what = f"a message of {counted(len(text), 'character')}" if text else "an empty message"
    heard = spoken_text(text) if read_text else ""
    reads = f" It reads: {heard}{'' if heard[-1:] in ('.', '!', '?') else '.'}" if heard else ""
    return f"Send to {label}: {what}.{reads} Press the button to send it."


def upload_sentence(label: str, payload: bytes, playback: bool, content_type: str = "audio/wav") -> tuple[str, bool]:
    """The sentence, and whether the upload's own audio plays before it."""
    seconds = audio_seconds(payload, content_type)
    if seconds is None:
        return f"Send to {label}: an upload of {size(len(payload))}. Press the button to send it.", False
    if playback and seconds <= PLAYBACK_MAX_S:
        return f"Send to {label}: the {seconds_of_audio(seconds)} you just heard. Press the button to send it.", True
    return f"Send to {label}: {seconds_of_audio(seconds)}. Press the button to send it.", False


def announcement(request_id: str, kind: str, label: str, payload: bytes, spool: Path, sha256: str,
                 config: AnnounceConfig, content_type: str) -> Announcement:
    if kind == "message":
        return Announcement(request_id, message_sentence(label, payload, config.read_text))
    text, plays = upload_sentence(label, payload, config.upload == "playback", content_type)
    if not plays:
        return Announcement(request_id, text)
    return Announcement(request_id, text, spool, sha256, content_type)
