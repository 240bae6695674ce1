"""A timer's ring through the real sounddevice -> PortAudio -> ALSA path (ALSA's file plugin
appends what the speaker plays to a file): each burst is the `ring` tone, made in code; it
ranks after every other sound; a request's announcement cuts it and no burst plays while the
request asks; end_ring() stops the burst that plays and lets go of the one that waits."""

from __future__ import annotations

import time

import numpy as np
import pytest
from harness import heard, wait_until
from test_announcement_outranks import BANK, news_of
from test_speaker import (VOLUME, announcement_samples, needs_voice, notes_of, played_environment,
                          started_player)

from guardd.speak.earcons import EARCONS, SPEAKER_RATE, render
from guardd.speak.lineup import Lineup, Sound
from guardd.speak.player import Played, Playing
from guardd.speak.sentence import Announcement

RING = render("ring", VOLUME)


def rings_in(x: np.ndarray) -> int:
    """How many whole bursts of the ring are in what the speaker played (found by their loudest sample)."""
    n, k = len(RING), int(np.argmax(np.abs(RING)))
    found, after = 0, 0
    for s in np.flatnonzero(x == RING[k]) - k:
        if s >= after and np.array_equal(x[s : s + n], RING):
            found, after = found + 1, s + n
    return found


def test_the_ring_is_four_short_high_beeps_made_in_code_unlike_every_other_sound():
    notes = notes_of(RING, "ring")
    assert notes == pytest.approx([1318.5, 1568.0, 1318.5, 1568.0], abs=8)  # (1 Hz bins, short notes)
    assert 0.3 <= len(RING) / SPEAKER_RATE <= 0.5
    others = [hz for name, tune in EARCONS.items() if name != "ring" for hz, _ in tune if hz]
    assert min(notes) > max(others)  # higher than any tone a request has: never taken for one
    assert abs(int(np.abs(RING).max()) - round(VOLUME * 32767)) <= 1


def test_each_burst_plays_the_ring_whole_through_alsa(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    player.ring()
    wait_until(lambda: player.played == 1, "a burst to play")
    player.ring()
    wait_until(lambda: player.played == 2, "a second burst to play")
    player.stop()
    assert np.array_equal(heard(played, 2 * len(RING)), np.concatenate([RING, RING]))
    assert [type(n) for n in news if not hasattr(n, "failure")] == [Playing, Played, Playing, Played]
    assert all(n.request_id is None for n in news if isinstance(n, (Playing, Played)))  # a tone: the ears are deaf to it


def test_a_burst_waits_behind_every_other_sound(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, _ = started_player()
    player.chime("sent")  # playing
    player.ring()
    player.chime("denied")  # came after the ring, plays before it
    wait_until(lambda: player.played == 3, "three sounds")
    player.stop()
    want = np.concatenate([render("sent", VOLUME), render("denied", VOLUME), RING])
    assert np.array_equal(heard(played, len(want)), want)


def test_end_ring_lets_go_of_the_burst_that_waits(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, _ = started_player()
    player.chime("sent")
    player.ring()
    player.end_ring()
    wait_until(lambda: player.played == 1, "the tone")
    time.sleep(0.5)
    player.stop()
    assert np.array_equal(heard(played, len(render("sent", VOLUME))), render("sent", VOLUME)) and player.dropped == 1


def test_end_ring_cuts_the_burst_that_plays_within_a_chunk():
    """On the lineup itself: the player asks cut() between chunks of 50 ms."""
    lineup = Lineup()
    lineup.ring(Sound(None, chime="ring", ring=True))
    burst = lineup.next(wait=False)
    assert isinstance(burst, Sound) and burst.ring and not lineup.cut()
    lineup.end_ring()
    assert lineup.cut()
    lineup.done()
    assert lineup.next(wait=False) is None


def test_one_burst_waits_at_most():
    lineup = Lineup()
    lineup.tone(Sound(None, chime="sent"))
    for _ in range(100):
        lineup.ring(Sound(None, chime="ring", ring=True))
    assert lineup.let_go == 99
    assert [lineup.next(wait=False).chime, lineup.next(wait=False).chime, lineup.next(wait=False)] == ["sent", "ring", None]


@needs_voice
def test_an_announcement_cuts_the_ring_and_no_burst_plays_while_the_request_asks(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    player.ring()
    wait_until(lambda: news_of(news, Playing, None), "the burst to begin")
    player.announce(Announcement("r5", BANK))
    player.ring()  # while the request asks: let go
    wait_until(lambda: news_of(news, Played, "r5"), "the announcement to end", 30)
    player.hush("r5")  # decided: the ring may sound again
    player.ring()
    wait_until(lambda: player.played == 3, "a burst after the decision")
    player.stop()
    said = announcement_samples(BANK)
    x = heard(played, len(said) + len(RING) + 1)
    cut = len(x) - len(said) - len(RING)  # what played of the first burst
    assert 0 < cut < len(RING) and np.array_equal(x[:cut], RING[:cut])  # cut short for the announcement
    assert np.array_equal(x[cut : cut + len(said)], said)  # then the announcement, whole
    assert np.array_equal(x[cut + len(said) :], RING) and rings_in(x) == 1  # then, decided, one burst
    assert player.dropped == 1  # the burst asked for while the request asked
