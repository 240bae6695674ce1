"""What you hear is what you approve: every armed request is announced by the daemon itself, in
a sentence made from the request (where to, what, how much, and a message's text), logged by
its SHA-256 before it plays; a press counts only once the announcement has begun, the timeout
runs from its end, and guardd never wakes on (or keeps) its own voice.

These run the real pipeline on mock pins and an injected clock. The speaker is either the real
Player on the caller's thread (espeak-ng's real sentence, timed on the injected clock, written
nowhere) or, for the press rules, a speaker at guardd's seam whose announcement begins and ends
when the test says. test_speaker.py plays the same through ALSA.
"""

from __future__ import annotations

import hashlib
import io
import wave
from typing import Any, Callable

import numpy as np
import pytest
from harness import T0, TIMEOUT_S

from guardd.audioformat import FRAME_BYTES, SAMPLE_RATE
from guardd.config.settings import ConfirmConfig
from guardd.confirm.gate import ANNOUNCE_START_S
from guardd.device.panel import LedState
from guardd.listen.microphone import read_wav_frames
from guardd.listen.ownsound import TAIL_S
from guardd.speak.earcons import SPEAKER_RATE
from guardd.speak.player import NoOutput, Played, Player, Playing, SpeakerNews
from guardd.speak.sentence import Announcement, message_sentence, upload_sentence
from guardd.speak.voice import find_voice

VOICE = find_voice()
pytestmark = pytest.mark.skipif(VOICE is None, reason="espeak-ng is not installed (scripts/setup.sh installs it)")


def spoken(clock: Callable[[], float], report: Callable[[SpeakerNews], None]) -> Player:
    """The real speaker on the caller's thread: espeak-ng's sentence, timed on the test's clock."""
    return Player(NoOutput(), 0.7, VOICE, report, clock=clock, threaded=False)


class CuedSpeaker:
    """A speaker at guardd's seam whose announcement begins and ends when the test says, so a
    press can be put anywhere around it."""

    def __init__(self, clock: Callable[[], float], report: Callable[[SpeakerNews], None]) -> None:
        self.clock = clock
        self.report = report
        self.said: list[Announcement] = []
        self.hushed: list[str] = []
        self.chimes: list[str] = []
        self.logged_before: list[int] = []  # `announce` records in the log as each was handed over
        self.log: Any = None

    def announce(self, said: Announcement) -> None:
        self.said.append(said)
        if self.log is not None:
            self.logged_before.append(len(self.log("announce", said.request_id)))

    def hush(self, request_id: str) -> None:
        self.hushed.append(request_id)

    def stream(self, sound_id: str) -> object:
        raise AssertionError(f"no sound from Home Assistant plays in these tests ({sound_id})")

    def chime(self, name: str) -> None:
        self.chimes.append(name)


def cued(d: Any) -> CuedSpeaker:
    speaker = d.speaker
    speaker.log = d.records
    return speaker


def begin(d: Any, t: float, lasts: float) -> None:
    """The armed request's announcement begins playing at t and will last `lasts` seconds."""
    d.clock[0] = t
    d.core.take(Playing(d.speaker.said[-1].request_id, t, t + lasts))


def end(d: Any, t: float) -> None:
    d.clock[0] = t
    d.core.take(Played(d.speaker.said[-1].request_id, t, True))


# -- the sentence ------------------------------------------------------------------------------


