"""Audio is kept as private WAVs named by seq, and retention logs every deletion before it."""

from __future__ import annotations

import errno
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from harness import InstantSpeaker, NoSender, patch_log_disk
from guardd.auditlog.writer import AuditLog
from guardd.auditlog.reading import read_records
from guardd.auditlog.verify import verify
from guardd.config.settings import Config, RetentionConfig
from guardd.audioformat import FRAME_BYTES
from guardd.core import Core
from guardd.listen.endpoint import webrtc_vad
from guardd.device.panel import LedState
from guardd.listen.recordings import Recordings, wav_bytes

NOW = 1_700_000_000.0  # the wall clock the tests run at
HOUR = 3600.0


# -- helpers -------------------------------------------------------------------------------------


def pcm(seconds, seed=0):
    return np.random.default_rng(seed).normal(0, 1000, int(seconds * 16000)).astype("<i2").tobytes()


def keep(recordings, seq, seconds=0.1, age_h=0.0):
    """Keep a recording and make it `age_h` hours old on the wall clock."""
    path = recordings.keep(seq, wav_bytes(pcm(seconds, seed=seq)))
    os.utime(path, (NOW - age_h * HOUR, NOW - age_h * HOUR))
    return path


def names(paths):
    return [Path(p).name for p in paths]


def due(recordings):
    return [(r.path.name, reason) for r, reason in recordings.due_for_deletion(NOW)]


class NeverWakes:
    def process(self, frame, t):
        return None


class Harness:
    """A Core with a real log, real recordings and real webrtcvad; only the clocks are set."""

    def __init__(self, tmp_path, retention):
        self.tmp_path = tmp_path
        self.recordings = Recordings(tmp_path / "recordings", retention)
        self.log = AuditLog(tmp_path / "log", wall_clock=lambda: NOW)
        self.led, self.events = [], []
        self.t = 0.0
        self.core = Core(
            Config(state_dir=str(tmp_path), retention=retention),
            wake=NeverWakes(), vad=webrtc_vad(2), journal=self.log, sender=NoSender(), speaker=InstantSpeaker(lambda: 0.0), recordings=self.recordings,
            show=self.led.append, clock=lambda: self.t, wall_clock=lambda: NOW, emit=self.events.append,
        )

    def start(self):
        self.log.open()
        self.core.start()

    def records(self, type_=None):
        self.log.close()
        found = list(read_records(self.tmp_path / "log"))
        return [r for r in found if type_ is None or r["type"] == type_]


@pytest.fixture
def harness(tmp_path):
    made = []

    def make(**retention):
        h = Harness(tmp_path, RetentionConfig(**retention))
        made.append(h)
        return h

    yield make
    for h in made:
        h.log.close()


def watch_log_syncs(monkeypatch, directory):
    """After each durable log append, note which recordings exist: what the log saw happen first."""
    seen = []

    def fdatasync(fd):
        os.fdatasync(fd)
        seen.append(sorted(p.name for p in directory.glob("*")) if directory.is_dir() else [])

    patch_log_disk(monkeypatch, fdatasync=fdatasync)
    return seen


def break_log_after(monkeypatch, good_syncs):
    """The log's disk fails after `good_syncs` more appends."""
    left = [good_syncs]

    def fdatasync(fd):
        if left[0] <= 0:
            raise OSError(errno.EIO, "Input/output error")
        left[0] -= 1
        os.fdatasync(fd)

    patch_log_disk(monkeypatch, fdatasync=fdatasync)


# -- the files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_a_kept_recording_is_a_private_16khz_mono_16bit_wav_named_by_seq(tmp_path, umask):
    audio = pcm(0.5)
    recordings = Recordings(tmp_path / "state" / "recordings", RetentionConfig())
    old = os.umask(umask)
    try:
        path = recordings.keep(42, wav_bytes(audio))
    finally:
        os.umask(old)
    assert path == tmp_path / "state" / "recordings" / "utterance-00000042.wav"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getcomptype() == "NONE"
        assert w.readframes(w.getnframes()) == audio
    assert names(path.parent.iterdir()) == ["utterance-00000042.wav"]  # no temp file left


def test_recordings_are_listed_oldest_first_by_seq(tmp_path):
    recordings = Recordings(tmp_path, RetentionConfig())
    for seq in (10, 2, 300):
        keep(recordings, seq)
    (tmp_path / "notes.txt").write_text("not a recording")
    (tmp_path / "utterance-1.wav").write_bytes(b"not ours: the name has no 8-digit seq")
    assert names(r.path for r in recordings.listing()) == [
        "utterance-00000002.wav", "utterance-00000010.wav", "utterance-00000300.wav",
    ]


def test_a_missing_directory_has_nothing_to_delete(tmp_path):
    recordings = Recordings(tmp_path / "never-made", RetentionConfig())
    assert recordings.listing() == [] and due(recordings) == [] and recordings.stray_temp_files() == []


# -- the retention rule --------------------------------------------------------------------------


def test_recordings_older_than_max_age_are_due(tmp_path):
    recordings = Recordings(tmp_path, RetentionConfig(max_age_h=24))
    keep(recordings, 1, age_h=30)
    keep(recordings, 2, age_h=24.01)
    keep(recordings, 3, age_h=23.99)
    keep(recordings, 4, age_h=0)
    assert due(recordings) == [
        ("utterance-00000001.wav", "max_age"),
        ("utterance-00000002.wav", "max_age"),
    ]


