"""guardd's own sounds through the real sounddevice -> PortAudio -> ALSA path (ALSA's file plugin
appends what the speaker plays to a file, on a machine with no sound card): the announcement
of each request (the asking tone, then espeak-ng's sentence), a tone for each way a request
ends, a hush that stops an announcement, and a speaker that is missing or vanishes mid-sentence,
which is a fault of the speaker alone: the request is still asked for and sent."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from harness import Daemon, Inbox, alsa_env, guardd, heard, wait_until, write_config

from conftest import silent_wav
from guardd.confirm.messages import outcome_of
from guardd.sounddevices import import_sounddevice
from guardd.speak.earcons import EARCONS, SPEAKER_RATE, dominant_hz, render
from guardd.speak import sounds
from guardd.speak.player import DeviceOutput, Played, Player, Playing, Said, SpeakerReport
from guardd.speak.sounds import GAP_S
from guardd.speak.sentence import Announcement, Sentence, message_sentence
from guardd.speak.voice import find_voice

VOLUME = 0.7
VOICE = find_voice()
needs_voice = pytest.mark.skipif(VOICE is None, reason="espeak-ng is not installed (scripts/setup.sh installs it)")


def notes_of(x: np.ndarray, name: str) -> list[float]:
    """The strongest frequency of each note of earcon `name`, measured on samples `x`."""
    found, at = [], 0
    for hz, seconds in EARCONS[name]:
        n = int(seconds * SPEAKER_RATE)
        if hz:
            found.append(dominant_hz(x[at + n // 4 : at + 3 * n // 4]))  # the note's steady middle
        at += n
    return found


def announcement_samples(sentence: Sentence) -> np.ndarray:
    """What the speaker plays for a request: the asking tone, a pause, the sentence's two parts."""
    return sounds.announcement_samples(Announcement("r0", sentence), VOICE, VOLUME)[0]


def first_part(sentence: Sentence) -> int:
    """How many of its samples make the announcement's first part (through the spoken lead)."""
    return sounds.announcement_samples(Announcement("r0", sentence), VOICE, VOLUME)[1]


@needs_voice
def test_an_announcement_is_the_asking_tone_a_pause_the_lead_then_the_rest():
    sentence = message_sentence("kitchen tablet", b"dinner is ready", True)
    x, first = sounds.announcement_samples(Announcement("r0", sentence), VOICE, VOLUME)
    tone, gap = render("asking", VOLUME), int(GAP_S * SPEAKER_RATE)
    lead, rest = VOICE.say(sentence.lead), VOICE.say(sentence.rest)
    speech = np.concatenate([lead, rest])
    assert np.array_equal(x[: len(tone)], tone) and not np.any(x[len(tone) : len(tone) + gap])
    assert len(x) == len(tone) + gap + len(speech) and first == len(tone) + gap + len(lead)
    assert np.abs(x[len(tone) + gap :].astype(np.int32) - np.round(speech * VOLUME)).max() <= 1
    assert np.abs(speech).max() > 0.5 * 32767 and len(speech) / SPEAKER_RATE > 4  # words, not silence
    assert len(lead) / SPEAKER_RATE > 2.0  # "Send to kitchen tablet: a message of 15 characters."


def test_each_outcome_has_its_own_sound_made_in_code():
    made = {name: render(name, VOLUME) for name in EARCONS}
    for name, x in made.items():
        assert 0.2 <= len(x) / SPEAKER_RATE <= 0.5, name  # short
        assert abs(int(np.abs(x).max()) - round(VOLUME * 32767)) <= 1, name  # at the volume, not silent
        measured = notes_of(x, name)
        wanted = [hz for hz, _ in EARCONS[name] if hz]
        assert all(abs(m - w) < 8 for m, w in zip(measured, wanted, strict=True)), (name, measured)
    assert len({tuple(hz for hz, _ in EARCONS[n]) for n in EARCONS}) == len(EARCONS) == 7
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


def played_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vanishes_after: int | None = None) -> Path:
    """This process's ALSA output, from now on, appends to the file returned."""
    played = tmp_path / "played.raw"
    for key, value in alsa_env(tmp_path, silent_wav(tmp_path / "silence.wav"), played, vanishes_after).items():
        monkeypatch.setenv(key, value)
    sd = import_sounddevice()
    sd._terminate()  # PortAudio lets ALSA forget the config it read (another test's ~/.asoundrc)
    sd._initialize()
    return played


def started_player(device: str | None = None) -> tuple[Player, list]:
    """The threaded player, as `run` has it, on this process's ALSA output; and its news."""
    news: list = []
    player = Player(DeviceOutput(device), VOLUME, VOICE, news.append)
    player.start()
    return player, news


