#!/usr/bin/env python3
"""Soak: hours of mixed speech through the real pipeline, on audio time, as fast as the CPU allows.

The speech fixtures (corpus/fixtures.py) (wake-word utterances and long stretches of speech without
one) are looped in a seeded random order through the same pipeline `guardd run` uses: the wake
models, the endpointer, the audit log on real files, the gate with a real gpiozero Button on
MockFactory pins, and sends over HTTP to a real server on loopback. Each kept utterance asks to
be uploaded there (after_wake.upload_to); a simulated owner approves some requests with a short
press, denies some with a long one and lets the rest time out, and a simulated local client sends
messages now and then and sometimes goes away before anyone answers. Recordings are deleted by
the size rule and the log rotates, so deletions and segment changes happen too.

Every simulated `--sample-every-s` seconds it samples this process's resident memory (VmRSS) and
open file descriptors. At the end it verifies the log (hash chain and forward seals, with the
verification key) and checks the gate invariant on what the receiver got: every body that arrived
was approved, by a press, on its own sha256. It prints memory growth per hour, fd growth, counts
and the verdict, and exits 1 when a limit is broken.

    python scripts/soak.py --hours 3
    python scripts/soak.py --hours 0.1 --sample-every-s 60 --json   # what tests/test_soak.py runs
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from corpus import fixtures

FRAME_S = 0.08
MAX_MB_PER_HOUR = 5.0  # the limit for memory growth


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
        digests = self.digests = []

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


def soak(hours: float, *, sample_every_s: float = 600.0, seed: int = 7, state_dir: Path | None = None,
         quiet: bool = False) -> dict[str, Any]:
    from gpiozero.pins.mock import MockFactory

    from guardd.listen.microphone import read_wav_frames
    from guardd.auditlog.reading import read_records
    from guardd.auditlog.format import segment_paths
    from guardd.auditlog.verify import verify
    from guardd.errors import Refused
    from guardd.config.settings import (AfterWakeConfig, Config, ConfirmConfig, DestinationConfig, LogConfig,
                               RetentionConfig)
    from guardd.confirm.outbox import Caller
    from guardd.pipeline import open_pipeline

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    rng = random.Random(seed)
    frames_by_file: dict[Path, list[bytes]] = {}
    passes = playlist(rng)
    for path in passes:
        frames_by_file[path] = list(read_wav_frames(path))
    receiver = Receiver()
    own_dir = state_dir is None
    base = Path(tempfile.mkdtemp(prefix="guardd-soak-")) if state_dir is None else state_dir
    confirm = ConfirmConfig(timeout_s=8.0, long_press_s=2.0)
    config = Config(
        state_dir=str(base / "state"),
        destinations=(DestinationConfig(url=receiver.url, name="inbox"),),
        after_wake=AfterWakeConfig(upload_to="inbox"),
        confirm=confirm,
        # The age rule reads file mtimes (real time), which a soak on audio time outruns, so the
        # size rule does the deleting here: it keeps about fifteen utterances.
        retention=RetentionConfig(max_age_h=24.0, max_total_mb=2.0),
        log=LogConfig(segment_max_bytes=65536, max_segments=10_000),  # rotates; keeps all, for the check
    )
    t = [0.0]
    wall0 = time.time()
    actions: list[tuple[float, bool]] = []  # (time, pressed) the simulated owner will do
    counts: Counter[str] = Counter()
    replies: dict[int, list[dict[str, Any]]] = {}
    leds: Counter[str] = Counter()
    me = Caller(os.getuid(), os.getpid(), "soak client")

    def owner_reacts(request_t: float) -> None:
        """A person looks at the blinking LED: press (approve), hold (deny), or not at all."""
        roll = rng.random()
        if roll < 0.5:
            down = request_t + rng.uniform(0.3, confirm.timeout_s - 1.0)
            actions.extend([(down, True), (down + rng.uniform(0.08, 0.4), False)])
            counts["owner presses"] += 1
        elif roll < 0.6:
            down = request_t + rng.uniform(0.3, 3.0)
            actions.extend([(down, True), (down + confirm.long_press_s + 0.5, False)])
            counts["owner long presses"] += 1
        else:
            counts["owner ignores"] += 1
        actions.sort()

    def emit(event: dict[str, Any]) -> None:
        counts[f"event {event['event']}"] += 1
        if event["event"] == "request":
            owner_reacts(t[0])

    samples: list[dict[str, float]] = []
    started = time.monotonic()
    next_sample = 0.0
    next_client = 200.0
    next_stray_press = 90.0
    client_id = 0
    cancel_at: dict[int, float] = {}
    with open_pipeline(config, pin_factory=MockFactory(), clock=lambda: t[0],
                       emit=emit, wall_clock=lambda: wall0 + t[0],
                       on_show=lambda s: leds.update([s.name.lower()])) as p:
        core, pin = p.core, p.panel.button.pin
        key = p.auditlog.verification_key
        core.start(mode="soak")
        end_t = hours * 3600.0
        stream = (f for i in range(10**6) for path in passes for f in frames_by_file[path])
        for frame in stream:
            if t[0] >= end_t:
                break
            while actions and actions[0][0] <= t[0]:
                _, pressed = actions.pop(0)
                (pin.drive_low if pressed else pin.drive_high)()
            p.inputs.drain(core)
            if t[0] >= next_client:  # a local program asks to send a message
                next_client = t[0] + rng.uniform(120, 600)
                client_id += 1
                replies[client_id] = got = []
                try:
                    core.submit("message", "inbox", f"note {client_id} at {t[0]:.1f}".encode(), me,
                                reply=got.append, client=client_id)
                    counts["client submits"] += 1
                    if rng.random() < 0.2:
                        cancel_at[client_id] = t[0] + rng.uniform(0.5, 5.0)
                except Refused as exc:
                    counts[f"client refused {exc.code}"] += 1
            for cid, when in list(cancel_at.items()):
                if when <= t[0]:
                    del cancel_at[cid]
                    core.cancel_client(cid)
                    counts["client hangs up"] += 1
            for cid in [c for c, r in replies.items() if r and r[-1]["status"] in ("denied", "sent", "failed")]:
                counts[f"client final {replies.pop(cid)[-1]['status']}"] += 1
            if t[0] >= next_stray_press and not core.busy:  # a press with nothing asking
                next_stray_press = t[0] + rng.uniform(60, 400)
                actions.extend([(t[0] + 0.01, True), (t[0] + 0.2, False)])
                actions.sort()
                counts["stray presses"] += 1
            t[0] = round(t[0] + FRAME_S, 6)
            core.on_audio(frame)
            p.inputs.drain(core)
            core.tick()
            p.inputs.drain(core)
            if t[0] >= next_sample:
                next_sample += sample_every_s
                sample = {"t_s": round(t[0]), "rss_mb": rss_kib() / 1024, "fds": open_fds(),
                          "wall_s": round(time.monotonic() - started, 1)}
                samples.append(sample)
                say(f"soak: {t[0] / 60:6.1f} min  rss {sample['rss_mb']:7.1f} MB  fds {sample['fds']:3d}  "
                    f"wakes {counts['event wake']:4d}  sends {counts['event sent']:4d}  "
                    f"({sample['wall_s']:.0f} s wall)")
        # Let what is pending finish on silence, as replay does, then stop.
        silence = bytes(len(frames_by_file[passes[0]][0]))
        while core.recording or core.busy or actions:
            while actions and actions[0][0] <= t[0]:
                _, pressed = actions.pop(0)
                (pin.drive_low if pressed else pin.drive_high)()
            p.inputs.drain(core)
            t[0] = round(t[0] + FRAME_S, 6)
            core.on_audio(silence)
            p.inputs.drain(core)
            core.tick()
            p.inputs.drain(core)
        final = {"t_s": round(t[0]), "rss_mb": rss_kib() / 1024, "fds": open_fds(),
                 "wall_s": round(time.monotonic() - started, 1)}
        led_at_end = p.panel.state
        core.stop("end of soak")
    receiver.close()

    log_dir = base / "state" / "log"
    records = list(read_records(log_dir))
    checked, problems = verify(log_dir, keys=[key] if key else [])
    gate_problems = gate_invariant(records, receiver.digests)
    by_type = Counter(str(r["type"]) for r in records)
    decisions = [r for r in records if r["type"] == "decision"]
    # Memory: from the first sample after warm-up (the models' arenas fill during the first
    # minutes) to the last one; fds from the first sample to the end.
    warm = samples[1] if len(samples) > 2 else samples[0]
    span_h = max((final["t_s"] - warm["t_s"]) / 3600.0, 1e-9)
    summary = {
        "simulated_hours": round(t[0] / 3600.0, 3),
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
        "received": len(receiver.digests),
        "deleted": Counter(str(r["reason"]) for r in records if r["type"] == "deleted"),
        "log_records": checked,
        "log_segments": len(segment_paths(log_dir)),
        "verify_problems": [str(x) for x in problems],
        "gate_problems": gate_problems,
        "led_at_end": led_at_end.name.lower() if led_at_end else None,
        "led_changes": dict(leds),
        "driver": dict(counts),
        "samples": samples,
    }
    if own_dir:
        shutil.rmtree(base, ignore_errors=True)
    return summary


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=3.0, help="simulated hours of audio (default 3)")
    parser.add_argument("--sample-every-s", type=float, default=600.0,
                        help="simulated seconds between memory and fd samples (default 600)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--state-dir", type=Path, help="keep the state here (default: a temp dir, removed)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parser.parse_args(argv)
    summary = soak(args.hours, sample_every_s=args.sample_every_s, seed=args.seed, state_dir=args.state_dir,
                   quiet=args.json)
    failures = []
    if summary["simulated_hours"] >= 1 and summary["mb_per_hour"] > MAX_MB_PER_HOUR:
        failures.append(f"memory grew {summary['mb_per_hour']} MB/h (limit {MAX_MB_PER_HOUR})")
    if summary["fd_growth"] > 0:
        failures.append(f"{summary['fd_growth']} more file descriptors open at the end")
    if summary["verify_problems"]:
        failures.append(f"the log does not verify: {summary['verify_problems'][:3]}")
    if summary["gate_problems"]:
        failures.append(f"gate invariant: {summary['gate_problems'][:3]}")
    summary["failures"] = failures
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        s = summary
        print(f"simulated {s['simulated_hours']} h of audio in {s['wall_seconds']:.0f} s")
        print(f"memory: {s['rss_start_mb']} MB after warm-up -> {s['rss_end_mb']} MB at the end "
              f"(peak {s['rss_peak_mb']} MB): {s['mb_per_hour']:+.2f} MB/h")
        print(f"file descriptors: {s['fd_start']} -> {s['fd_end']} ({s['fd_growth']:+d})")
        print(f"wakes {s['wakes']}, utterances {s['utterances']}, requests {s['requests']}, "
              f"approvals {s['approvals']}, denials {sum(s['denials'].values())} {dict(s['denials'])}, "
              f"sends {s['sends']}, received {s['received']}, recordings deleted {dict(s['deleted'])}")
        print(f"log: {s['log_records']} records in {s['log_segments']} segments, "
              f"verify: {'ok' if not s['verify_problems'] else s['verify_problems'][:3]}; "
              f"gate invariant: {'ok' if not s['gate_problems'] else s['gate_problems'][:3]}")
        for failure in failures:
            print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
