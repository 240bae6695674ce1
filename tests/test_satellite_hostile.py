"""A hostile Home Assistant peer (allowed, so trusted with the protocol, never with guardd's
health), written with the `wyoming` package's own frames, against `guardd run`:

- 27.6: it cannot freeze the daemon. Ten 59 s sounds pushed at 8 kHz, then 20,000 `played`
  frames, used to fill the player's queue and the core's inbox until the core blocked on its
  own inbox: presses, `status` and SIGTERM went unanswered.
- 27.7: it cannot grow the daemon's memory. Sounds in the largest chunks a frame may carry,
  pushed as fast as the connection takes them (past the ration, so not even played), used to
  grow the resident memory by 630 MB in 20 s; what a peer can make guardd hold is bounded in
  bytes (the inbox's lane, each connection's frame, the speaker's share: about 4 MB in all).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.satellite import RunSatellite
from wyoming.snd import Played

from harness import Daemon
from test_satellite import satellite, silence
from test_wyoming_link import frame_bytes

from guardd.wyoming.frames import MAX_PAYLOAD

RSS_GROWTH_LIMIT = 16 * 1024 * 1024  # bytes: the bound is about 4 MB; the rest is the allocator's slack


def sound_frames(seconds: float, rate: int, channels: int = 1, chunk_bytes: int = 16000) -> list[bytes]:
    data = bytes(int(seconds * rate) * 2 * channels)
    chunks = [frame_bytes(AudioChunk(rate=rate, width=2, channels=channels, audio=data[i : i + chunk_bytes]).event())
              for i in range(0, len(data), chunk_bytes)]
    return [frame_bytes(AudioStart(rate=rate, width=2, channels=channels).event()), *chunks,
            frame_bytes(AudioStop().event())]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def hostile(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(frame_bytes(RunSatellite().event()))
    return sock


def answered_in(d: Daemon, call: dict, limit_s: float) -> dict:
    started = time.monotonic()
    reply = d.call(call)
    assert time.monotonic() - started < limit_s, f"{call} took {time.monotonic() - started:.1f} s"
    return reply


def test_a_peer_that_floods_sounds_and_played_frames_cannot_freeze_the_daemon(tmp_path):
    d, port = satellite(tmp_path, silence(tmp_path), played=tmp_path / "played.raw")
    try:
        d.wait_until(lambda: "satellite mode: listening" in d.said(), "the listener")
        sock = hostile(port)
        for _ in range(10):
            sock.sendall(b"".join(sound_frames(59.0, 8000)))
        played = frame_bytes(Played().event())
        try:
            sock.sendall(played * 20000)
        except OSError:
            pass  # dropped for flooding: allowed, as long as the daemon lives
        time.sleep(1.0)
        assert answered_in(d, {"call": "status"}, 3.0)["status"] == "ok"
        d.stdin("hold 3.5")  # the button gets through: the long press mutes
        d.wait_until(lambda: any(r["source"] == "button" for r in d.records("mute")), "the button's mute", 15)
        assert answered_in(d, {"call": "status"}, 3.0)["muted"] is True
        sock.close()
        started = time.monotonic()
        assert d.stop(timeout_s=10) == 0  # SIGTERM gets through
        assert time.monotonic() - started < 5
    finally:
        d.close()


def test_a_peer_cannot_grow_the_daemons_memory_past_a_few_megabytes(tmp_path):
    d, port = satellite(tmp_path, silence(tmp_path), played=tmp_path / "played.raw")
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        frames = sound_frames(59.9, 48000, 2, MAX_PAYLOAD)
        while not stop.is_set():
            try:
                sock = hostile(port)
                while not stop.is_set():
                    for frame in frames:
                        sock.sendall(frame)
                        sent[0] += len(frame)
            except OSError:
                time.sleep(0.05)  # dropped: come back, as a hostile peer would

    try:
        d.wait_until(lambda: "satellite mode: listening" in d.said(), "the listener")
        time.sleep(3.0)  # the models loaded, the microphone flowing: the daemon at rest
        before = max(rss_bytes(d.proc.pid) for _ in range(5) if time.sleep(0.1) is None)
        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        peak = before
        until = time.monotonic() + 20
        while time.monotonic() < until:
            peak = max(peak, rss_bytes(d.proc.pid))
            time.sleep(0.1)
        stop.set()
        flooder.join(10)
        assert sent[0] > 100 * 1024 * 1024, f"only {sent[0]} bytes went out: no flood"
        print(f"RSS {before / 2**20:.1f} MB at rest, {peak / 2**20:.1f} MB at the peak; {sent[0] / 2**20:.0f} MB sent")
        assert peak - before < RSS_GROWTH_LIMIT
        assert answered_in(d, {"call": "status"}, 3.0)["status"] == "ok"
        assert d.stop() == 0
    finally:
        stop.set()
        d.close()
