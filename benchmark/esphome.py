"""The ESPHome link on loopback, with Home Assistant's side in a process of its own: aioesphomeapi's
APIClient as Home Assistant's ESPHome integration runs it (connect with the key, device info and
entities, states, the voice assistant subscribed, its own keep-alive pings every 20 s).

`python -m benchmark.esphome [--idle-s 60] [--repeats 3] [--json]`. guardd's side is a process that
first imports what `guardd run` has loaded before the link starts (guardd's CLI, with hashlib
kept off OpenSSL as `run` does, the daemon's modules, numpy, onnxruntime, PortAudio's sounddevice,
zeroconf), so each figure is what the link adds to the daemon:

- import cost: RSS added by importing the link (aioesphomeapi's api_pb2 and protobuf, PyNaCl);
- peak RSS growth: the most the process's RSS rose (sampled every 20 ms) over its RSS before the
  link was imported, with the link on, a session connected and five uploads of 5 s made, and
  twenty connections come and gone (issue 30: at most 8 MB);
- handshake: the client's connect (TCP, Noise handshake, hello) and guardd's CPU per handshake;
- upload: a 5 s utterance from link.upload's call to the client's receipt of its end (the link's
  share of issue 30's press-to-last-frame target of 100 ms);
- idle cost: the process's CPU time over `idle_s` while the client only pings, as a share of one core
  (issue 30: under 0.1 %).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

UPLOADS = 5
UTTERANCE_S = 5.0
HANDSHAKES = 20


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def cpu_s() -> float:
    """This process's CPU time, user and system, from /proc."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- Home Assistant's side ----------------------------------------------------------------------


async def home_assistant(port: int, key: str, out: Path, idle_s: float) -> None:
    from aioesphomeapi import APIClient

    connects = []
    for _ in range(HANDSHAKES):  # Home Assistant's own short connections (adding, re-authenticating)
        client = APIClient("127.0.0.1", port, None, noise_psk=key, client_info="benchmark")
        began = time.perf_counter()
        await client.connect(login=True)
        connects.append(time.perf_counter() - began)
        await client.disconnect()
    client = APIClient("127.0.0.1", port, None, noise_psk=key, client_info="benchmark")  # keepalive 20 s
    await client.connect(login=True)
    await client.device_info_and_list_entities()
    client.subscribe_states(lambda state: None)
    ends: list[float] = []
    received: list[int] = []

    async def start(*_: Any) -> int:
        received.append(0)
        return 0

    async def stop(abort: bool) -> None:
        ends.append(time.monotonic())

    async def audio(data: bytes, _: bytes | None) -> None:
        received[-1] += len(data)

    client.subscribe_voice_assistant(handle_start=start, handle_stop=stop, handle_audio=audio)
    (out / "ready").write_text("")
    while len(ends) < UPLOADS:
        await asyncio.sleep(0.01)
    await asyncio.sleep(idle_s + 5)  # guardd measures its idle cost meanwhile
    (out / "client.json").write_text(json.dumps({"connects": connects, "ends": ends, "received": received}))
    await client.disconnect()


# -- guardd's side ------------------------------------------------------------------------------


