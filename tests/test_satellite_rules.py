"""The satellite's rules on the core's thread (wyoming/satellite.py), frame by frame, with a
real audit log and the link replaced at the seam guardd owns (the Peer it sends to and drops):
what a run logs and how it ends, what plays, what mutes, and what is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.tts import Synthesize

from harness.home_assistant import audio_frames, tone

from guardd.auditlog.reading import read_records
from guardd.auditlog.writer import AuditLog
from guardd.config.settings import LogConfig
from guardd.journal import Recorder
from guardd.speak.earcons import SPEAKER_RATE
from guardd.speak.feed import Feed
from guardd.speak.player import Played
from guardd.homeassistant.inputs import PeerFrame, PeerNews, Uploading
from guardd.wyoming.satellite import REPLY_WAIT_S, Satellite, Told
from guardd.homeassistant.sound import MAX_S


class Link:
    """The link as the satellite sees it: what was sent, and why a connection was dropped."""

    def __init__(self) -> None:
        self.sent: list[Event] = []
        self.sent_to: list[int] = []
        self.dropped: list[str] = []
        self.dropped_connections: list[int] = []

    def send(self, connection: int, event: Event) -> bool:
        self.sent.append(event)
        self.sent_to.append(connection)
        return True

    def drop(self, connection: int, reason: str) -> None:
        self.dropped.append(reason)
        self.dropped_connections.append(connection)


class Rig:
    def __init__(self, directory: Path, muted: bool = False) -> None:
        self.log = AuditLog(directory / "log", rotation=LogConfig())
        self.log.open()
        self.link = Link()
        self.played: list[tuple[str, np.ndarray]] = []
        self.pieces: dict[str, int] = {}  # sound id -> pieces handed to the speaker before its end
        self.muted = muted
        self.satellite = Satellite(self.link, record=Recorder(self.log), stream=self.stream)
        self.now = 100.0

    def stream(self, sound_id: str) -> Feed:
        """The speaker: what each sound's feed got, as it got it."""
        rig = self

        class Kept(Feed):
            def add(self, samples: np.ndarray) -> None:
                super().add(samples)
                rig.pieces[sound_id] = rig.pieces.get(sound_id, 0) + 1

        return Kept(lambda feed: self.played.append((sound_id, np.concatenate(feed.pieces_so_far or [np.zeros(0)]))))

    def frame(self, *events: Event, run: str | None = "r7", connection: int = 1) -> list[Told]:
        return [self.satellite.take(PeerFrame("10.0.0.2:5000", event, run, connection), self.now)
                for event in events]

    def records(self, type_: str) -> list[dict]:
        return [r for r in read_records(self.log.directory) if r["type"] == type_]


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.log.close()


def test_a_run_logs_its_transcript_and_reply_as_hashes_plays_the_reply_and_answers_played(rig):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    rig.frame(Transcript(text="lights on").event(), Synthesize(text="Done").event(),
              *audio_frames(tone(0.5)))
    [(sound_id, samples)] = rig.played
    assert sound_id == "r7-reply" and np.array_equal(samples, tone(0.5))  # at the speaker's rate already
    [transcript] = rig.records("transcript")
    assert (transcript["id"], transcript["sha256"], transcript["chars"]) == ("r7", hashlib.sha256(b"lights on").hexdigest(), 9)
    [reply] = rig.records("reply")
    assert (reply["sha256"], reply["chars"]) == (hashlib.sha256(b"Done").hexdigest(), 4)
    [ended] = rig.records("sound_end")
    assert (ended["sound"], ended["audio_ms"]) == ("r7-reply", 500)
    assert ended["audio_sha256"] == hashlib.sha256(tone(0.5).tobytes()).hexdigest()
    assert rig.link.sent == [] and rig.records("pipeline") == []  # not played yet
    rig.satellite.on_speaker(Played("r7-reply", rig.now + 0.5, True))
    assert [e.type for e in rig.link.sent] == ["played"]
    [ended] = rig.records("pipeline")
    assert (ended["id"], ended["result"]) == ("r7", "replied")


def test_a_runs_end_is_in_the_log_before_home_assistant_hears_played(rig):
    """Home Assistant may act on `played` at once; the log has said how the run ended by then."""
    logged_when_told: list[int] = []
    send = rig.link.send

    def send_and_look(connection: int, event) -> bool:
        logged_when_told.append(len(rig.records("pipeline")))
        return send(connection, event)

    rig.link.send = send_and_look
    rig.satellite.take(Uploading("r7", 1), rig.now)
    rig.frame(Synthesize(text="Done").event(), *audio_frames(tone(0.2)))
    rig.satellite.on_speaker(Played("r7-reply", rig.now + 0.2, True))
    assert [e.type for e in rig.link.sent] == ["played"] and logged_when_told == [1]


def test_reply_audio_at_another_rate_or_in_stereo_is_played_mono_at_the_speakers_rate(rig):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    stereo = np.repeat(tone(1.0, rate=16000), 2)
    data = stereo.astype("<i2").tobytes()
    rig.frame(AudioStart(rate=16000, width=2, channels=2).event(),
              AudioChunk(rate=16000, width=2, channels=2, audio=data).event(), AudioStop().event())
    [(_, samples)] = rig.played
    assert len(samples) == SPEAKER_RATE and samples.dtype == np.int16


