"""guardd's own sounds: a short tone when a request starts asking and one for each way it ends,
made in code and played through the real sounddevice -> PortAudio -> ALSA path (ALSA's file
plugin appends what the speaker plays to a file, on a machine with no sound card). A speaker
that is missing is a fault of the speaker alone: the request is still asked for and sent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from harness import Daemon, Inbox, alsa_env, wait_until, write_config

from conftest import silent_wav
from guardd.confirm.messages import outcome_of
from guardd.speak.earcons import EARCONS, SPEAKER_RATE, dominant_hz, render
from guardd.speak.player import Player

VOLUME = 0.7


def notes_of(x: np.ndarray, name: str) -> list[float]:
    """The strongest frequency of each note of earcon `name`, measured on samples `x`."""
    found, at = [], 0
    for hz, seconds in EARCONS[name]:
        n = int(seconds * SPEAKER_RATE)
        if hz:
            found.append(dominant_hz(x[at + n // 4 : at + 3 * n // 4]))  # the note's steady middle
        at += n
    return found


def test_each_outcome_has_its_own_sound_made_in_code():
    made = {name: render(name, VOLUME) for name in EARCONS}
    for name, x in made.items():
        assert 0.2 <= len(x) / SPEAKER_RATE <= 0.5, name  # short
        assert abs(int(np.abs(x).max()) - round(VOLUME * 32767)) <= 1, name  # at the volume, not silent
        measured = notes_of(x, name)
        wanted = [hz for hz, _ in EARCONS[name] if hz]
        assert all(abs(m - w) < 8 for m, w in zip(measured, wanted, strict=True)), (name, measured)
    assert len({tuple(hz for hz, _ in EARCONS[n]) for n in EARCONS}) == len(EARCONS) == 5
    assert notes_of(made["approved"], "approved") == sorted(notes_of(made["approved"], "approved"))  # rising
    assert notes_of(made["denied"], "denied")[0] > notes_of(made["denied"], "denied")[-1]  # falling


@pytest.mark.parametrize("event, sound", [
    ({"event": "asking", "id": "r1"}, "asking"),
    ({"event": "decision", "decision": "approved"}, "approved"),
    ({"event": "decision", "decision": "denied"}, "denied"),
    ({"event": "sent", "delivered": True}, "sent"),
    ({"event": "sent", "delivered": False}, "failed"),
    ({"event": "send_failed", "delivered": False}, "failed"),
    ({"event": "request"}, None),
    ({"event": "wake"}, None),
])
def test_which_event_sounds_which_earcon(event, sound):
    assert outcome_of(event) == sound and (sound is None or sound in EARCONS)


def played_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    played = tmp_path / "played.raw"
    for key, value in alsa_env(tmp_path, silent_wav(tmp_path / "silence.wav"), played).items():
        monkeypatch.setenv(key, value)
    return played


def test_the_player_plays_each_sound_whole_and_in_order_through_alsa(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    reports: list[str | None] = []
    player = Player(None, VOLUME, reports.append)
    player.start()
    started = time.monotonic()
    for name in ("asking", "approved", "sent"):
        player.play(name)
    assert time.monotonic() - started < 0.05  # play() only queues
    wait_until(lambda: player.played == 3, "three sounds played", 10)
    player.stop()
    heard = np.fromfile(played, dtype="<i2")
    assert np.array_equal(heard, np.concatenate([render(n, VOLUME) for n in ("asking", "approved", "sent")]))
    assert reports == []  # nothing failed, so nothing was reported


def test_a_missing_speaker_is_reported_once_and_names_the_fix(tmp_path, monkeypatch):
    played_environment(tmp_path, monkeypatch)
    reports: list[str | None] = []
    player = Player("no such speaker", VOLUME, reports.append)
    player.start()
    for name in ("asking", "denied"):
        player.play(name)
    wait_until(lambda: len(reports) == 1, "the failure report", 10)
    time.sleep(0.3)  # the second sound fails too, and is not reported again
    player.stop()
    assert len(reports) == 1 and "no such speaker" in reports[0] and "guardd devices" in reports[0]
    assert player.played == 0


def test_the_daemon_sounds_asking_approved_and_sent_for_a_request(tmp_path):
    inbox = Inbox()
    played = tmp_path / "played.raw"
    config = write_config(tmp_path, audio={"queue_s": 120}, destinations={"inbox": {"url": inbox.url}})
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"), played=played)
    try:
        client = d.send("--to", "inbox", "--text", "dinner is ready")
        d.wait_until(lambda: "[LED ◐" in d.said(), "the LED asking")
        d.wait_until(lambda: played.exists() and played.stat().st_size >= len(render("asking", VOLUME)) * 2,
                     "the asking sound")
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"dinner is ready"]
        want = np.concatenate([render(n, VOLUME) for n in ("asking", "approved", "sent")])
        d.wait_until(lambda: played.stat().st_size >= want.nbytes, "the sounds for approved and sent")
        assert np.array_equal(np.fromfile(played, dtype="<i2"), want)
        assert "fault" not in d.types()
    finally:
        assert d.stop() == 0
        inbox.close()


def test_with_no_speaker_the_request_is_still_asked_for_and_sent_and_the_fault_is_logged(tmp_path):
    inbox = Inbox()
    config = write_config(tmp_path, audio={"queue_s": 120, "output_device": "no such speaker"},
                          destinations={"inbox": {"url": inbox.url}})
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"))
    try:
        client = d.send("--to", "inbox", "--text", "still asked")
        fault = d.wait_for_record("fault", timeout_s=20)
        assert fault["kind"] == "speaker" and "no such speaker" in fault["reason"]
        d.wait_until(lambda: "[LED ◐" in d.said(), "the LED asking")
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"still asked"]
        assert d.types().count("fault") == 1  # logged once, however many sounds fail
        assert d.call({"call": "status"})["fault"] == fault["reason"]
    finally:
        assert d.stop() == 0
        inbox.close()


def test_announce_output_none_plays_nothing(tmp_path):
    inbox = Inbox()
    played = tmp_path / "played.raw"
    config = write_config(tmp_path, audio={"queue_s": 120}, announce={"output": "none"},
                          destinations={"inbox": {"url": inbox.url}})
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"), played=played)
    try:
        client = d.send("--to", "inbox", "--text", "quietly")
        d.wait_until(lambda: "[LED ◐" in d.said(), "the LED asking")
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"quietly"]
    finally:
        assert d.stop() == 0
        inbox.close()
    assert not played.exists() or played.stat().st_size == 0
