"""Satellite mode on loopback, with Home Assistant's side in a process of its own (`python -m
benchmark.satellite peer PORT OUT`: a raw-socket peer that starts the satellite, pings every 2 s,
polls describe on a second connection every 30 s and answers each upload as a pipeline does,
noting when each frame came and went).

guardd's side is `run`'s own parts in this process: the core, the daemon's inbox (its lanes,
cli/inbox.py), the threaded sender with the link, the threaded player through sounddevice and
PortAudio to an ALSA file PCM, and a loop paced by 80 ms audio blocks as `run`'s is (the inbox
is drained once a block, or as soon as something arrives).

- press to last audio-chunk: the button's release (the end of a press) to the peer's receipt
  of the last audio-chunk of a 5 s utterance (the debounce, the decision and send records made
  durable, the framing, the writes);
- reply audio-start to first played sample: the peer writing the reply's audio-start to the
  player's first sample of it reaching the output (its write plus the stream's latency);
- idle cost: the CPU time of the link's threads (its describe polls' too) while the peer only
  pings every 2 s and polls every 30 s, as Home Assistant does, per second.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

UTTERANCE_S = 5.0
UPLOADS = 8  # per run
REPLY_S = 1.0
THINK_S = 1.0  # the pipeline's own time before it answers (speech-to-text, intent, text-to-speech)
POLL_S = 30.0  # Home Assistant's describe poll (wyoming/coordinator.py UPDATE_INTERVAL)


# -- Home Assistant's side ----------------------------------------------------------------------


def peer(port: int, out: Path) -> None:
    """Start the satellite, ping every 2 s, answer each upload; on SIGTERM write what it saw."""
    import signal

    from wyoming.asr import Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.event import read_event, write_event
    from wyoming.ping import Ping
    from wyoming.satellite import RunSatellite
    from wyoming.tts import Synthesize

    sock = socket.create_connection(("127.0.0.1", port))
    reader, writer = sock.makefile("rb"), sock.makefile("wb")
    lock = threading.Lock()
    seen: list[tuple[str, float]] = []
    replies: list[float] = []  # when each reply's audio-start was written

    def send(*events: Any) -> None:
        with lock:
            for event in events:
                write_event(event, writer)

    def pings() -> None:
        while True:
            time.sleep(2.0)
            send(Ping().event())

    def polls() -> None:  # Home Assistant's WyomingInfoCoordinator: describe on a second connection
        from wyoming.info import Describe

        while True:
            time.sleep(POLL_S)
            with socket.create_connection(("127.0.0.1", port)) as poll:
                write_event(Describe().event(), poll.makefile("wb"))
                read_event(poll.makefile("rb"))

    def finish(*_: Any) -> None:
        out.write_text(json.dumps({"seen": seen, "replies": replies}))
        os._exit(0)

    signal.signal(signal.SIGTERM, finish)
    send(RunSatellite().event())
    threading.Thread(target=pings, daemon=True).start()
    threading.Thread(target=polls, daemon=True).start()
    reply = (np.sin(np.arange(int(REPLY_S * 22050)) * 0.15) * 8000).astype("<i2").tobytes()
    while (event := read_event(reader)) is not None:
        seen.append((event.type, time.monotonic()))
        if event.type != "audio-stop":
            continue
        time.sleep(THINK_S)  # (guardd's tones for approved and sent have ended by then)
        send(Transcript(text="turn on the lights").event(), Synthesize(text="Turned on the lights").event())
        replies.append(time.monotonic())
        send(AudioStart(rate=22050, width=2, channels=1).event())
        for at in range(0, len(reply), 2048):
            send(AudioChunk(rate=22050, width=2, channels=1, audio=reply[at : at + 2048]).event())
        send(AudioStop().event())
    finish()


# -- guardd's side ------------------------------------------------------------------------------


def _cpu_ticks(stat: str) -> int:
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def link_cpu_s() -> tuple[int, dict[int, int]]:
    """The process's CPU ticks so far, and those of each thread that is not the link's (the
    link's connections come and go: a poll's threads live milliseconds, and a thread's ticks
    stay in the process's count when it ends)."""
    others = {}
    for thread in threading.enumerate():
        if thread.native_id is None or thread.name.startswith("guardd-wyoming"):
            continue
        try:
            others[thread.native_id] = _cpu_ticks(f"/proc/self/task/{thread.native_id}/stat")
        except OSError:
            continue
    return _cpu_ticks("/proc/self/stat"), others


def link_cpu_between(before: tuple[int, dict[int, int]], after: tuple[int, dict[int, int]]) -> float:
    """CPU seconds of the link's threads (all of them, the ended ones too) between two readings.

    The kernel rounds each thread's time to ticks apart from the process's, so on a link that
    used next to nothing the difference can come out a tick or two below zero: that is zero."""
    others = sum(after[1][t] - before[1][t] for t in before[1] if t in after[1])
    return max(0, after[0] - before[0] - others) / os.sysconf("SC_CLK_TCK")


class RunLoop:
    """`run`'s loop for a core in this process: an 80 ms block of silence every 80 ms (as the
    stream gives), and `until(done)` takes a block (or POLL_S, or until an input or a press
    settles), the inbox and the core's clock, as `run` does. `noted` sees each input first."""

    def __init__(self, core: Any, inbox: Any, blocks: "queue.Queue[Any]", noted: Any = lambda item: None) -> None:
        from guardd.audioformat import FRAME_BYTES

        self._core, self._inbox, self._blocks, self._noted = core, inbox, blocks, noted
        self._stop = threading.Event()

        def microphone() -> None:
            due = time.monotonic()
            while not self._stop.is_set():
                due += 0.08
                time.sleep(max(0.0, due - time.monotonic()))
                blocks.put(bytes(FRAME_BYTES))

        threading.Thread(target=microphone, daemon=True).start()

    def until(self, done: Any, timeout_s: float = 30.0) -> None:
        from guardd.cli.keeper import POLL_S

        core = self._core
        deadline = time.monotonic() + timeout_s
        while not done():
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError("the benchmark's loop stalled")
            settles = core.broker.gate.settles_at
            try:
                block = self._blocks.get(timeout=min(max(0.0, settles - now), POLL_S) if settles else POLL_S)
            except queue.Empty:
                block = None
            for item in self._inbox.take():
                self._noted(item)
                core.take(item)
            if block is not None:
                core.on_audio(block)
            core.tick()

    def approve(self, destination: str, pcm: bytes, deliver: Any) -> float:
        """A kept utterance asks to go to `destination` (as after a wake); once its announcement
        has been said, a 0.1 s press approves it. When the press was released."""
        from guardd.audioformat import PCM_TYPE
        from guardd.confirm.outbox import Caller
        from guardd.device.panel import ButtonEdge

        me = Caller(os.getuid(), os.getpid(), "benchmark")
        request = self._core.submit("upload", destination, pcm, me, content_type=PCM_TYPE, kept=True)
        self.until(lambda: request.extra.get("announced"))
        played = time.monotonic()  # (its last samples written: they play up to 0.15 s later)
        self.until(lambda: time.monotonic() > played + 0.2)
        down = time.monotonic()
        deliver(ButtonEdge(True, down))
        self.until(lambda: time.monotonic() > down + 0.1)
        released = time.monotonic()
        deliver(ButtonEdge(False, released))
        return released

    def stop(self) -> None:
        self._stop.set()


def measure(tmp: Path, idle_s: float) -> dict[str, list[float]]:
    from gpiozero.pins.mock import MockFactory

    from guardd.cli.inbox import Inbox
    from guardd.config.settings import AnnounceConfig, Config, WyomingConfig
    from guardd.confirm.sender import Sender
    from guardd.pipeline import open_pipeline, speaker_output
    from guardd.speak.player import Player, Playing
    from guardd.wyoming.info import satellite_info
    from guardd.wyoming.link import WyomingLink

    config = Config(state_dir=str(tmp / "state"), announce=AnnounceConfig(output="device"),
                    wyoming=WyomingConfig(listen="127.0.0.1:0", allow=("127.0.0.1",)))
    blocks: queue.Queue[Any] = queue.Queue()
    inbox = Inbox(lambda: blocks.put(None))  # as `run`'s: the input waits in the inbox, and the loop wakes
    deliver = inbox.deliver

    link = WyomingLink("127.0.0.1", 0, ("127.0.0.1",), satellite_info("bench", config.wake.labels), inbox.peer)
    link.start()
    sender = Sender(deliver, threaded=True, satellite=link)
    player = Player(speaker_output(config), config.announce.volume, None, deliver)  # tones, no words
    player.start()
    out = tmp / "peer.json"
    peer_proc = subprocess.Popen([sys.executable, "-m", "benchmark.satellite", "peer",
                                  str(link.port), str(out)])
    released: list[float] = []
    reply_started: list[float] = []

    def noted(item: Any) -> None:
        if isinstance(item, Playing) and str(item.request_id).endswith("-reply"):
            reply_started.append(item.started)

    with open_pipeline(config, pin_factory=MockFactory(), clock=time.monotonic, on_edge=deliver,
                       emit=lambda e: None, sender=sender, speaker=player, blink_thread=False, peer=link) as p:
        core = p.core
        core.start(mode="bench")
        sender.start()
        loop = RunLoop(core, inbox, blocks, noted)
        loop_until = loop.until
        loop_until(lambda: link.ready)
        pcm = (np.sin(np.arange(int(UTTERANCE_S * 16000)) * 0.05) * 3000).astype("<i2").tobytes()
        for i in range(UPLOADS):
            released.append(loop.approve("wyoming", pcm, deliver))
            loop_until(lambda: len(reply_started) > i and core.satellite.run is None)
        idle_from, cpu_from = time.monotonic(), link_cpu_s()
        loop_until(lambda: time.monotonic() > idle_from + idle_s, idle_s + 10)
        idle_cpu = link_cpu_between(cpu_from, link_cpu_s()) / (time.monotonic() - idle_from)
        pongs = link.sent["pong"]
        inbox.close()
        peer_proc.terminate()
        peer_proc.wait(10)
        loop.stop()
        core.stop("end of benchmark")
    link.stop()
    sender.stop()
    player.stop()
    seen = json.loads(out.read_text())
    last_chunks, chunk_t = [], 0.0
    for kind, t in seen["seen"]:
        if kind == "audio-chunk":
            chunk_t = t
        elif kind == "audio-stop":
            last_chunks.append(chunk_t)
    if len(last_chunks) != UPLOADS or len(reply_started) != UPLOADS or pongs == 0:
        raise RuntimeError(f"the satellite benchmark lost track: {len(last_chunks)} uploads, "
                           f"{len(reply_started)} replies, {pongs} pongs")
    return {"press_to_last_chunk_s": [c - r for c, r in zip(last_chunks, released)],
            "reply_to_first_sample_s": [s - a for s, a in zip(reply_started, seen["replies"])],
            "idle_cpu_fraction": [idle_cpu]}


def run(repeats: int, say: Any, idle_s: float = 60.0) -> dict[str, Any]:
    say(f"satellite mode: {UPLOADS} uploads of {UTTERANCE_S:g} s and their replies, then {idle_s:g} s "
        f"of pings, {repeats} runs")
    found: dict[str, list[float]] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="guardd-bench-satellite-") as name:
            home = Path(name) / "home"
            home.mkdir()
            (home / ".asoundrc").write_text('pcm.!default { type plug slave.pcm { type file slave.pcm "null" '
                                            'file "/dev/null" format "raw" } }\n')
            # A process of its own: ALSA reads $HOME/.asoundrc once, when PortAudio starts.
            env = dict(os.environ, HOME=str(home), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
            subprocess.run([sys.executable, "-m", "benchmark.satellite", "measure", name, str(idle_s)],
                           env=env, check=True, timeout=UPLOADS * 40 + idle_s + 60)
            for key, values in json.loads((Path(name) / "satellite.json").read_text()).items():
                found.setdefault(key, []).extend(values)
    press = np.array(found["press_to_last_chunk_s"]) * 1000
    reply = np.array(found["reply_to_first_sample_s"]) * 1000
    return {
        "satellite_press_to_last_chunk_p50_ms": round(float(np.percentile(press, 50)), 1),
        "satellite_press_to_last_chunk_p95_ms": round(float(np.percentile(press, 95)), 1),
        "satellite_reply_to_first_sample_p50_ms": round(float(np.percentile(reply, 50)), 1),
        "satellite_reply_to_first_sample_p95_ms": round(float(np.percentile(reply, 95)), 1),
        "satellite_idle_cpu_pct": round(statistics.median(found["idle_cpu_fraction"]) * 100, 3),
    }


if __name__ == "__main__":
    if sys.argv[1] == "peer":
        peer(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        figures = measure(Path(sys.argv[2]), float(sys.argv[3]))
        (Path(sys.argv[2]) / "satellite.json").write_text(json.dumps(figures))