@needs_voice
def test_the_player_plays_the_announcement_then_the_endings_whole_and_in_order(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    text = message_sentence("kitchen tablet", b"dinner is ready", True)
    started = time.monotonic()
    player.announce(Announcement("r7", text))
    assert time.monotonic() - started < 0.05  # the core's side only lines it up
    wait_until(lambda: player.played == 1, "the announcement played", 30)
    player.hush("r7")  # a press decided it: the endings may play
    player.chime("approved")
    player.chime("sent")
    wait_until(lambda: player.played == 3, "three sounds played", 30)
    player.stop()
    want = np.concatenate([announcement_samples(text), render("approved", VOLUME), render("sent", VOLUME)])
    assert np.array_equal(heard(played, len(want)), want)
    assert np.abs(want[: len(want) // 2]).max() > 0.5 * VOLUME * 32767  # speech, not silence
    [playing, asks, ended] = [n for n in news if getattr(n, "request_id", "") == "r7"]
    length = len(announcement_samples(text)) / SPEAKER_RATE
    assert isinstance(playing, Playing) and playing.ends - playing.started == pytest.approx(length)
    assert playing.asks_at - playing.started == pytest.approx(first_part(text) / SPEAKER_RATE)
    assert isinstance(asks, Said) and playing.asks_at <= asks.at < playing.asks_at + 0.5  # (later if it ran dry)
    assert isinstance(ended, Played) and ended.whole and ended.ended >= playing.ends - 0.01
    assert ended.ended - started >= length - 0.2  # it took its time: paced, even on a file
    assert not any(isinstance(n, SpeakerReport) for n in news)  # nothing failed


class StarvedOutput:
    """An output (at guardd's seam) on which the player's thread is held up for `stall_s` just
    before it writes the piece with sample `at`: the speaker runs dry meanwhile."""

    latency = 0.03

    def __init__(self, at: int, stall_s: float) -> None:
        self.at, self.stall_s, self.written = at, stall_s, 0

    def open(self) -> "StarvedOutput":
        return self

    def __enter__(self) -> "StarvedOutput":
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def write(self, samples: bytes) -> None:
        self.written += len(samples) // 2
        if self.written <= self.at < self.written + 1102:  # the next piece holds it
            time.sleep(self.stall_s)

    def abort(self) -> None:
        return None


@needs_voice
def test_a_starved_player_reports_its_first_part_said_later_never_earlier():
    sentence = message_sentence("inbox", b"hi", True)
    first = first_part(sentence)
    news: list = []
    player = Player(StarvedOutput(first - 1, 0.4), VOLUME, VOICE, news.append)
    player.start()
    player.announce(Announcement("r2", sentence))
    wait_until(lambda: any(isinstance(n, Said) for n in news), "the first part said", 30)
    player.stop()
    [playing] = [n for n in news if isinstance(n, Playing)]
    [said] = [n for n in news if isinstance(n, Said)]
    assert said.at >= playing.asks_at + 0.25  # its last sample plays only after the stall


@needs_voice
def test_a_hush_stops_the_announcement_within_a_moment(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch)
    player, news = started_player()
    text = message_sentence("inbox", b"a long message that takes several seconds to read out loud", True)
    player.announce(Announcement("r9", text))
    wait_until(lambda: any(isinstance(n, Playing) for n in news), "the announcement to begin", 10)
    time.sleep(1.0)
    player.hush("r9")
    wait_until(lambda: any(isinstance(n, Played) for n in news), "the announcement to end", 10)
    player.stop()
    [ended] = [n for n in news if isinstance(n, Played)]
    got, full = heard(played), announcement_samples(text)
    assert not ended.whole
    assert SPEAKER_RATE * 0.8 < len(got) < SPEAKER_RATE * 1.6 < len(full)  # a second, then it stopped
    assert np.array_equal(got, full[: len(got)])


@needs_voice
def test_a_speaker_that_vanishes_mid_sentence_is_a_fault_and_the_announcement_ends(tmp_path, monkeypatch):
    played = played_environment(tmp_path, monkeypatch, vanishes_after=SPEAKER_RATE * 2)  # one second
    player, news = started_player()
    player.announce(Announcement("r3", message_sentence("inbox", b"cut off in the middle", True)))
    wait_until(lambda: any(isinstance(n, Played) for n in news), "the announcement to end", 20)
    player.stop()
    kinds = [type(n).__name__ for n in news]
    assert kinds == ["Playing", "SpeakerReport", "Played"], news  # the fault first: then the LED alone asks
    assert not news[2].whole and news[2].ended < news[0].ends
    assert "the speaker cannot play" in news[1].failure and "guardd devices" in news[1].failure
    assert len(heard(played)) == SPEAKER_RATE  # what it took before it went


def test_a_missing_speaker_is_reported_once_and_its_announcement_still_ends(tmp_path, monkeypatch):
    played_environment(tmp_path, monkeypatch)
    player, news = started_player("no such speaker")
    player.announce(Announcement("r1", Sentence("Send to inbox: an empty message.", "Press the button to send it.")))
    wait_until(lambda: len(news) >= 2, "the failure report and the announcement's end", 10)
    player.hush("r1")
    player.chime("denied")
    wait_until(lambda: len(news) >= 3, "the tone's end", 10)
    time.sleep(0.3)  # the second sound failed too, and is not reported again
    player.stop()
    assert [type(n) for n in news] == [SpeakerReport, Played, Played]  # the fault, the announcement, the tone
    assert news[1].request_id == "r1" and not news[1].whole  # so the LED asks alone from then
    assert "no such speaker" in news[0].failure and "guardd devices" in news[0].failure
    assert player.played == 0


# -- the daemon --------------------------------------------------------------------------------


def speaking_daemon(tmp_path: Path, inbox: Inbox, **kwargs) -> Daemon:
    config = write_config(tmp_path, audio={"queue_s": 120}, announce={"output": "device", "volume": VOLUME},
                          destinations={"inbox": {"url": inbox.url, "label": "kitchen tablet"}})
    return Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"), **kwargs)


@needs_voice
def test_the_daemon_announces_before_any_press_counts_then_sounds_approved_and_sent(tmp_path, inbox):
    played = tmp_path / "played.raw"
    d = speaking_daemon(tmp_path, inbox, played=played)
    try:
        client = d.send("--to", "inbox", "--text", "dinner is ready")
        text = message_sentence("kitchen tablet", b"dinner is ready", True)
        want = announcement_samples(text)
        d.wait_until(lambda: len(heard(played)) >= len(want), "the whole announcement", 30)
        assert f"is announced ({len(want) / SPEAKER_RATE:.2f}"[:-1] in d.said() and text.text in d.said()
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"dinner is ready"]
        sounds = np.concatenate([want, render("approved", VOLUME), render("sent", VOLUME)])
        d.wait_until(lambda: len(heard(played)) >= len(sounds), "the sounds for approved and sent")
        assert np.array_equal(heard(played), sounds)
        types = d.types()
        assert types.index("request") < types.index("announce") < types.index("decision")
        [record] = d.records("announce")
        assert record["sha256"] == Announcement("", text).sha256
        assert "fault" not in types
    finally:
        assert d.stop() == 0


@needs_voice
def test_a_press_while_the_text_is_read_approves_and_cuts_the_announcement_short(tmp_path, inbox):
    played = tmp_path / "played.raw"
    d = speaking_daemon(tmp_path, inbox, played=played)
    try:
        client = d.send("--to", "inbox", "--text", "a message long enough to press while it is being read")
        d.wait_announced()
        d.wait_until(lambda: len(heard(played)) >= SPEAKER_RATE, "the first second of it")
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and len(inbox.bodies) == 1
        endings = np.concatenate([render("approved", VOLUME), render("sent", VOLUME)])
        d.wait_until(lambda: np.array_equal(heard(played)[-len(endings):], endings), "approved and sent")
        text = message_sentence("kitchen tablet", inbox.bodies[0], True)
        said = heard(played)[: -len(endings)]
        # Stopped by the press, seconds before its end (the press comes once the destination and
        # size are said, about a third in; how soon after depends on the machine's load).
        assert SPEAKER_RATE <= len(said) < len(announcement_samples(text)) - 2 * SPEAKER_RATE
        assert np.array_equal(said, announcement_samples(text)[: len(said)])
    finally:
        assert d.stop() == 0


@needs_voice
def test_a_speaker_that_vanishes_mid_sentence_leaves_the_led_asking_and_the_press_sends(tmp_path, inbox):
    played = tmp_path / "played.raw"
    d = speaking_daemon(tmp_path, inbox, played=played, vanishes_after=SPEAKER_RATE * 2)
    try:
        client = d.send("--to", "inbox", "--text", "the speaker goes while this is said")
        fault = d.wait_for_record("fault", timeout_s=20)
        assert fault["kind"] == "speaker" and "cannot play" in fault["reason"]
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"the speaker goes while this is said"]
        assert d.types().count("fault") == 1
        text = message_sentence("kitchen tablet", b"the speaker goes while this is said", True)
        endings = np.concatenate([render("approved", VOLUME), render("sent", VOLUME)])
        d.wait_until(lambda: len(heard(played)) >= SPEAKER_RATE + len(endings), "the speaker back, for the endings")
        got = heard(played)  # one second of it; then, the speaker back, the two endings
        assert np.array_equal(got[:SPEAKER_RATE], announcement_samples(text)[:SPEAKER_RATE])
        assert np.array_equal(got[SPEAKER_RATE:], endings)
    finally:
        assert d.stop() == 0


def test_with_no_speaker_the_request_is_still_asked_for_and_sent_and_the_fault_is_logged(tmp_path, inbox):
    config = write_config(tmp_path, audio={"queue_s": 120, "output_device": "no such speaker"},
                          announce={"output": "device"}, destinations={"inbox": {"url": inbox.url}})
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"))
    try:
        client = d.send("--to", "inbox", "--text", "still asked")
        fault = d.wait_for_record("fault", timeout_s=20)
        assert fault["kind"] == "speaker" and "no such speaker" in fault["reason"]
        d.wait_until(lambda: "is not announced (the speaker failed); the LED alone asks" in d.said(),
                     "the sentence told as text, since it could not play")
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"still asked"]
        assert d.types().count("fault") == 1  # logged once, however many sounds fail
        assert d.call({"call": "status"})["fault"] == fault["reason"]
    finally:
        assert d.stop() == 0


