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
import struct
import subprocess
import wave
from typing import Any, Callable

import numpy as np
import pytest
from harness import T0, TIMEOUT_S

from guardd.audioformat import FRAME_BYTES, PCM_TYPE, SAMPLE_RATE
from guardd.config.settings import ConfirmConfig
from guardd.confirm.gate import ANNOUNCE_START_S
from guardd.device.panel import LedState
from guardd.listen.microphone import read_wav_frames
from guardd.listen.ownsound import TAIL_S
from guardd.speak.earcons import SPEAKER_RATE
from guardd.speak.player import NoOutput, Played, Player, Playing, Said, SpeakerNews
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


def said(d: Any, t: float) -> None:
    """Its first part (where to, how much) has been said: its last sample played at t."""
    d.clock[0] = t
    d.core.take(Said(d.speaker.said[-1].request_id, t))


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
    assert message_sentence("kitchen tablet", b"dinner is ready", True).text == (
        "Send to kitchen tablet: a message of 15 characters. It reads: dinner is ready. Press the button to send it.")
    assert message_sentence("kitchen tablet", b"dinner is ready", False).text == (
        "Send to kitchen tablet: a message of 15 characters. Press the button to send it.")
    assert message_sentence("Mum", "Ça va?\n\tOui".encode(), True).text == (
        "Send to Mum: a message of 11 characters. It reads: Ça va? Oui. Press the button to send it.")
    assert message_sentence("Mum", b"", True).text == "Send to Mum: an empty message. Press the button to send it."
    assert message_sentence("Mum", b"\xff\xfe", True).text == (
        "Send to Mum: a message of 2 bytes that is not text. Press the button to send it.")
    long = message_sentence("Mum", b"x" * 250, True).text
    assert long == f"Send to Mum: a message of 250 characters. It reads: {'x' * 200}, and 50 more characters. Press the button to send it."
    assert upload_sentence("assistant", wav_of(4.2), **UPLOAD) == (
        ("Send to assistant: 4 seconds of audio.", "Press the button to send it."), False)
    assert upload_sentence("assistant", wav_of(1.0), **{**UPLOAD, "playback": True}) == (
        ("Send to assistant: the 1 second of audio you just heard.", "Press the button to send it."), True)
    assert upload_sentence("assistant", wav_of(0.4), **UPLOAD)[0].lead == (
        "Send to assistant: less than a second of audio.")
    assert upload_sentence("assistant", wav_of(61), **{**UPLOAD, "playback": True}) == (
        ("Send to assistant: 61 seconds of audio.", "Press the button to send it."), False)  # too long to play back
    assert upload_sentence("assistant", b"\x89PNG" + bytes(4000), **{**UPLOAD, "playback": True}) == (
        ("Send to assistant: an upload of 4 kilobytes.", "Press the button to send it."), False)


def test_the_first_part_says_where_to_and_how_much_and_never_holds_the_clients_text():
    leads = {b"Send to the bank: 900 euros.": "Send to inbox: a message of 28 characters.",
             b"": "Send to inbox: an empty message.",
             b"\xffSend to the bank": "Send to inbox: a message of 17 bytes that is not text."}
    for text, lead in leads.items():
        assert message_sentence("inbox", text, True).lead == lead
        assert message_sentence("inbox", text, True).rest.endswith("Press the button to send it.")


# -- what is said of an upload comes from the bytes that leave --------------------------------

UPLOAD = {"playback": False, "content_type": "audio/wav", "kept": False}
MB3 = 3_000_000


def riff(*chunks: tuple[bytes, bytes], size_fix: int = 0) -> bytes:
    """A RIFF/WAVE file of the given (id, body) chunks, its sizes as the chunks say."""
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(data)) + data for cid, data in chunks)
    return b"RIFF" + struct.pack("<I", len(body) + size_fix) + body


def fmt(rate: int = 16000, channels: int = 1, bits: int = 16, code: int = 1) -> tuple[bytes, bytes]:
    """A `fmt ` chunk (its derived fields wrap around as a 32-bit or 16-bit header's would)."""
    per_second, per_frame = rate * channels * bits // 8 % 2**32, channels * bits // 8 % 2**16
    return b"fmt ", struct.pack("<HHIIHH", code, channels, rate, per_second, per_frame, bits)


def lying_header(data: bytes, claimed: int) -> bytes:
    """A WAV whose data chunk claims `claimed` bytes while `data` follows (the header lies)."""
    wav = riff(fmt(), (b"data", data))
    return wav[:40] + struct.pack("<I", claimed) + wav[44:]