def measure(tmp: Path, idle_s: float) -> dict[str, Any]:
    import guardd.cli.main  # noqa: F401 - first, as in `guardd run`: hashlib without OpenSSL
    import guardd.cli.daemon  # noqa: F401 - the daemon's own modules
    import numpy
    import onnxruntime  # noqa: F401 - what `guardd run` has loaded before the link starts
    import sounddevice  # noqa: F401
    import zeroconf  # noqa: F401

    from guardd.esphome.keys import new_key

    rss_before = status_kb("VmRSS")
    peak = [rss_before]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.02):
            peak[0] = max(peak[0], status_kb("VmRSS"))

    threading.Thread(target=sample, daemon=True).start()
    from guardd.esphome.device import Identity, local_mac
    from guardd.esphome.link import EsphomeLink

    imported = status_kb("VmRSS") - rss_before
    key = new_key()
    import base64

    link = EsphomeLink("127.0.0.1", 0, base64.b64decode(key), Identity("bench", local_mac("bench"), ("alexa",)),
                       (), lambda item: None)
    link.start()
    cpu_before = cpu_s()
    client = subprocess.Popen([sys.executable, "-m", "benchmark.esphome", "client", str(link.port), key,
                               str(tmp), str(idle_s)])
    try:
        deadline = time.monotonic() + 120
        while not (tmp / "ready").exists() or not link.ready:
            if time.monotonic() > deadline or client.poll() is not None:
                raise RuntimeError("the client never subscribed")
            time.sleep(0.05)
        handshake_cpu = (cpu_s() - cpu_before) / (HANDSHAKES + 1)  # (an upper bound: it includes the hellos)
        pcm = (numpy.sin(numpy.arange(int(UTTERANCE_S * 16000)) * 0.05) * 3000).astype("<i2").tobytes()
        sha256 = hashlib.sha256(pcm).hexdigest()
        called = []
        for _ in range(UPLOADS):
            called.append(time.monotonic())
            sent, error = link.upload("bench", pcm, sha256, 10.0)
            if error or sent != len(pcm):
                raise RuntimeError(f"an upload failed: {error}")
            time.sleep(0.5)
        time.sleep(2.0)
        sampling.set()  # (the sampler's own reads of /proc would count as the link's)
        time.sleep(0.1)
        idle_from, cpu_from = time.monotonic(), cpu_s()
        time.sleep(idle_s)
        idle = (cpu_s() - cpu_from) / (time.monotonic() - idle_from)
        peak[0] = max(peak[0], status_kb("VmRSS"))
        pings = link.status()["received"].get("PingRequest", 0)
        client.wait(idle_s + 60)
    finally:
        if client.poll() is None:
            client.kill()
        link.stop()
    seen = json.loads((tmp / "client.json").read_text())
    if seen["received"] != [len(pcm)] * UPLOADS:
        raise RuntimeError(f"the client did not receive every upload whole: {seen['received']}")
    return {"import_mb": imported / 1024, "peak_growth_mb": (peak[0] - rss_before) / 1024,
            "connect_s": seen["connects"], "handshake_cpu_s": handshake_cpu,
            "upload_s": [end - call for end, call in zip(seen["ends"], called)],
            "idle_cpu_fraction": idle, "pings_while_idle": pings}


def run(repeats: int, idle_s: float) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="guardd-bench-esphome-") as name:
            env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
            subprocess.run([sys.executable, "-m", "benchmark.esphome", "measure", name, str(idle_s)],
                           env=env, check=True, timeout=idle_s + 300)
            found.append(json.loads((Path(name) / "esphome.json").read_text()))
    connects = [c for f in found for c in f["connect_s"]]
    uploads = [u for f in found for u in f["upload_s"]]
    return {
        "esphome_import_mb": round(statistics.median(f["import_mb"] for f in found), 1),
        "esphome_peak_rss_growth_mb": round(statistics.median(f["peak_growth_mb"] for f in found), 1),
        "esphome_connect_p50_ms": round(statistics.median(connects) * 1000, 1),
        "esphome_handshake_cpu_ms": round(statistics.median(f["handshake_cpu_s"] for f in found) * 1000, 2),
        "esphome_upload_5s_p50_ms": round(statistics.median(uploads) * 1000, 1),
        "esphome_upload_5s_max_ms": round(max(uploads) * 1000, 1),
        "esphome_idle_cpu_pct": round(statistics.median(f["idle_cpu_fraction"] for f in found) * 100, 4),
        "esphome_idle_s": idle_s,
        "esphome_pings_while_idle": min(f["pings_while_idle"] for f in found),
        "runs": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.esphome", description=__doc__.splitlines()[0])
    parser.add_argument("--idle-s", type=float, default=60.0, help="seconds of idle link measured (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs; medians are reported (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    from benchmark.machine import machine

    figures = {"machine": machine(), **run(args.repeats, args.idle_s)}
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        asyncio.run(home_assistant(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), float(sys.argv[5])))
    elif len(sys.argv) > 1 and sys.argv[1] == "measure":
        result = measure(Path(sys.argv[2]), float(sys.argv[3]))
        (Path(sys.argv[2]) / "esphome.json").write_text(json.dumps(result))
    else:
        raise SystemExit(main())