def test_without_espeak_ng_a_request_is_asked_for_with_the_tone_and_the_log_says_so_once(tmp_path, inbox):
    played = tmp_path / "played.raw"
    (tmp_path / "bin").mkdir()  # a PATH with no espeak-ng on it (but the `cat` ALSA's file plugin runs)
    (tmp_path / "bin" / "cat").symlink_to(shutil.which("cat"))
    d = speaking_daemon(tmp_path, inbox, played=played, env={"PATH": str(tmp_path / "bin")})
    try:
        client = d.send("--to", "inbox", "--text", "toned")
        tone = render("asking", VOLUME)
        d.wait_until(lambda: len(heard(played)) >= len(tone), "the asking tone")
        d.wait_announced()
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"toned"]
        d.wait_until(lambda: len(heard(played)) > len(tone) + GAP_S * SPEAKER_RATE, "the endings")
        got = heard(played)
        assert np.array_equal(got[: len(tone)], tone) and not np.any(got[len(tone) : len(tone) + 3000])
        assert d.said().count("no speech engine (espeak-ng)") == 1 and "sudo apt install espeak-ng" in d.said()
        assert d.records("start")[0]["voice"] == "none"
    finally:
        assert d.stop() == 0


def test_announce_output_none_plays_nothing_but_shows_the_sentence(tmp_path, inbox):
    played = tmp_path / "played.raw"
    config = write_config(tmp_path, audio={"queue_s": 120}, announce={"output": "none"},
                          destinations={"inbox": {"url": inbox.url}})
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"), played=played)
    try:
        client = d.send("--to", "inbox", "--text", "quietly")
        d.wait_announced()
        assert "“Send to inbox: a message of 7 characters. It reads: quietly. Press the button to send it.”" in d.said()
        d.press()
        client.communicate(timeout=30)
        assert client.returncode == 0 and inbox.bodies == [b"quietly"]
    finally:
        assert d.stop() == 0
    assert len(heard(played)) == 0


@needs_voice
def test_replay_plays_the_announcement_to_the_configured_output_and_prints_it(tmp_path, manifest, inbox):
    played = tmp_path / "played.raw"
    env = alsa_env(tmp_path, silent_wav(tmp_path / "silence.wav"), played)
    config = write_config(tmp_path, announce={"output": "device", "volume": VOLUME},
                          destinations={"inbox": {"url": inbox.url, "label": "kitchen tablet"}},
                          after_wake={"upload_to": "inbox"})
    wav = manifest["dir"] / manifest["demo"]["file"]
    result = guardd("replay", str(wav), "--config", str(config), "--json", env=env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    [said] = [e for e in events if e["event"] == "announce"]
    assert said["text"].startswith("Send to kitchen tablet: ") and " seconds of audio" in said["text"]
    press = "Press the button to send it."
    want = announcement_samples(Sentence(said["text"].removesuffix(" " + press), press))
    assert said["duration_s"] == round(len(want) / SPEAKER_RATE, 2)
    denied = render("denied", VOLUME)  # nobody pressed: it timed out
    assert np.array_equal(heard(played, len(want) + len(denied)), np.concatenate([want, denied]))