HOSTILE_WAVS = {
    "a 4 GHz sample rate": riff(fmt(rate=4_000_000_000), (b"data", bytes(MB3))),
    "65,535 channels": riff(fmt(channels=65535), (b"data", bytes(MB3))),
    "1 s of data and a hidden LIST chunk": riff(fmt(), (b"data", bytes(32000)), (b"LIST", bytes(MB3))),
    "a LIST chunk before the data": riff(fmt(), (b"LIST", bytes(MB3)), (b"data", bytes(32000))),
    "a data size that says 1 s": lying_header(bytes(MB3), 32000),
    "a RIFF size that says 1 s": riff(fmt(), (b"data", bytes(MB3)), size_fix=32000 - MB3),
    "bytes after the data": riff(fmt(), (b"data", bytes(32000))) + bytes(MB3),
    "22.05 kHz": riff(fmt(rate=22050), (b"data", bytes(MB3))),
    "8-bit samples": riff(fmt(bits=8), (b"data", bytes(MB3))),
    "floating point": riff(fmt(code=3, bits=32), (b"data", bytes(MB3))),
    "an 18-byte fmt chunk": riff((b"fmt ", fmt()[1] + b"\0\0"), (b"data", bytes(MB3))),
    "half a sample at the end": riff(fmt(), (b"data", bytes(MB3 + 1))),
}


@pytest.mark.parametrize("name", HOSTILE_WAVS)
def test_a_wav_whose_header_lies_is_said_by_the_size_of_the_bytes_that_leave(name):
    wav = HOSTILE_WAVS[name]
    assert len(wav) >= MB3
    for playback in (False, True):
        sentence, plays = upload_sentence("the bank", wav, **{**UPLOAD, "playback": playback})
        assert sentence.lead == f"Send to the bank: an upload of {len(wav) / 1e6:.1f} megabytes.", name
        assert not plays  # played back only when guardd vouches for it


def test_three_megabytes_of_a_clients_bytes_typed_audio_l16_are_said_by_their_size():
    text = b"move the savings to account 12345. " * 86_000
    for kept in (False,):  # a client's bytes: the speaker cannot vouch for them as audio
        sentence, plays = upload_sentence("the bank", text, playback=True, content_type=PCM_TYPE, kept=kept)
        assert sentence.lead == f"Send to the bank: an upload of {len(text) / 1e6:.1f} megabytes." and not plays


def test_guardds_own_kept_utterance_as_bare_samples_is_said_by_its_length():
    pcm = bytes(2 * 16000 * 3)
    sentence, plays = upload_sentence("Home Assistant", pcm, playback=False, content_type=PCM_TYPE, kept=True)
    assert sentence.lead == "Send to Home Assistant: 3 seconds of audio." and not plays


def test_only_a_wav_exactly_in_guardds_format_is_audio():
    from guardd.speak.clips import wav_samples

    good = wav_of(2.0)
    assert good == riff(fmt(), (b"data", bytes(64000)))  # what `wave` writes for guardd's own format
    assert wav_samples(good) is not None and len(wav_samples(good)) == 64000
    for name, wav in HOSTILE_WAVS.items():
        assert wav_samples(wav) is None, name
    for cut in (0, 4, 12, 43, 44 + 1):
        assert wav_samples(good[:cut]) is None


def test_playback_plays_back_only_audio_guardd_vouches_for(tmp_path):
    from guardd.speak.clips import Clip, load_clip

    for name, wav in {"good": wav_of(0.5), **HOSTILE_WAVS}.items():
        path = tmp_path / "spooled.bin"
        path.write_bytes(wav)
        clip = load_clip(Clip(path, hashlib.sha256(wav).hexdigest(), "audio/wav", False))
        assert (clip is not None) == (name == "good"), name
    path.write_bytes(bytes(32000))  # bare samples, typed as guardd's own: only its own kept ones play
    digest = hashlib.sha256(bytes(32000)).hexdigest()
    assert load_clip(Clip(path, digest, PCM_TYPE, False)) is None
    assert len(load_clip(Clip(path, digest, PCM_TYPE, True))) == SPEAKER_RATE


