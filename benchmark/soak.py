"""The soak's run: hours of the speech fixtures through the real pipeline on audio time, with a
simulated owner at the button and a local client that sends messages and sometimes hangs up;
then what the log and the receiver say about it. scripts/soak.py is the command and its verdict.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

from gpiozero.pins.mock import MockFactory

from benchmark.people import LocalClient, Owner
from corpus import fixtures
from guardd.auditlog.format import segment_paths
from guardd.auditlog.reading import read_records
from guardd.auditlog.verify import verify
from guardd.config.settings import (
    AfterWakeConfig, AnnounceConfig, Config, ConfirmConfig, DestinationConfig, LogConfig, RetentionConfig,
)
from guardd.device.panel import ENDING_S
from guardd.listen.microphone import read_wav_frames
from guardd.pipeline import open_pipeline

FRAME_S = 0.08


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Receiver:
    """A destination on loopback that keeps only the sha256 of each body (a soak must not grow)."""

    def __init__(self) -> None:
        digests: list[str] = []
        self.digests = digests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                digests.append(hashlib.sha256(body).hexdigest())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"text":"heard you"}')

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/in"
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def playlist(rng: random.Random) -> list[Path]:
    """One pass over every fixture: the negatives in a random order, positives sprinkled between."""
    audio = fixtures.make_speech()
    manifest = json.loads((audio / "manifest.json").read_text())
    negatives = [audio / n["file"] for n in manifest["negatives"]]
    positives = [audio / p["file"] for p in manifest["positives"]]
    rng.shuffle(negatives)
    rng.shuffle(positives)
    order: list[Path] = []
    per = max(1, len(positives) // max(1, len(negatives)))
    for i, neg in enumerate(negatives):
        order.append(neg)
        order.extend(positives[i * per:(i + 1) * per])
    order.extend(positives[len(negatives) * per:])
    return order


def soak_config(base: Path, url: str) -> Config:
    return Config(
        state_dir=str(base / "state"),
        destinations=(DestinationConfig(url=url, name="inbox"),),
        after_wake=AfterWakeConfig(upload_to="inbox"),
        confirm=ConfirmConfig(timeout_s=8.0, long_press_s=2.0),
        # The age rule reads file mtimes (real time), which a soak on audio time outruns, so the
        # size rule does the deleting here: it keeps about fifteen utterances.
        retention=RetentionConfig(max_age_h=24.0, max_total_mb=2.0),
        log=LogConfig(segment_max_bytes=65536, max_segments=10_000),  # rotates; keeps all, for the check
        announce=AnnounceConfig(output="none"),  # each request announced (and timed) on audio time
    )


def sample(t: float, started: float) -> dict[str, float]:
    return {"t_s": round(t), "rss_mb": rss_kib() / 1024, "fds": open_fds(),
            "wall_s": round(time.monotonic() - started, 1)}


def soak(hours: float, *, sample_every_s: float = 600.0, seed: int = 7, state_dir: Path | None = None,
         say: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    rng = random.Random(seed)
    passes = playlist(rng)
    frames_by_file = {path: list(read_wav_frames(path)) for path in passes}
    receiver = Receiver()
    base = Path(tempfile.mkdtemp(prefix="guardd-soak-")) if state_dir is None else state_dir
    config = soak_config(base, receiver.url)
    t = [0.0]
    wall0 = time.time()
    counts: Counter[str] = Counter()
    leds: Counter[str] = Counter()
    owner = Owner(rng, config.confirm, counts)
    client = LocalClient(rng, counts)

    def emit(event: dict[str, Any]) -> None:
        counts[f"event {event['event']}"] += 1
        if event["event"] == "request":
            owner.sees_request(t[0])

    samples: list[dict[str, float]] = []
    started = time.monotonic()
    next_sample = 0.0
    with open_pipeline(config, pin_factory=MockFactory(), clock=lambda: t[0], emit=emit,
                       wall_clock=lambda: wall0 + t[0], on_show=lambda s: leds.update([s.name.lower()]),
                       blink_thread=False) as p:
        core, pin = p.core, p.panel.button.pin
        key = p.auditlog.verification_key
        core.start(mode="soak")

        def one_frame(frame: bytes) -> None:
            owner.act(t[0], pin)
            p.inputs.drain(core)
            t[0] = round(t[0] + FRAME_S, 6)
            core.on_audio(frame)
            p.inputs.drain(core)
            core.tick()
            p.inputs.drain(core)

        for frame in _looped(passes, frames_by_file):
            if t[0] >= hours * 3600.0:
                break
            owner.act(t[0], pin)
            p.inputs.drain(core)
            client.step(t[0], core)
            owner.idle(t[0], core.broker.busy)
            one_frame(frame)
            if t[0] >= next_sample:
                next_sample += sample_every_s
                samples.append(sample(t[0], started))
                say(f"soak: {t[0] / 60:6.1f} min  rss {samples[-1]['rss_mb']:7.1f} MB  fds {samples[-1]['fds']:3d}  "
                    f"wakes {counts['event wake']:4d}  sends {counts['event sent']:4d}  "
                    f"({samples[-1]['wall_s']:.0f} s wall)")
        # Let what is pending finish on silence, as replay does, then stop.
        silence = bytes(len(frames_by_file[passes[0]][0]))
        while core.recording or core.broker.busy or not owner.done:
            one_frame(silence)
        settled = t[0] + ENDING_S  # the LED's ending of the last request runs out
        while t[0] < settled:
            one_frame(silence)
        final = sample(t[0], started)
        led_at_end = p.panel.state
        core.stop("end of soak")
    receiver.close()
    summary = summarize(base / "state" / "log", key, receiver.digests, samples, final)
    summary.update({
        "simulated_hours": round(t[0] / 3600.0, 3),
        "led_at_end": led_at_end.name.lower() if led_at_end else None,
        "led_changes": dict(leds),
        "driver": dict(counts),
    })
    if state_dir is None:
        shutil.rmtree(base, ignore_errors=True)
    return summary


def _looped(passes: list[Path], frames_by_file: dict[Path, list[bytes]]) -> Iterator[bytes]:
    while True:
        for path in passes:
            yield from frames_by_file[path]


def summarize(log_dir: Path, key: str | None, received: list[str], samples: list[dict[str, float]],
              final: dict[str, float]) -> dict[str, Any]:
    """What the log, the receiver and the samples say about a run."""
    records = list(read_records(log_dir))
    checked, problems = verify(log_dir, keys=[key] if key else [])
    by_type = Counter(str(r["type"]) for r in records)
    decisions = [r for r in records if r["type"] == "decision"]
    # Memory: from the first sample after warm-up (the models' arenas fill during the first
    # minutes) to the last one; fds from the first sample to the end.
    warm = samples[1] if len(samples) > 2 else samples[0]
    span_h = max((final["t_s"] - warm["t_s"]) / 3600.0, 1e-9)
    return {
        "wall_seconds": final["wall_s"],
        "rss_start_mb": round(warm["rss_mb"], 1),
        "rss_end_mb": round(final["rss_mb"], 1),
        "rss_peak_mb": round(max(s["rss_mb"] for s in [*samples, final]), 1),
        "mb_per_hour": round((final["rss_mb"] - warm["rss_mb"]) / span_h, 2),
        "fd_start": samples[0]["fds"],
        "fd_end": final["fds"],
        "fd_growth": final["fds"] - samples[0]["fds"],
        "wakes": by_type["wake"],
        "utterances": by_type["utterance"],
        "requests": by_type["request"],
        "approvals": sum(1 for d in decisions if d["decision"] == "approved"),
        "denials": Counter(str(d["reason"]) for d in decisions if d["decision"] == "denied"),
        "sends": by_type["sent"],
        "received": len(received),
        "deleted": Counter(str(r["reason"]) for r in records if r["type"] == "deleted"),
        "log_records": checked,
        "log_segments": len(segment_paths(log_dir)),
        "verify_problems": [str(x) for x in problems],
        "gate_problems": gate_invariant(records, received),
        "samples": samples,
    }


def gate_invariant(records: list[dict[str, Any]], received: list[str]) -> list[str]:
    """Promise 1 over a whole run's log: each `send` follows an approval by a press of the same
    request, each request's hash is the one sent, and the receiver got exactly the approved
    hashes, in order. (The fuzz tests check the freshness of the press on the gate itself.)"""
    problems: list[str] = []
    requests: dict[str, dict[str, Any]] = {}
    approved: set[str] = set()
    sent_hashes: list[str] = []
    for r in records:
        kind, rid = r["type"], str(r.get("id"))
        if kind == "request":
            requests[rid] = r
        elif kind == "decision" and r["decision"] == "approved":
            if rid not in requests or r["reason"] != "pressed":
                problems.append(f"{rid}: approved without a request or a press ({r['reason']})")
            approved.add(rid)
        elif kind == "send":
            if rid not in approved:
                problems.append(f"{rid}: send without an approval before it")
            elif r["sha256"] != requests[rid]["sha256"]:
                problems.append(f"{rid}: send of another hash than the request's")
        elif kind == "sent" and r["delivered"]:
            sent_hashes.append(requests[rid]["sha256"])
    if sent_hashes != received:
        problems.append(f"the receiver got {len(received)} bodies; the log says {len(sent_hashes)} were delivered "
                        "(or their hashes differ)")
    return problems
