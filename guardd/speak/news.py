"""What the player tells the core about its sounds, as inputs queued for the core's thread: a
sound began (Playing), the first part of an announcement has been said (Said), a sound ended
(Played), or the speaker failed or plays again (SpeakerReport). Times are the core's clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Playing:
    """Sound `request_id` (a request's announcement, a streamed sound's id, or None for one of
    guardd's tones) has its first sample at the speaker at `started`, and will end at `ends`. For
    an announcement, `asks_at` is when the last sample of its first part (where to, and how much)
    will play; None: only at its end."""

    request_id: str | None
    started: float
    ends: float
    asks_at: float | None = None


@dataclass(frozen=True)
class Said:
    """The first part of request `request_id`'s announcement has gone to the speaker whole: its
    last sample plays at `at`. From then, and no earlier, a press may approve the request."""

    request_id: str
    at: float


@dataclass(frozen=True)
class Played:
    """The sound ended at `ended`: `whole`, or cut short (hushed, outranked, failed, or not
    played at all)."""

    request_id: str | None
    ended: float
    whole: bool


@dataclass(frozen=True)
class SpeakerReport:
    """The speaker failed (why), or plays again (None): an input for the core."""

    failure: str | None


SpeakerNews = Playing | Said | Played | SpeakerReport
NEWS = (Playing, Said, Played, SpeakerReport)  # for isinstance: what the player sends the core