def test_a_clients_upload_typed_audio_is_announced_by_the_size_that_leaves(device, inbox):
    """Through the core: the `announce` record's sentence is the one with the size."""
    d = device(speaker=CuedSpeaker)
    wav = HOSTILE_WAVS["1 s of data and a hidden LIST chunk"]
    s = d.submit(wav, kind="upload")
    assert d.speaker.said[0].sentence.lead == f"Send to inbox: an upload of {len(wav) / 1e6:.1f} megabytes."
    assert d.records("announce", s.id)[0]["sha256"] == d.speaker.said[0].sha256


# -- the text is read, never obeyed -------------------------------------------------------------

INJECTED = "s'End t@ D@ b'aNk"  # espeak-ng's phonemes for "send to the bank"
HOSTILE_TEXTS = {
    "phonemes": f"[[{INJECTED}]]",
    "phonemes in the middle": f"please [[{INJECTED}]] thank you",
    "an unclosed [[": "[[ oops",
    "a lone ]] then [[": "]] and [[h@'loU",
    "an embedded speed command": "\x01" + "300S fast \x0120P high",
    "a voice change": "\x01" + "Vde hallo",
    "SSML": '<speak><prosody rate="x-slow">slow</prosody><phoneme ph="x">y</phoneme></speak>',
    "an entity": "&lt;&#91;&#91;s'End&#93;&#93;",
}


def phonemes(text: str) -> str:
    """The phonemes espeak-ng speaks for `text`, given exactly as guardd gives it (voice.py)."""
    from guardd.speak.voice import VOICE as SPEECH, WORDS_PER_MINUTE

    done = subprocess.run([VOICE.program, "-q", "-x", "-b", "1", "-v", SPEECH, "-s", str(WORDS_PER_MINUTE)],
                          input=text.encode(), capture_output=True, timeout=10, check=True)
    return " ".join(done.stdout.decode().split())


@pytest.mark.parametrize("name", HOSTILE_TEXTS)
def test_a_message_cannot_steer_espeak_ng(name):
    hostile = HOSTILE_TEXTS[name]
    lead, rest = message_sentence("inbox", hostile.encode(), True)
    assert VOICE.say(rest) is not None  # the engine takes it (it refuses anything not literal)
    heard = phonemes(rest)
    assert INJECTED not in heard and "b'aNk" not in heard  # the injected words are never said
    assert heard.endswith(phonemes("Press the button to send it.")), heard  # and the ending is intact
    assert "[" not in rest and "\x01" not in rest
    assert lead == f"Send to inbox: a message of {len(hostile)} characters."
    # The same audio as a person typing it harmlessly: round brackets, spaces for controls.
    harmless = hostile.replace("[", "(").replace("]", ")").replace("\x01", " ")
    assert np.array_equal(VOICE.say(rest), VOICE.say(message_sentence("inbox", harmless.encode(), True).rest))


def test_the_engine_is_never_given_markup():
    from guardd.speak.voice import VoiceError

    for text in HOSTILE_TEXTS.values():
        if "[" in text or "\x01" in text:
            with pytest.raises(VoiceError, match="literal"):
                VOICE.say(text)


def test_the_record_hashes_exactly_what_the_engine_is_given(device):
    d = device(speaker=CuedSpeaker)
    s = d.submit(HOSTILE_TEXTS["phonemes"].encode())
    said = d.speaker.said[0]
    [record] = d.records("announce", s.id)
    assert said.text == f"{said.sentence.lead} {said.sentence.rest}"
    assert record["sha256"] == hashlib.sha256(said.text.encode()).hexdigest()
    assert said.sentence.rest == f"It reads: (({INJECTED})). Press the button to send it."


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


def lead_s(text: str, voice: Any = VOICE) -> float:
    """Seconds from the announcement's first sample to the last of its first part: the asking
    tone, the pause and the spoken lead (only the tone, without a voice)."""
    from guardd.speak.earcons import render
    from guardd.speak.sounds import GAP_S

    tone = len(render("asking", 0.7)) / SPEAKER_RATE
    return tone if voice is None else tone + GAP_S + len(voice.say(text)) / SPEAKER_RATE


def test_the_announce_event_says_when_a_press_begins_to_count(device):
    d = device(speaker=spoken)
    d.submit(b"dinner is ready")
    [told] = [e for e in d.events if e["event"] == "announce"]
    assert set(told) == {"event", "t", "id", "text", "duration_s", "asks_after_s"}
    want = lead_s("Send to inbox: a message of 15 characters.")
    assert want <= told["asks_after_s"] < want + 0.01 and 2.0 < want < told["duration_s"] / 2 + 1


