"""The announcement of the armed request outranks every other sound (issue 27, items 1 and 2).

An allowed Home Assistant peer pushed a 20 s sound; a local request armed behind it; the gate's
5 s "LED alone asks" fallback opened and a press sent the request with no `announce` ever
played. Twelve clients hung up at once with a real request behind them; their denied tones
filled the player's queue, the real announcement was dropped, and a press 0.6 s after arming
sent it. Here: the player (threaded, through sounddevice and PortAudio to ALSA's file plugin)
cuts whatever plays for the announcement, plays nothing else while a request asks (a peer's
sound is answered `played` unplayed), and never drops an announcement; and `guardd run` does
the same end to end against a peer written with the `wyoming` package (harness/home_assistant.py).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Iterator

import numpy as np
from harness import Daemon, Inbox, heard, wait_until, write_config
from harness.home_assistant import HomeAssistant, audio_frames, free_port, tone
from test_speaker import (VOLUME, announcement_samples, first_part, needs_voice, played_environment,
                          started_player)

from conftest import silent_wav
from wyoming.audio import AudioStart
from guardd.speak.earcons import SPEAKER_RATE, render
from guardd.speak.lineup import TONES_WAITING, Lineup, Sound
from guardd.speak.player import Played, Playing, Said
from guardd.speak.sentence import Announcement, message_sentence
from guardd.homeassistant.sound import IncomingSound
from guardd.wyoming.satellite import meanings

CUT_S = 0.3  # from announce() to the announcement's first sample: a chunk, and espeak-ng's sentence


def contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    if len(needle) == 0 or len(haystack) < len(needle):
        return False
    starts = np.flatnonzero(haystack[: len(haystack) - len(needle) + 1] == needle[0])
    return any(np.array_equal(haystack[s : s + len(needle)], needle) for s in starts)


def news_of(news: list, kind: type, sound_id: str | None) -> list:
    return [n for n in list(news) if isinstance(n, kind) and n.request_id == sound_id]


def pushed(seconds: float, hz: float = 523.0) -> np.ndarray:
    """A peer's sound at the speaker's rate, easy to find again in what was played."""
    return tone(seconds, hz, SPEAKER_RATE)


def at_volume(x: np.ndarray) -> np.ndarray:
    return np.round(x.astype(np.float32) * np.float32(VOLUME)).astype(np.int16)


BANK = message_sentence("the bank", b"move the savings to account 12345", True)


# -- the player --------------------------------------------------------------------------------


@needs_voice
def test_an_announcement_cuts_a_pushed_sound_at_once(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    feed = player.stream("peer-1")
    sound = pushed(20.0)
    for i in range(0, len(sound), 1024):
        feed.add(sound[i : i + 1024])
    wait_until(lambda: len(heard(played)) > SPEAKER_RATE // 2, "half a second of the peer's sound")
    asked = time.monotonic()
    player.announce(Announcement("r5", BANK))
    wait_until(lambda: news_of(news, Played, "r5"), "the announcement to end", 30)
    [cut] = news_of(news, Played, "peer-1")
    [playing] = news_of(news, Playing, "r5")
    assert not cut.whole and news.index(cut) < news.index(playing)
    assert playing.started - asked < CUT_S, "the announcement waited behind the peer's sound"
    assert feed.dropped  # the rest of the peer's sound is let go as it comes
    player.stop()
    said = announcement_samples(BANK)
    wait_until(lambda: np.array_equal(heard(played)[-len(said):], said), "the whole announcement, right after", 10)
    peer = heard(played)[: -len(said)]
    assert SPEAKER_RATE // 2 < len(peer) < 2 * SPEAKER_RATE and np.array_equal(peer, at_volume(sound[: len(peer)]))


@needs_voice
def test_a_pushed_sound_waiting_for_its_next_piece_does_not_hold_the_announcement(tmp_path, monkeypatch):
    played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    feed = player.stream("peer-2")
    feed.add(pushed(0.2))  # then nothing: a peer that stalls its stream
    wait_until(lambda: news_of(news, Playing, "peer-2"), "the peer's sound to begin")
    asked = time.monotonic()
    player.announce(Announcement("r6", BANK))
    wait_until(lambda: news_of(news, Playing, "r6"), "the announcement to begin", 10)
    assert news_of(news, Playing, "r6")[0].started - asked < CUT_S
    assert not news_of(news, Played, "peer-2")[0].whole
    player.stop()


@needs_voice
def test_while_a_request_asks_a_pushed_sound_is_not_played_but_answered_at_once(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    player.announce(Announcement("r7", BANK))
    wait_until(lambda: news_of(news, Said, "r7"), "the destination and size said", 30)
    feed = player.stream("peer-3")  # a peer's voice in the asking window could pass for guardd's
    feed.add(pushed(1.0, 660.0))
    feed.end()
    wait_until(lambda: news_of(news, Played, "peer-3"), "peer-3 answered", 1.0)
    assert not news_of(news, Played, "peer-3")[0].whole and not news_of(news, Playing, "peer-3")
    wait_until(lambda: news_of(news, Played, "r7"), "the announcement to end", 30)
    assert news_of(news, Played, "r7")[0].whole  # it was not cut by the peer's sound
    late = player.stream("peer-4")  # after the announcement, the request still asks
    late.add(pushed(1.0, 660.0))
    late.end()
    wait_until(lambda: news_of(news, Played, "peer-4"), "peer-4 answered", 1.0)
    player.hush("r7")  # decided: the peer may be heard again
    after = player.stream("peer-5")
    after.add(pushed(0.5, 880.0))
    after.end()
    wait_until(lambda: news_of(news, Played, "peer-5"), "peer-5 played", 10)
    player.stop()
    assert news_of(news, Played, "peer-5")[0].whole
    want = np.concatenate([announcement_samples(BANK), at_volume(pushed(0.5, 880.0))])
    assert np.array_equal(heard(played, len(want)), want)
    assert [type(n).__name__ for n in news if n.request_id == "r7"] == ["Playing", "Said", "Played"]


@needs_voice
def test_a_burst_of_ending_tones_never_drops_the_announcement_behind_them(tmp_path, monkeypatch):
    """What the core does when twelve clients hang up at once, a real request queued behind."""
    played = played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    for i in range(12):
        player.announce(Announcement(f"r{i}", message_sentence("inbox", b"decoy %d" % i, True)))
        player.hush(f"r{i}")
        player.chime("denied")
    player.announce(Announcement("r99", BANK))
    for _ in range(20):  # more hang-ups of queued requests while it asks: their tones wait for nothing
        player.chime("denied")
    wait_until(lambda: news_of(news, Played, "r99"), "the real announcement to end", 30)
    [playing] = news_of(news, Playing, "r99")
    [said] = news_of(news, Said, "r99")
    [ended] = news_of(news, Played, "r99")
    assert ended.whole and playing.started < said.at < ended.ended
    player.stop()
    want = announcement_samples(BANK)
    wait_until(lambda: np.array_equal(heard(played)[-len(want):], want), "said whole, and last: no tone after it", 10)
    assert len(heard(played)) - len(want) < 2 * len(render("denied", VOLUME))  # what played before it: little
    assert player.dropped >= 20


def test_tones_coalesce_and_wait_in_a_short_line():
    line = Lineup()
    for name in ["denied"] * 10 + ["approved", "sent", "sent", "denied", "failed"]:
        line.tone(Sound(None, chime=name))
    waiting = []
    while (sound := line.next(wait=False)) is not None:
        waiting.append(sound.chime)
        line.done()
    assert waiting == ["denied", "failed"][-TONES_WAITING:] and line.let_go == 13


def test_nothing_but_the_announcement_is_lined_up_while_a_request_asks():
    from guardd.speak.feed import Feed

    line = Lineup()
    line.tone(Sound(None, chime="denied"))
    line.stream(Sound("peer-1", feed=Feed()))
    line.announce(Sound("r1", said=Announcement("r1", BANK)))
    assert line.next(wait=False) == "peer-1"  # answered, unplayed
    assert line.next(wait=False).sound_id == "r1"
    line.done()
    line.stream(Sound("peer-2", feed=Feed()))
    line.tone(Sound(None, chime="sent"))
    assert line.next(wait=False) == "peer-2" and line.next(wait=False) is None
    line.hush("r1")
    line.tone(Sound(None, chime="approved"))
    assert line.next(wait=False).chime == "approved"


# -- guardd run, with Home Assistant connected -----------------------------------------------


def satellite_with_inbox(tmp_path: Path, inbox: Inbox, played: Path, **confirm: float) -> tuple[Daemon, int]:
    port = free_port()
    config = write_config(tmp_path, audio={"queue_s": 120}, announce={"output": "device", "volume": VOLUME},
                          destinations={"inbox": {"url": inbox.url, "label": "the bank"}},
                          confirm={"timeout_s": 30.0, **confirm},
                          wyoming={"listen": f"127.0.0.1:{port}", "allow": ["127.0.0.1"], "name": "kitchen"})
    return Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"), played=played), port


def first_chunk_as_played(sound: np.ndarray) -> np.ndarray:
    """A stretch of a 16 kHz sound's first chunk as guardd plays it (wyoming/sound.py makes
    each chunk mono at the speaker's rate; then the volume)."""
    [start] = meanings(AudioStart(rate=16000, width=2, channels=1).event())
    incoming = IncomingSound(start, 0.0)
    [chunk] = meanings(audio_frames(sound, 16000)[1])
    return at_volume(incoming.add(chunk))[256:1024]