def wav_of(seconds: float, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(bytes(2 * int(seconds * rate)))
    return out.getvalue()


def test_the_sentence_says_where_to_what_how_much_and_the_text():
    assert message_sentence("kitchen tablet", b"dinner is ready", True) == (
        "Send to kitchen tablet: a message of 15 characters. It reads: dinner is ready. Press the button to send it.")
    assert message_sentence("kitchen tablet", b"dinner is ready", False) == (
        "Send to kitchen tablet: a message of 15 characters. Press the button to send it.")
    assert message_sentence("Mum", "Ça va?\n\tOui".encode(), True) == (
        "Send to Mum: a message of 11 characters. It reads: Ça va? Oui. Press the button to send it.")
    assert message_sentence("Mum", b"", True) == "Send to Mum: an empty message. Press the button to send it."
    assert message_sentence("Mum", b"\xff\xfe", True) == (
        "Send to Mum: a message of 2 bytes that is not text. Press the button to send it.")
    long = message_sentence("Mum", b"x" * 250, True)
    assert long == f"Send to Mum: a message of 250 characters. It reads: {'x' * 200}, and 50 more characters. Press the button to send it."
    assert upload_sentence("assistant", wav_of(4.2), False) == (
        "Send to assistant: 4 seconds of audio. Press the button to send it.", False)
    assert upload_sentence("assistant", wav_of(1.0, 22050), True) == (
        "Send to assistant: the 1 second of audio you just heard. Press the button to send it.", True)
    assert upload_sentence("assistant", wav_of(0.4), False)[0] == (
        "Send to assistant: less than a second of audio. Press the button to send it.")
    assert upload_sentence("assistant", wav_of(61), True) == (
        "Send to assistant: 61 seconds of audio. Press the button to send it.", False)  # too long to play back
    assert upload_sentence("assistant", b"\x89PNG" + bytes(4000), True) == (
        "Send to assistant: an upload of 4 kilobytes. Press the button to send it.", False)


def test_the_label_is_what_the_speaker_calls_the_destination(device):
    d = device(speaker=CuedSpeaker, label="Grandma's phone")
    s = d.submit(b"hi")
    assert d.speaker.said[0].text.startswith("Send to Grandma's phone: a message of 2 characters.")
    [record] = d.records("announce", s.id)
    assert record["sha256"] == hashlib.sha256(d.speaker.said[0].text.encode()).hexdigest()


def test_a_name_without_a_label_is_said_with_spaces(device, inbox):
    from guardd.config.settings import DestinationConfig

    assert DestinationConfig(url=inbox.url, name="kitchen_tablet-2").spoken_name == "kitchen tablet 2"


# -- logged before it plays, and told --------------------------------------------------------


def test_the_announce_record_is_durable_before_the_speaker_gets_the_sentence(device):
    d = device(speaker=CuedSpeaker)
    speaker = cued(d)
    s = d.submit(b"dinner is ready")
    assert speaker.logged_before == [1]
    assert d.story(s.id) == ["request", "announce"]
    [record] = d.records("announce", s.id)
    assert (record["sha256"], record["playback"]) == (speaker.said[0].sha256, 0)


def test_the_real_announcement_is_told_with_its_text_and_length_and_timed_by_it(device):
    d = device(speaker=spoken)
    s = d.submit(b"dinner is ready")
    [told] = [e for e in d.events if e["event"] == "announce"]
    text = "Send to inbox: a message of 15 characters. It reads: dinner is ready. Press the button to send it."
    assert (told["id"], told["text"]) == (s.id, text)
    assert 4.0 < told["duration_s"] < 12.0  # the tone, a pause and espeak-ng's sentence
    ends = T0 + told["duration_s"]
    d.at(ends + TIMEOUT_S - 0.01)
    assert d.led is LedState.AWAITING  # the timeout runs from the end of the announcement
    d.at(ends + TIMEOUT_S + 0.01)
    d.assert_denied(s, "timeout")


def test_a_press_in_the_first_half_of_the_real_announcement_approves(device, inbox):
    d = device(speaker=spoken)
    s = d.submit(b"dinner is ready")
    [told] = [e for e in d.events if e["event"] == "announce"]
    d.press(T0 + told["duration_s"] / 4)
    d.assert_approved_and_sent(s, b"dinner is ready")


# -- the press rules ---------------------------------------------------------------------------


def test_a_press_after_arming_but_before_the_announcement_begins_does_not_count(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"early")
    d.press(T0 + 0.2)  # the LED asks, but the speaker has not begun
    begin(d, T0 + 0.5, lasts=4.0)
    end(d, T0 + 4.5)
    assert d.story(s.id) == ["request", "announce"]  # still asking: that press was before it
    d.press(T0 + 5.0)
    d.assert_approved_and_sent(s, b"early")


def test_a_press_right_at_the_start_of_the_announcement_does_not_count(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"at the start")
    begin(d, T0 + 0.5, lasts=4.0)
    d.press(T0 + 0.5)  # its first edge at the very instant the first sample plays
    end(d, T0 + 4.5)
    d.at(T0 + 4.5 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


def test_a_press_held_from_before_the_announcement_through_it_does_not_count(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"held")
    d.down(T0 + 0.2)
    begin(d, T0 + 0.5, lasts=4.0)
    d.up(T0 + 1.0)
    d.at(T0 + 1.1)
    assert d.story(s.id) == ["request", "announce"]
    d.press(T0 + 2.0)  # a fresh press during it does
    d.assert_approved_and_sent(s, b"held")


def test_a_press_during_the_announcement_approves_and_stops_it(device, inbox):
    d = device(speaker=CuedSpeaker)
    speaker = cued(d)
    s = d.submit(b"first half")
    begin(d, T0 + 0.5, lasts=4.0)
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(s, b"first half")
    assert speaker.hushed == [s.id] and speaker.chimes == ["approved", "sent"]


def test_a_press_after_the_announcement_ends_approves(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"after")
    begin(d, T0 + 0.5, lasts=4.0)
    end(d, T0 + 4.5)
    d.press(T0 + 4.5 + TIMEOUT_S - 0.2)
    d.assert_approved_and_sent(s, b"after")
    assert d.speaker.hushed == []  # it had ended


def test_the_timeout_runs_from_the_end_of_the_announcement_with_an_exclusive_bound(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"late")
    begin(d, T0 + 0.5, lasts=20.0)
    d.at(T0 + 0.5 + TIMEOUT_S + 1.0)  # past arming + timeout: it is still being said
    assert d.led is LedState.AWAITING and d.story(s.id) == ["request", "announce"]
    end(d, T0 + 21.0)  # it took a little longer than it said
    d.down(T0 + 21.0 + TIMEOUT_S)  # at the deadline: too late
    d.up(T0 + 21.0 + TIMEOUT_S + 0.1)
    d.at(T0 + 21.0 + TIMEOUT_S + 0.2)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


def test_an_announcement_that_never_begins_leaves_the_led_asking_alone(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"no speaker")
    d.press(T0 + 1.0)  # nothing counts while it may still begin
    d.at(T0 + ANNOUNCE_START_S)
    d.press(T0 + ANNOUNCE_START_S + 1.0)
    d.assert_approved_and_sent(s, b"no speaker")


def test_an_announcement_that_fails_before_it_begins_starts_the_timeout_then(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"failed")
    d.clock[0] = T0 + 0.3
    d.core.take(Played(s.id, T0 + 0.3, False))
    d.at(T0 + 0.3 + TIMEOUT_S - 0.01)
    assert d.led is LedState.AWAITING
    d.at(T0 + 0.3 + TIMEOUT_S)
    d.assert_denied(s, "timeout")
    [told] = [e for e in d.events if e["event"] == "announce"]
    assert told["duration_s"] == 0 and told["text"] == d.speaker.said[0].text  # still shown


def test_a_second_request_waits_and_is_announced_in_its_turn(device, inbox):
    d = device(speaker=CuedSpeaker, confirm=ConfirmConfig(timeout_s=TIMEOUT_S, queue=2))
    speaker = cued(d)
    first = d.submit(b"one")
    begin(d, T0 + 0.5, lasts=4.0)
    second = d.submit(b"two", client=2, at=T0 + 1.0)  # armed while the first is being said
    assert [a.request_id for a in speaker.said] == [first.id]
    assert d.story(second.id) == ["request"]
    d.press(T0 + 2.0)
    d.assert_approved_and_sent(first, b"one")
    assert [a.request_id for a in speaker.said] == [first.id, second.id]  # its turn now
    d.press(T0 + 3.0)  # before the second's announcement has begun: does not count
    begin(d, T0 + 3.5, lasts=3.0)
    d.press(T0 + 4.0)
    d.assert_approved_and_sent(second, b"two")
    assert inbox.bodies == [b"one", b"two"]


def test_a_request_cancelled_during_its_announcement_stops_it(device, inbox):
    d = device(speaker=CuedSpeaker)
    speaker = cued(d)
    s = d.submit(b"never mind", client=3)
    begin(d, T0 + 0.5, lasts=4.0)
    d.clock[0] = T0 + 1.0
    d.core.cancel_client(3)
    assert speaker.hushed == [s.id]
    assert d.story(s.id) == ["request", "announce", "decision"]
    assert (d.decision(s.id)["decision"], d.decision(s.id)["reason"]) == ("denied", "cancelled")
    assert speaker.chimes == ["denied"]


# -- guardd never hears itself -----------------------------------------------------------------


def at_16k(x: np.ndarray, volume: float = 0.7) -> bytes:
    """Speaker samples (int16 at SPEAKER_RATE) as the microphone would take them."""
    n = int(len(x) * SAMPLE_RATE / SPEAKER_RATE)
    y = np.interp(np.arange(n) * SPEAKER_RATE / SAMPLE_RATE, np.arange(len(x)), x) * volume
    pcm = np.round(y).astype("<i2").tobytes()
    return pcm + bytes(-len(pcm) % FRAME_BYTES)


def hear(d: Any, pcm: bytes) -> None:
    """The microphone takes `pcm`, frame by frame, as the clock runs."""
    for at in range(0, len(pcm), FRAME_BYTES):
        d.clock[0] = round(d.clock[0] + FRAME_BYTES / 2 / SAMPLE_RATE, 6)
        d.core.on_audio(pcm[at : at + FRAME_BYTES])
        d.core.tick()
        d.p.inputs.drain(d.core)


def test_an_announcement_that_says_alexa_neither_wakes_the_detector_nor_is_kept(device, inbox):
    d = device(speaker=spoken, label="Alexa")
    text = message_sentence("Alexa", b"Alexa! Alexa!", True)
    own_voice = at_16k(VOICE.say(text))
    # Heard while guardd is not playing, these very words wake the alexa model:
    hear(d, own_voice + bytes(FRAME_BYTES * 40))
    wakes = [e for e in d.events if e["event"] == "wake"]
    assert len(wakes) >= 1 and wakes[0]["model"] == "alexa", "the control: the sentence must wake it"
    kept_before = len(d.records("utterance"))
    d.at(d.now + 5.0)
    # Now guardd says them itself, and the microphone hears exactly that:
    s = d.submit(b"Alexa! Alexa!")
    [told] = [e for e in d.events if e["event"] == "announce"]
    assert told["text"] == text
    hear(d, own_voice + bytes(FRAME_BYTES * 40))
    assert [e for e in d.events if e["event"] == "wake"] == wakes  # no new wake
    assert len(d.records("utterance")) == kept_before and not d.core.recording
    assert d.core.listener.own_sound.masked >= len(own_voice) // FRAME_BYTES
    d.press(d.now)  # the request itself still asks, and a press approves it
    d.assert_approved_and_sent(s, b"Alexa! Alexa!")


def test_an_utterance_in_progress_never_keeps_the_announcement(device, inbox, manifest):
    d = device(speaker=spoken)
    positive = manifest["positives"][0]
    frames = list(read_wav_frames(manifest["dir"] / positive["file"]))
    woke = next(i for i, frame in enumerate(frames) if (hear(d, frame), d.core.recording)[1])
    for frame in frames[woke + 1 : woke + 20]:  # 1.5 s of what they say after the wake word
        hear(d, frame)
    assert d.core.recording
    began = d.core.listener.audio_t  # (the audio time of the frame the announcement began after)
    d.submit(b"meanwhile")  # a client asks while someone speaks to the assistant
    [told] = [e for e in d.events if e["event"] == "announce"]
    own_voice = at_16k(VOICE.say(told["text"]))
    hear(d, own_voice)
    hear(d, bytes(FRAME_BYTES * 60))
    [kept] = [e for e in d.events if e["event"] == "utterance"]
    with wave.open(str(d.config.state_path / "recordings" / kept["file"]), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    said_from = round((began - kept["start"]) * SAMPLE_RATE)
    assert 0 < said_from < len(pcm)
    assert np.count_nonzero(pcm[:said_from]) > 0.9 * said_from  # the person's words are kept
    assert not np.any(pcm[said_from:]), "the announcement became part of a kept utterance"


def test_the_microphone_is_masked_for_the_playback_and_its_tail_only():
    from guardd.listen.ownsound import OwnSound

    own = OwnSound()
    own.playing(10.0, 14.0)
    frame = 0.08
    assert not own.covers(9.99, frame)  # taken before the first sample
    assert own.covers(10.0, frame) and own.covers(12.0, frame)
    own.played(13.0)  # cut short
    assert own.covers(13.0 + TAIL_S, frame) and own.covers(13.0 + TAIL_S + frame, frame)
    assert not own.covers(13.0 + TAIL_S + frame + 0.001, frame)