def test_a_press_inside_the_asking_tone_approves_nothing(device, inbox):
    """Presses 0-2 ms after the `announce` event (inside the 0.24 s tone) approved 3 of 3."""
    d = device(speaker=spoken)
    for at in (0.0005, 0.002, 0.2):
        armed = d.now
        s = d.submit(b"pay 900 euros to account 12345")
        d.press(armed + at)
        [told] = [e for e in d.events if e["event"] == "announce" and e["id"] == s.id]
        d.at(armed + told["duration_s"] + TIMEOUT_S + 0.01)
        d.assert_denied(s, "timeout")
        d.at(d.now + 2.0)
    inbox.assert_nothing_arrived()


def test_a_press_counts_only_once_the_destination_and_size_have_been_said(device, inbox):
    d = device(speaker=spoken)
    s = d.submit(b"dinner is ready")
    asks = T0 + lead_s("Send to inbox: a message of 15 characters.")
    d.press(asks - 0.05)  # "Send to inbox: a message of 15 charac-": not yet
    assert d.story(s.id) == ["request", "announce"]
    d.press(asks + 0.01)  # the first word of "It reads: ..." is enough
    d.assert_approved_and_sent(s, b"dinner is ready")


def test_a_press_that_began_before_the_first_part_ended_does_not_count_when_released_after(device, inbox):
    d = device(speaker=spoken)
    s = d.submit(b"dinner is ready")
    asks = T0 + lead_s("Send to inbox: a message of 15 characters.")
    d.press(asks - 0.02, hold=0.2)
    assert d.story(s.id) == ["request", "announce"]
    d.press(asks + 0.5)
    d.assert_approved_and_sent(s, b"dinner is ready")


def test_without_espeak_ng_a_press_counts_once_the_asking_tone_has_played(device, inbox):
    def toned(clock: Callable[[], float], report: Callable[[SpeakerNews], None]) -> Player:
        return Player(NoOutput(), 0.7, None, report, clock=clock, threaded=False)

    d = device(speaker=toned)
    s = d.submit(b"toned")
    [told] = [e for e in d.events if e["event"] == "announce"]
    assert told["asks_after_s"] == pytest.approx(lead_s("", None), abs=0.01)
    d.press(T0 + 0.2)
    assert d.story(s.id) == ["request", "announce"]
    d.press(T0 + lead_s("", None) + 0.01)
    d.assert_approved_and_sent(s, b"toned")


def test_a_press_soon_after_the_first_part_of_the_real_announcement_approves(device, inbox):
    d = device(speaker=spoken)
    s = d.submit(b"dinner is ready")
    [told] = [e for e in d.events if e["event"] == "announce"]
    d.press(T0 + told["asks_after_s"] + 0.1)
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


def test_a_press_after_it_began_but_before_its_first_part_was_said_does_not_count(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"before the words")
    begin(d, T0 + 0.5, lasts=4.0)
    d.press(T0 + 0.6)  # the asking tone plays: no word said yet
    d.press(T0 + 1.9)
    said(d, T0 + 2.0)
    d.press(T0 + 2.0)  # at the very instant its last sample plays: too early still
    assert d.story(s.id) == ["request", "announce"]
    d.press(T0 + 2.5)
    d.assert_approved_and_sent(s, b"before the words")


def test_a_long_press_denies_even_before_the_first_part_is_said(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"no thanks")
    begin(d, T0 + 0.5, lasts=4.0)
    d.press(T0 + 0.6, hold=2.5)  # held through "Send to inbox: ...": denying needs no words
    d.assert_denied(s, "long press")
    inbox.assert_nothing_arrived()


def test_a_press_held_from_before_the_announcement_through_it_does_not_count(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"held")
    d.down(T0 + 0.2)
    begin(d, T0 + 0.5, lasts=4.0)
    said(d, T0 + 0.9)
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
    said(d, T0 + 0.9)
    d.press(T0 + 1.0)
    d.assert_approved_and_sent(s, b"first half")
    assert speaker.hushed == [s.id] and speaker.chimes == ["approved", "sent"]


def test_a_press_after_the_announcement_ends_approves(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"after")
    begin(d, T0 + 0.5, lasts=4.0)
    said(d, T0 + 1.5)
    end(d, T0 + 4.5)
    d.press(T0 + 4.5 + TIMEOUT_S - 0.2)
    d.assert_approved_and_sent(s, b"after")
    assert d.speaker.hushed == [s.id]  # decided: its asking window closes