@contextlib.contextmanager
def with_a_peer(tmp_path: Path, inbox: Inbox) -> Iterator[tuple[Daemon, HomeAssistant, Path]]:
    """`guardd run` in satellite mode, its speaker a file, with Home Assistant connected (it
    answers nothing by itself: the test sends what it likes)."""
    played = tmp_path / "played.raw"
    d, port = satellite_with_inbox(tmp_path, inbox, played)
    ha = HomeAssistant(port, answer=None).connect()
    try:
        yield d, ha, played
    finally:
        ha.close()
        assert d.stop() == 0


@needs_voice
def test_a_peer_pushing_a_long_sound_cannot_make_guardd_skip_the_announcement(tmp_path, inbox):
    with with_a_peer(tmp_path, inbox) as (d, ha, played):
        ha.send(*audio_frames(tone(20.0, 523.0, 16000), 16000))  # 20 s, pushed as an announcement
        d.wait_until(lambda: len(heard(played)) > SPEAKER_RATE, "a second of the peer's sound")
        client = d.send("--to", "inbox", "--text", "move the savings to account 12345")
        d.wait_until(lambda: d.records("request"), "the request")
        armed = time.monotonic()
        d.wait_until(lambda: " is announced (" in d.said(), "the announcement to begin", 5)
        assert time.monotonic() - armed < 2.0, "the announcement waited behind the peer's sound"
        d.wait_until(lambda: ha.count("played") == 1, "played for the peer's cut sound", 5)
        d.wait_announced()  # until the destination and size have been said
        d.press()
        _, err = client.communicate(timeout=30)
        assert client.returncode == 0, err
        assert inbox.bodies == [b"move the savings to account 12345"]
        sentence = message_sentence("the bank", b"move the savings to account 12345", True)
        assert contains(heard(played), announcement_samples(sentence)[: first_part(sentence)])  # (a press cut the rest)
        assert "fault" not in d.types()  # the speaker was busy, never broken: no LED-alone fallback


