"""The audio path never waits for the disk: with every fdatasync stalled for 2 seconds (an SD card
stuck in garbage collection), `guardd run` loses no audio frame, misses no wake word, and its
records still land in order.

Audio comes through the real sounddevice -> PortAudio -> ALSA path, from ALSA's file plugin. That
plugin is not paced: it delivers the file as fast as PortAudio asks, then floods silence. So "no
frame lost" is checked where it has a meaning: when the callback has enqueued the file's last
block, nothing has been dropped or overrun; the core then processes every one of the file's
frames (the utterance it keeps is byte-identical to `guardd replay` of the same WAV, at the same
audio times). Blocks of the silence flood after the file may be dropped once the queue is full;
they are not audio anyone spoke. audio.queue_s is 120 s, far more than the file plus the
stalls, so the file's frames and the trailing silence that ends the utterance always fit.
"""

from __future__ import annotations

import json
import math
import sys
import time
import wave

from conftest import replay_events

from harness import Daemon, write_config

from guardd.auditlog.reading import read_records
from guardd.auditlog.verify import verify

STALL_S = 2.0
DEADLINE_S = 90.0

# Every fdatasync in the process sleeps first (releasing the GIL, as a blocked syscall does), and
# the microphone notes its drop and overrun counters when the file's last block is enqueued.
DRIVER = """
import json, os, sys, time
stall_s, file_blocks, snapshot = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
real = os.fdatasync
def stalling(fd):
    time.sleep(stall_s)
    return real(fd)
os.fdatasync = stalling
import guardd.listen.microphone, guardd.cli.keeper
class WatchedMicrophone(guardd.listen.microphone.Microphone):
    blocks = 0
    def _callback(self, indata, frames, time_info, status):
        super()._callback(indata, frames, time_info, status)
        self.blocks += 1
        if self.blocks == file_blocks:
            with open(snapshot, "w") as f:
                json.dump({"dropped": self.dropped, "overflows": self.overflows, "frames": frames}, f)
guardd.cli.keeper.Microphone = WatchedMicrophone
from guardd.cli.main import main
sys.exit(main(sys.argv[4:]))
"""


def test_a_stalled_log_loses_no_frame_and_misses_no_wake_word(tmp_path, manifest):
    wav = manifest["dir"] / manifest["demo"]["file"]
    with wave.open(str(wav), "rb") as w:
        file_blocks = math.ceil(w.getnframes() / 1280)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = write_config(run_dir, audio={"queue_s": 120})
    snapshot = run_dir / "at_file_end.json"
    started = time.monotonic()
    d = Daemon(run_dir, config, wav, simulate=False, wait_for_socket=False,
               program=[sys.executable, "-c", DRIVER, str(STALL_S), str(file_blocks), str(snapshot)])
    try:
        kept = d.wait_for_record("utterance", timeout_s=DEADLINE_S)
        assert d.stop(timeout_s=30) == 0
    finally:
        d.close()
    log_dir = d.log_dir
    # The stall really happened: start, wake and utterance each waited on the disk.
    assert time.monotonic() - started >= 3 * STALL_S

    # While the file played, the callback never dropped a block and PortAudio never overran.
    at_end = json.loads(snapshot.read_text())
    assert at_end == {"dropped": 0, "overflows": 0, "frames": 1280}

    # Every frame of the file reached the core: same wake, same utterance bytes, same audio times.
    (tmp_path / "replay").mkdir()
    events = replay_events(wav, write_config(tmp_path / "replay"))
    wakes = [e for e in events if e["event"] == "wake"]
    utterances = [e for e in events if e["event"] == "utterance"]
    records = list(read_records(log_dir))
    run_wakes = [r for r in records if r["type"] == "wake"]
    assert [(r["model"], r["audio_ms"]) for r in run_wakes] == [
        (e["model"], round(e["t"] * 1000)) for e in wakes
    ]
    assert len(utterances) == 1
    assert kept["sha256"] == utterances[0]["sha256"]
    assert (kept["start_ms"], kept["end_ms"]) == (
        round(utterances[0]["start"] * 1000), round(utterances[0]["end"] * 1000)
    )
    kept_file = run_dir / "state" / "recordings" / kept["file"]
    assert kept_file.stat().st_size == utterances[0]["bytes"]

    # The records landed in order: seq contiguous, chain and seals intact.
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert [r["type"] for r in records] == ["start", "wake", "utterance", "stop"]
    assert verify(log_dir) == (len(records), [])