def test_over_max_total_size_the_oldest_go_first_until_it_fits(tmp_path):
    one = len(wav_bytes(pcm(1)))  # 32 044 bytes
    recordings = Recordings(tmp_path, RetentionConfig(max_total_mb=(2.5 * one) / 1e6))
    for seq in (1, 2, 3, 4):
        keep(recordings, seq, seconds=1)
    assert due(recordings) == [
        ("utterance-00000001.wav", "max_total"),
        ("utterance-00000002.wav", "max_total"),
    ]


def test_age_and_size_limits_combine_without_deleting_twice(tmp_path):
    one = len(wav_bytes(pcm(1)))
    recordings = Recordings(tmp_path, RetentionConfig(max_age_h=1, max_total_mb=(1.5 * one) / 1e6))
    keep(recordings, 1, seconds=1, age_h=2)
    keep(recordings, 2, seconds=1)
    keep(recordings, 3, seconds=1)
    assert due(recordings) == [
        ("utterance-00000001.wav", "max_age"),
        ("utterance-00000002.wav", "max_total"),
    ]


def test_nothing_is_due_within_the_limits(tmp_path):
    recordings = Recordings(tmp_path, RetentionConfig(max_age_h=1, max_total_mb=1))
    keep(recordings, 1, age_h=0.5)
    keep(recordings, 2)
    assert due(recordings) == []


# -- retention through the core: logged first, then deleted --------------------------------------


def test_every_deletion_is_logged_before_the_file_goes(harness, tmp_path, monkeypatch):
    h = harness(max_age_h=1, max_total_mb=(1.5 * len(wav_bytes(pcm(1)))) / 1e6)
    keep(h.recordings, 1, seconds=1, age_h=2)
    keep(h.recordings, 2, seconds=1)
    keep(h.recordings, 3, seconds=1)
    sizes = {p.name: p.stat().st_size for p in h.recordings.directory.iterdir()}
    on_disk_at_sync = watch_log_syncs(monkeypatch, h.recordings.directory)
    h.start()
    records = h.records()

    assert [(r["type"], r.get("file"), r.get("reason")) for r in records] == [
        ("start", None, None),
        ("deleted", "utterance-00000001.wav", "max_age"),
        ("deleted", "utterance-00000002.wav", "max_total"),
    ]
    for record, on_disk in zip(records, on_disk_at_sync):
        if record["type"] == "deleted":
            assert record["file"] in on_disk  # durable in the log while the file still existed
            assert record["bytes"] == sizes[record["file"]]
    assert names(h.recordings.directory.iterdir()) == ["utterance-00000003.wav"]
    assert [(e["event"], e["file"]) for e in h.events] == [
        ("deleted", "utterance-00000001.wav"), ("deleted", "utterance-00000002.wav"),
    ]
    assert verify(tmp_path / "log") == (3, [])


def test_a_deletion_that_cannot_be_logged_does_not_happen(harness, monkeypatch):
    h = harness(max_age_h=1)
    kept = [keep(h.recordings, seq, age_h=2) for seq in (1, 2)]
    break_log_after(monkeypatch, 1)  # the start record is written, then the disk fails
    h.start()
    assert all(p.exists() for p in kept)
    assert h.core.faults.first and "Input/output error" in h.core.faults.first
    assert LedState.FAULT in h.led
    monkeypatch.undo()
    assert [r["type"] for r in h.records()] == ["start"]


def test_retention_runs_again_while_listening(harness):
    h = harness(max_age_h=1)
    h.start()
    path = keep(h.recordings, 7, age_h=2)  # aged while guardd runs
    h.t = 59.0
    h.core.on_audio(bytes(FRAME_BYTES))
    assert path.exists()  # not yet: the rule runs once a minute on the core's clock
    h.t = 60.0
    h.core.on_audio(bytes(FRAME_BYTES))
    assert not path.exists()
    assert [(r["type"], r.get("file")) for r in h.records()][-1] == ("deleted", path.name)


def test_stray_temp_files_are_deleted_and_logged_as_incomplete(harness, monkeypatch):
    h = harness()
    h.recordings.directory.mkdir(mode=0o700)
    stray = h.recordings.directory / "utterance-00000005.tmp"
    stray.write_bytes(b"RIFF half a file")
    keep(h.recordings, 4)
    on_disk_at_sync = watch_log_syncs(monkeypatch, h.recordings.directory)
    h.start()
    records = h.records()
    assert [(r["type"], r.get("file"), r.get("reason")) for r in records] == [
        ("start", None, None),
        ("deleted", "utterance-00000005.tmp", "incomplete"),
    ]
    assert "utterance-00000005.tmp" in on_disk_at_sync[1]
    assert not stray.exists()
    assert names(h.recordings.directory.iterdir()) == ["utterance-00000004.wav"]


def test_a_stray_temp_file_whose_deletion_cannot_be_logged_stays(harness, monkeypatch):
    h = harness()
    h.recordings.directory.mkdir(mode=0o700)
    stray = h.recordings.directory / "utterance-00000005.tmp"
    stray.write_bytes(b"RIFF half a file")
    break_log_after(monkeypatch, 1)
    h.start()
    assert stray.exists()