def test_an_error_from_home_assistant_ends_the_run_with_its_code_not_its_text(rig):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    [told] = rig.frame(Error(text="no intent matched 'open the safe'", code="intent-failed").event())
    [ended] = rig.records("pipeline")
    assert ended["result"] == "error" and ended["code"] == "intent-failed" and "safe" not in ended["reason"]
    assert ended["id"] == "r7" and [(e.request_id, e.unanswered) for e in told.ended] == [("r7", True)]


def test_stt_no_text_recognized_tells_the_core_the_request_reached_home_assistant_unanswered(rig):
    """What Home Assistant sends when its speech-to-text heard nothing (assist_satellite.py
    on_pipeline_event, PipelineEventType.ERROR): the core plays its own ending for it."""
    rig.satellite.take(Uploading("r7", 1), rig.now)
    [told] = rig.frame(Transcript(text="").event(), Error(text="No text recognized", code="stt-no-text-recognized").event())[1:]
    [end] = told.ended
    assert (end.request_id, end.result, end.code, end.unanswered) == ("r7", "error", "stt-no-text-recognized", True)
    assert rig.records("pipeline")[0]["code"] == "stt-no-text-recognized"


def test_a_reply_that_played_is_no_unanswered_ending(rig):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    rig.frame(*audio_frames(tone(0.2)))
    told = rig.satellite.on_speaker(Played("r7-reply", rig.now, True))
    assert [(e.result, e.unanswered) for e in told.ended] == [("replied", False)]


def test_a_run_with_no_answer_ends_after_the_wait(rig):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    rig.satellite.tick(rig.now + REPLY_WAIT_S - 1)
    assert rig.records("pipeline") == []
    rig.satellite.tick(rig.now + REPLY_WAIT_S + 1)
    assert rig.records("pipeline")[0]["result"] == "no_reply"


def test_the_connection_closing_ends_the_run_as_disconnected(rig):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    rig.satellite.take(PeerNews("closed", "10.0.0.2:5000", "the peer closed the connection", 1, "r7"), rig.now)
    assert [r["event"] for r in rig.records("peer")] == ["closed"]
    assert rig.records("pipeline")[0]["result"] == "disconnected"


def test_another_connection_closing_leaves_the_run_and_the_sound_of_this_one_alone(rig):
    """27.9: what happens on a replaced connection touches only that connection's state."""
    rig.satellite.take(Uploading("r7", 2), rig.now)
    frames = audio_frames(tone(0.3))
    rig.frame(*frames[:-1], connection=2)
    rig.satellite.take(PeerNews("closed", "10.0.0.2:4000", "displaced", 1, None), rig.now)
    rig.frame(frames[-1], connection=2)
    assert rig.records("pipeline") == [] and [i for i, _ in rig.played] == ["r7-reply"]
    rig.satellite.on_speaker(Played("r7-reply", rig.now, True))
    assert rig.link.sent_to == [2]  # `played` goes back on the connection the reply came on


def test_an_answer_on_another_connection_than_the_uploads_is_ignored(rig):
    rig.satellite.take(Uploading("r7", 2), rig.now)
    rig.frame(Transcript(text="x").event(), connection=3)
    assert rig.records("transcript") == [] and rig.records("peer_ignored")[0]["frame"] == "transcript"


def test_audio_outside_a_run_is_an_announcement_logged_before_it_plays(rig):
    rig.frame(*audio_frames(tone(0.2)), run=None)
    [pushed] = rig.records("peer_audio")
    [ended] = rig.records("sound_end")
    assert pushed["seq"] < ended["seq"] and ended["sound"] == pushed["sound"]
    assert ended["audio_sha256"] == hashlib.sha256(tone(0.2).tobytes()).hexdigest()
    [(sound_id, _)] = rig.played
    assert sound_id.startswith("peer-")
    rig.satellite.on_speaker(Played(sound_id, rig.now, True))
    assert [e.type for e in rig.link.sent] == ["played"] and rig.records("pipeline") == []


def test_pause_is_home_assistants_hold_that_its_run_satellite_lifts_and_nothing_starts_a_pipeline(rig):
    [paused] = rig.frame(PauseSatellite().event())
    assert paused.hold == "pause" and paused.peer == "10.0.0.2:5000"
    told = rig.frame(RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event(),
                     Event("detect"), Event("detection"), RunSatellite().event())
    assert [t.hold for t in told] == [None, None, None, "resume"]  # the core lifts Home Assistant's pause alone
    assert [r["frame"] for r in rig.records("peer_ignored")] == ["run-pipeline", "detect", "detection"]
    assert rig.played == [] and rig.link.sent == []


def test_answers_with_no_run_of_guardds_are_ignored_and_logged(rig):
    rig.frame(Transcript(text="x").event(), run=None)
    [ignored] = rig.records("peer_ignored")
    assert ignored["frame"] == "transcript" and rig.records("transcript") == []


