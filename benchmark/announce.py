"""What the announcements cost, each measured in processes of their own:

- the speech engines installed here (espeak-ng, and flite if present): time to the first byte of
  audio on their standard output, CPU and peak memory per sentence, over guardd's own sentences;
- request armed to first announced sample: `guardd`'s pipeline with the threaded player as `run`
  has it, through sounddevice and PortAudio to an ALSA file PCM (so the figure is the same on a
  machine with no sound card), one message request after another; the time from the submit
  (its `request` and `announce` records written and synced) to the first sample of *its*
  announcement reaching the output (its write plus the stream's reported latency). Each request
  is cancelled once it plays, so the next one arms while the denied tone plays, and cuts it;
- guardd's own peak memory with announcements (speech, played) against the same run with
  nothing spoken or played (no engine, announce.output none). The engine runs in a process of
  its own, reported apart.

`python -m benchmark.announce MODE N OUT` is the measured process: MODE "on" or "off".
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.processes import peak_rss_of
from guardd.speak.sentence import message_sentence, upload_sentence

REQUESTS = 20  # announced requests per run of the measured process

TEXTS = [b"dinner is ready", b"I'll be home at seven, can you feed the cat?",
         b"Remind me to call the plumber about the leak under the sink tomorrow morning before work. "
         b"And ask whether he can also look at the tap in the bathroom, which drips all night long."]


def _wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(bytes(2 * int(seconds * 16000)))
    return out.getvalue()


def sentences() -> list[str]:
    """guardd's own sentences, each part as the engine is given it (the lead, then the rest)."""
    said = [message_sentence("kitchen tablet", text, True) for text in TEXTS]
    said.append(upload_sentence("assistant", _wav(4.2), playback=False, content_type="audio/wav", kept=True)[0])
    return [part for sentence in said for part in sentence]


ENGINES = {  # the command that writes a sentence's WAV to standard output
    "espeak-ng": lambda text: ["espeak-ng", "--stdout", "-v", "en-us", "-s", "160", text],
    "flite": lambda text: ["flite", "-t", text, "-o", "/dev/stdout"],
}


def first_audio_s(cmd: list[str]) -> float:
    """Seconds from spawning `cmd` to its first bytes of audio after a 44-byte WAV header."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    got, first = 0, None
    while chunk := proc.stdout.read1(65536):
        got += len(chunk)
        if first is None and got > 44:
            first = time.monotonic() - started
    proc.wait()
    if first is None:
        raise RuntimeError(f"{cmd[0]} wrote no audio")
    return first


def engines(repeats: int) -> dict[str, dict[str, float]]:
    """Each installed engine's medians over guardd's sentences: first audio, CPU, peak memory."""
    found = {}
    for name, command in ENGINES.items():
        if shutil.which(name) is None:
            continue
        firsts, cpus, rsss = [], [], []
        for _ in range(repeats):
            for text in sentences():
                firsts.append(first_audio_s(command(text)))
                rss, cpu = peak_rss_of([shutil.which(name) or name, *command(text)[1:]])
                cpus.append(cpu)
                rsss.append(rss)
        found[name] = {"first_audio_ms": round(statistics.median(firsts) * 1000, 1),
                       "cpu_ms_per_sentence": round(statistics.median(cpus) * 1000, 1),
                       "peak_rss_mb": round(max(rsss), 1)}
    return found


def measured(mode: str, n: int, out: Path) -> None:
    """The measured process: n message requests, each armed, announced (begun) and cancelled."""
    from gpiozero.pins.mock import MockFactory

    from guardd.config.settings import AnnounceConfig, Config, DestinationConfig
    from guardd.confirm.outbox import Caller
    from guardd.pipeline import open_pipeline, speaker_output
    from guardd.sounddevices import import_sounddevice
    from guardd.speak.player import Played, Player, Playing
    from guardd.speak.voice import find_voice

    sd = import_sounddevice()  # PortAudio and ALSA loaded, as `run` has them for the microphone
    with sd.RawOutputStream(samplerate=22050, channels=1, dtype="int16"):
        pass
    state = out.parent / f"state-{mode}"
    config = Config(state_dir=str(state), announce=AnnounceConfig(output="device" if mode == "on" else "none"),
                    destinations=(DestinationConfig(url="http://127.0.0.1:9/", name="inbox", label="kitchen tablet"),))
    news: queue.Queue[Any] = queue.Queue()
    player = Player(speaker_output(config), config.announce.volume, find_voice() if mode == "on" else None, news.put)
    player.start()
    me = Caller(os.getuid(), os.getpid(), "benchmark")
    latencies = []
    with open_pipeline(config, pin_factory=MockFactory(), clock=time.monotonic, on_edge=lambda e: None,
                       emit=lambda e: None, speaker=player, blink_thread=False) as p:
        core = p.core
        core.start(mode="bench")

        def until(kind: type, request_id: str) -> Any:
            while True:
                item = news.get(timeout=30)
                core.take(item)
                if isinstance(item, kind) and item.request_id == request_id:
                    return item

        for i in range(n):
            armed = time.monotonic()
            request = core.submit("message", "inbox", TEXTS[i % len(TEXTS)], me, client=i)
            latencies.append(until(Playing, request.id).started - armed)  # (not the tone before it)
            core.cancel_client(i)  # hushed: the next one is armed at once, and cuts the denied tone
            until(Played, request.id)
        core.stop("end of benchmark")
    player.stop()
    out.write_text(json.dumps({"latencies_s": latencies}))


def requests_run(mode: str, n: int, tmp: Path) -> tuple[list[float], float]:
    """(armed-to-first-sample latencies, peak RSS in MB) of one measured process."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text('pcm.!default { type plug slave.pcm { type file slave.pcm "null" '
                                    'file "/dev/null" format "raw" } }\n')
    out = tmp / f"{mode}.json"
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    saved = dict(os.environ)
    os.environ.update(env)  # peak_rss_of spawns with this process's environment
    try:
        rss, _ = peak_rss_of([sys.executable, "-m", "benchmark.announce", mode, str(n), str(out)])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return json.loads(out.read_text())["latencies_s"], rss


def run(repeats: int, say: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    say("speech engines: first audio, CPU and memory per sentence")
    result["speech_engines"] = engines(repeats)
    say(f"announcements: {REQUESTS} requests armed and announced, {repeats} runs, and the same unspoken")
    with tempfile.TemporaryDirectory(prefix="guardd-bench-announce-") as name:
        tmp = Path(name)
        lat, on, off = [], [], []
        for _ in range(repeats):
            got, rss = requests_run("on", REQUESTS, tmp)
            lat += got
            on.append(rss)
            off.append(requests_run("off", REQUESTS, tmp)[1])
    ms = np.array(lat) * 1000
    result["announce_first_sample_p50_ms"] = round(float(np.percentile(ms, 50)), 1)
    result["announce_first_sample_p95_ms"] = round(float(np.percentile(ms, 95)), 1)
    result["announce_first_sample_max_ms"] = round(float(ms.max()), 1)
    result["announce_peak_rss_mb"] = round(statistics.median(on), 1)
    result["unspoken_peak_rss_mb"] = round(statistics.median(off), 1)
    result["announce_rss_growth_mb"] = round(statistics.median(on) - statistics.median(off), 1)
    return result


if __name__ == "__main__":
    measured(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