def test_the_timeout_runs_from_the_end_of_the_announcement_with_an_exclusive_bound(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"late")
    begin(d, T0 + 0.5, lasts=20.0)
    said(d, T0 + 2.0)
    d.at(T0 + 0.5 + TIMEOUT_S + 1.0)  # past arming + timeout: it is still being said
    assert d.led is LedState.AWAITING and d.story(s.id) == ["request", "announce"]
    end(d, T0 + 21.0)  # it took a little longer than it said
    d.down(T0 + 21.0 + TIMEOUT_S)  # at the deadline: too late
    d.up(T0 + 21.0 + TIMEOUT_S + 0.1)
    d.at(T0 + 21.0 + TIMEOUT_S + 0.2)
    d.assert_denied(s, "timeout")
    inbox.assert_nothing_arrived()


def test_an_announcement_that_never_begins_leaves_the_led_asking_alone_and_the_fault_logged(device, inbox):
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"no speaker")
    d.press(T0 + 1.0)  # nothing counts while it may still begin
    d.at(T0 + ANNOUNCE_START_S)
    [fault] = d.records("fault")
    assert fault["kind"] == "speaker" and f"did not begin announcing {s.id} within 5 s" in fault["reason"]
    d.press(T0 + ANNOUNCE_START_S + 1.0)
    d.assert_approved_and_sent(s, b"no speaker")
    assert d.records("fault")[0]["seq"] < d.decision(s.id)["seq"]  # logged before the press could count


def test_a_busy_speaker_never_lets_the_led_ask_alone(device, inbox):
    """The fallback is for a speaker that is stuck or broken. A speaker that began (it cuts
    whatever it played for the announcement) opens the press window only with the words."""
    d = device(speaker=CuedSpeaker)
    s = d.submit(b"move the savings to account 12345")
    begin(d, T0 + 4.9, lasts=8.0)
    d.press(T0 + 6.0)  # past ANNOUNCE_START_S, the words not yet said
    said(d, T0 + 7.0)
    assert d.story(s.id) == ["request", "announce"] and not d.records("fault")
    d.press(T0 + 7.5)
    d.assert_approved_and_sent(s, b"move the savings to account 12345")


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
    assert told["spoken"] is False


def test_a_second_request_waits_and_is_announced_in_its_turn(device, inbox):
    d = device(speaker=CuedSpeaker, confirm=ConfirmConfig(timeout_s=TIMEOUT_S, queue=2))
    speaker = cued(d)
    first = d.submit(b"one")
    begin(d, T0 + 0.5, lasts=4.0)
    said(d, T0 + 1.5)
    second = d.submit(b"two", client=2, at=T0 + 1.6)  # armed while the first is being said
    assert [a.request_id for a in speaker.said] == [first.id]
    assert d.story(second.id) == ["request"]
    d.press(T0 + 2.0)
    d.assert_approved_and_sent(first, b"one")
    assert [a.request_id for a in speaker.said] == [first.id, second.id]  # its turn now
    d.press(T0 + 3.0)  # before the second's announcement has begun: does not count
    begin(d, T0 + 3.5, lasts=3.0)
    said(d, T0 + 3.9)
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


def what_guardd_plays(sentence: Any) -> np.ndarray:
    """The announcement guardd plays for a sentence (the tone, the pause, the lead, the rest)."""
    from guardd.speak.sounds import announcement_samples

    return announcement_samples(Announcement("r0", sentence), VOICE, 1.0)[0]


def hear(d: Any, pcm: bytes) -> None:
    """The microphone takes `pcm`, frame by frame, as the clock runs."""
    for at in range(0, len(pcm), FRAME_BYTES):
        d.clock[0] = round(d.clock[0] + FRAME_BYTES / 2 / SAMPLE_RATE, 6)
        d.core.on_audio(pcm[at : at + FRAME_BYTES])
        d.core.tick()
        d.p.inputs.drain(d.core)


def test_an_announcement_that_says_alexa_neither_wakes_the_detector_nor_is_kept(device, inbox):
    d = device(speaker=spoken, label="Alexa")
    sentence = message_sentence("Alexa", b"Alexa! Alexa!", True)
    text, own_voice = sentence.text, at_16k(what_guardd_plays(sentence))
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
    own_voice = at_16k(what_guardd_plays(d.core.broker.armed.announcement.sentence))
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