BAD_AUDIO = {
    "a chunk without audio-start": [AudioChunk(rate=22050, width=2, channels=1, audio=b"\0\0").event()],
    "audio-stop without audio-start": [AudioStop().event()],
    "32-bit audio": [AudioStart(rate=22050, width=4, channels=1).event()],
    "a rate of 1 Hz": [AudioStart(rate=1, width=2, channels=1).event()],
    "six channels": [AudioStart(rate=22050, width=2, channels=6).event()],
    "a rate that is not a number": [Event("audio-start", {"rate": "fast", "width": 2, "channels": 1})],
    "a chunk in another format": [AudioStart(rate=22050, width=2, channels=1).event(),
                                  AudioChunk(rate=16000, width=2, channels=1, audio=b"\0\0").event()],
    "audio-start inside audio": [AudioStart(rate=22050, width=2, channels=1).event(),
                                 AudioStart(rate=22050, width=2, channels=1).event()],
    "half a sample": [AudioStart(rate=22050, width=2, channels=1).event(),
                      AudioChunk(rate=22050, width=2, channels=1, audio=b"\0").event()],
    "more than the longest sound": [AudioStart(rate=8000, width=2, channels=1).event(),
                                    *[AudioChunk(rate=8000, width=2, channels=1, audio=bytes(16000 * 10)).event()
                                      for _ in range(int(MAX_S / 10) + 1)]],
}


@pytest.mark.parametrize("frames", BAD_AUDIO.values(), ids=list(BAD_AUDIO))
def test_bad_audio_drops_the_connection_and_plays_nothing_more(rig, frames):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    rig.frame(*frames)
    assert len(rig.link.dropped) == 1 and rig.link.dropped[0].startswith("bad audio from the peer")
    assert all(len(samples) <= MAX_S * SPEAKER_RATE + 1 for _, samples in rig.played)  # what came in bounds, at most
    assert rig.records("sound_end") == []  # its end never came: no hash of a whole is claimed


def test_a_reply_plays_as_its_chunks_come_not_after_the_last(rig):
    rig.satellite.take(Uploading("r7", 1), rig.now)
    frames = audio_frames(tone(1.0))
    rig.frame(*frames[:-1])  # everything but audio-stop
    assert rig.pieces["r7-reply"] == len(frames) - 2 and rig.records("reply")  # logged, and playing
    rig.frame(frames[-1])
    assert [i for i, _ in rig.played] == ["r7-reply"]


def test_what_a_peer_can_make_guardd_log_is_rationed_and_the_rest_counted_by_reason(rig):
    from guardd.homeassistant.ration import QUOTA, QUOTA_S

    for _ in range(QUOTA + 5):
        rig.frame(Event("detect"), run=None)
    assert len(rig.records("peer_ignored")) == QUOTA  # a flood cannot rotate the owner's history away
    rig.now += QUOTA_S
    rig.frame(Event("detect"), run=None)
    assert rig.records("peer_ignored")[-1]["more"] == 5
    for i in range(QUOTA + 7):  # connections closed for different reasons: each reason kept, counted
        why = "a header line over 16384 bytes" if i % 2 else "the peer closed the connection"
        rig.satellite.take(PeerNews("closed", f"10.0.0.2:{5000 + i}", why, 10 + i), rig.now)
    rig.now += QUOTA_S
    rig.satellite.take(PeerNews("closed", "10.0.0.2:6000", "the peer closed the connection", 99), rig.now)
    last = rig.records("peer")[-1]
    assert last["more"] == 7
    assert last["more_reasons"] == "the peer closed the connection=4; a header line over N bytes=3"
    for _ in range(QUOTA + 1):  # pushed sounds past the ration are not logged, so never played
        rig.frame(*audio_frames(tone(0.05)), run=None)
    assert len(rig.records("peer_audio")) == QUOTA and len(rig.played) == QUOTA


def test_what_waits_for_the_speaker_is_bounded_in_bytes_and_a_sound_past_it_is_cut(rig):
    """27.7: the peer's sounds not yet played, all together, stay within AUDIO_BYTES; the sound
    that would go past it plays what came, is still hashed whole, and its record says so."""
    from guardd.homeassistant.playing import AUDIO_BYTES

    first, second = tone(40.0, 440.0), tone(40.0, 660.0)
    rig.frame(*audio_frames(first), run=None)  # not played yet: all of it waits for the speaker
    rig.frame(*audio_frames(second), run=None)
    assert rig.satellite.sounds.waiting_bytes() <= AUDIO_BYTES
    (a, played_first), (b, played_second) = rig.played
    assert len(played_first) == len(first) and 0 < len(played_second) < len(second)
    ends = rig.records("sound_end")
    assert "cut" not in ends[0] and "over the" in ends[1]["cut"]
    assert ends[1]["audio_sha256"] == hashlib.sha256(second.tobytes()).hexdigest()  # what came, hashed whole
    rig.satellite.on_speaker(Played(a, rig.now, True))
    rig.satellite.on_speaker(Played(b, rig.now, True))
    rig.frame(*audio_frames(second), run=None)  # the speaker took the others: room again
    assert len(rig.played[-1][1]) == len(second) and "cut" not in rig.records("sound_end")[-1]