@needs_voice
def test_a_peer_sound_pushed_while_a_request_asks_is_not_played_and_is_answered(tmp_path, inbox):
    with with_a_peer(tmp_path, inbox) as (d, ha, played):
        client = d.send("--to", "inbox", "--text", "dinner is ready")
        d.wait_announced()
        impostor = tone(2.0, 660.0, 16000)  # could be a voice saying "Send to your inbox"
        ha.send(*audio_frames(impostor, 16000))
        d.wait_until(lambda: ha.count("played") == 1, "played, though it was not played", 5)
        d.wait_until(lambda: d.records("sound_end"), "its end logged")
        d.press()
        _, err = client.communicate(timeout=30)
        assert client.returncode == 0, err
        ha.send(*audio_frames(tone(0.5, 880.0, 16000), 16000))  # nothing asks now: it plays
        d.wait_until(lambda: ha.count("played") == 2, "played for the second", 10)
        d.wait_until(lambda: contains(heard(played), first_chunk_as_played(tone(0.5, 880.0, 16000))), "the second played")
        assert not contains(heard(played), first_chunk_as_played(impostor))


def submit(d: Daemon, text: str) -> socket.socket:
    s = d.submit(text)
    s.settimeout(60)
    return s


def lines_until(s: socket.socket, status: str) -> list[dict]:
    got, buffer = [], b""
    while not got or got[-1].get("status") != status:
        chunk = s.recv(65536)
        assert chunk, f"closed before {status!r}: {got}"
        buffer += chunk
        *whole, buffer = buffer.split(b"\n")
        got += [json.loads(line) for line in whole]
    return got


@needs_voice
def test_twelve_hang_ups_at_once_never_drop_the_announcement_of_the_request_behind_them(tmp_path, inbox):
    played = tmp_path / "played.raw"
    d, _ = satellite_with_inbox(tmp_path, inbox, played, queue=13)
    try:
        decoys = [submit(d, f"decoy {i}") for i in range(12)]
        lines_until(decoys[0], "waiting")
        real = submit(d, "pay 900 euros to account 12345")
        lines_until(real, "queued")
        for s in decoys:  # all at once
            s.close()
        [asking] = [m for m in lines_until(real, "waiting") if m.get("sha256")]
        armed = time.monotonic()
        for at in (0.6, 1.2, 1.8, 2.4):  # all before "Send to the bank: a message of 30 characters." ends
            time.sleep(max(0.0, armed + at - time.monotonic()))
            d.press()
        time.sleep(0.5)
        decided = [r for r in d.records("decision") if r["id"] == asking["id"]]
        assert decided == [], "a press approved it before its destination and size were said"
        d.wait_until(lambda: "a message of 30 characters" in d.said(), "its announcement to begin")
        d.wait_announced(count=d.said().count(" is announced ("))
        d.press()
        assert lines_until(real, "sent")[-1]["status"] == "sent"
        assert inbox.bodies == [b"pay 900 euros to account 12345"]
        want = announcement_samples(message_sentence("the bank", b"pay 900 euros to account 12345", True))
        first = [l for l in d.said().splitlines() if f"request {asking['id']} is announced" in l]
        assert first and "(0 s" not in first[0]  # nothing says "announced" unless it played
        assert contains(heard(played), want[: SPEAKER_RATE * 3])
    finally:
        assert d.stop() == 0
