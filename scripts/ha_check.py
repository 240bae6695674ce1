#!/usr/bin/env python3
"""Satellite mode against a real Home Assistant: every promise of issues 27 and 28 that a real
Home Assistant Core can check, run with shared/ha-real (its README says how it is built).

Not part of the test suite (it needs root, a Home Assistant built once in a Debian root, and
about 10 minutes): run it by hand, as root, after a change to satellite mode:

    sudo .venv/bin/python scripts/ha_check.py                  # guardd from this checkout
    sudo .venv/bin/python scripts/ha_check.py --idle-s 600     # a longer idle window
    sudo .venv/bin/python scripts/ha_check.py --root /tmp/ha/root-trixie --guardd /opt/gvenv/bin/guardd
                                                               # guardd on Python 3.13 (setup.sh --with-trixie)
    sudo .venv/bin/python scripts/ha_check.py --esphome [--install-esphome]
                                                               # the encrypted link (ha_check_esphome.py)

It starts Home Assistant (up.sh; HA_RUN, HA_PORT, STT_PORT and TTS_PORT are passed on, so a
Home Assistant of its own can be used), a fresh guardd (guardd_start.sh), adds guardd as a
satellite, then checks, printing each check and what was seen: a fresh install starts muted and
the long press unmutes it; the link's uptime over an idle window with Home Assistant's describe
polls (and how many records the idle link wrote); presses at arbitrary moments (Home Assistant's
speech-to-text got exactly the approved bytes, the reply played byte for byte); an announcement;
a pipeline error (an empty transcript.txt); the mute switch both ways; Home Assistant restarted
(kill, up.sh) and its entry reloaded (ha.py reload); the owner's mute through all of that;
timers set by Home Assistant's conversation API as if said to the satellite (one rings and a
press silences it, one is cancelled, one is paused and resumed, one rings until it times out,
about 6 minutes); and what the log, the LED (run.err), the speaker (played.raw), `status` and
Home Assistant each said. Exit 0 when every check passed. `--steps timers` runs only some steps.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
HA_REAL = Path("/work/shared/ha-real")
RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, seen: str = "") -> bool:
    RESULTS.append((name, ok, seen))
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"\n      {seen}" if seen else ""), flush=True)
    return ok


def wait(condition: Callable[[], Any], timeout_s: float, step_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return bool(condition())


class Partner:
    """The real Home Assistant, through shared/ha-real's scripts."""

    def __init__(self, ha_real: Path) -> None:
        self.dir = ha_real
        self.run_dir = Path(os.environ.get("HA_RUN", "/tmp/ha/run"))

    def sh(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.dir / args[0]), *args[1:]], cwd=self.dir, capture_output=True,
                              text=True, timeout=timeout)

    def ha(self, *args: str) -> Any:
        done = self.sh("ha.py", *args, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ha.py {' '.join(args)}: {done.stderr.strip()[-300:]}")
        return json.loads(done.stdout)

    def state(self, entity: str) -> str | None:
        return self.ha("states", entity).get(entity)

    def log_size(self) -> int:
        path = self.run_dir / "config" / "home-assistant.log"
        return path.stat().st_size if path.exists() else 0

    def log_since(self, offset: int) -> str:
        with open(self.run_dir / "config" / "home-assistant.log", "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def stop_hass(self) -> None:
        """Home Assistant stopped as a restart stops it (SIGTERM: it shuts down and pauses the satellite)."""
        pid = int((self.run_dir / "homeassistant.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        wait(lambda: not Path(f"/proc/{pid}").exists(), 60)

    def last_line(self, name: str) -> dict[str, Any]:
        lines = (self.run_dir / "standins" / name).read_text().splitlines()
        return json.loads(lines[-1]) if lines else {}

    def spoken(self) -> set[str]:
        """The SHA-256 of everything the TTS stand-in ever sent (Home Assistant caches what it
        said: the same answer twice is synthesized once)."""
        path = self.run_dir / "standins" / "tts.jsonl"
        return {json.loads(line)["sha256"] for line in path.read_text().splitlines()} if path.exists() else set()

    def lines(self, name: str) -> int:
        path = self.run_dir / "standins" / name
        return len(path.read_text().splitlines()) if path.exists() else 0


class Guardd:
    """guardd as guardd_start.sh runs it (--simulate: the LED drawn in run.err, presses from a FIFO)."""

    def __init__(self, partner: Partner, program: str, folder: Path, port: int, name: str, root: str | None) -> None:
        self.partner = partner
        self.program = program
        self.dir = folder
        self.port = port
        self.name = name
        self.root = root

    def start(self) -> None:
        args = ["guardd_start.sh", self.program, str(self.dir), "--port", str(self.port), "--name", self.name, "--fresh"]
        if self.root:
            args += ["--root", self.root]
        done = self.partner.sh(*args, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"guardd_start.sh failed: {done.stdout[-500:]}{done.stderr[-500:]}")
        config = yaml.safe_load((self.dir / "guardd.yaml").read_text())
        self.socket = config["socket"]["path"]

    def stop(self) -> None:
        self.partner.sh("guardd_start.sh", "--stop", str(self.dir), timeout=60)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [self.program, *args, "--config", str(self.dir / "guardd.yaml")]
        if self.root:
            command = [str(self.partner.dir / "in_root.sh"), self.root, *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def status(self) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.socket)
            s.sendall(b'{"call": "status"}\n')
            return json.loads(s.makefile("rb").readline())

    def records(self, after_seq: int = 0) -> list[dict[str, Any]]:
        done = self.cli("log", "--json")
        return [r for r in map(json.loads, done.stdout.splitlines()) if r["seq"] > after_seq]

    def last_seq(self) -> int:
        records = self.records()
        return records[-1]["seq"] if records else 0

    def console(self) -> str:
        return (self.dir / "run.err").read_text(errors="replace")

    def press(self, line: str = "") -> None:
        with open(self.dir / "press", "w") as f:
            f.write(line + "\n")

    def say(self, text: str) -> None:
        raw, wav = self.dir / "say_raw.wav", self.dir / "say.wav"
        subprocess.run(["espeak-ng", "-v", "en-gb-x-rp", "-s", "150", "-w", str(raw), text], check=True)
        subprocess.run(["sox", "-q", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav), "pad", "1.5", "3"], check=True)
        tmp = self.dir / "queue" / f"{time.monotonic_ns()}.tmp"
        tmp.write_bytes(wav.read_bytes())
        tmp.rename(tmp.with_suffix(".wav"))


# -- the checks -----------------------------------------------------------------------------------


def fresh_install_is_muted(g: Guardd, p: Partner) -> None:
    state = g.status()
    check("a fresh install starts muted (the owner's hold), and Home Assistant's switch is off",
          state["owner_muted"] and not state["ha_paused"] and p.state(f"switch.{g.name}_mute") == "off",
          f"status muted={state['muted']} owner_muted={state['owner_muted']} ha_paused={state['ha_paused']}; "
          f"LED: {'muted' if 'muted: the microphone is closed' in g.console() else '?'}")
    g.press("hold 3.5")
    ok = wait(lambda: not g.status()["muted"], 15)
    check("the long press unmutes", ok, f"state {g.status()['state']}")


def idle_uptime(g: Guardd, p: Partner, idle_s: float) -> None:
    seq, polls, log_at = g.last_seq(), g.status()["wyoming"]["polls"], p.log_size()
    up = samples = 0
    started = time.monotonic()
    while time.monotonic() - started < idle_s:
        samples += 1
        up += bool(g.status()["wyoming"]["running"])
        time.sleep(1.0)
    records = g.records(seq)
    wyoming = g.status()["wyoming"]
    drops = p.log_since(log_at).count("Satellite disconnected")
    minutes = idle_s / 60
    check(f"the link stays up over {idle_s:g} s of idle with Home Assistant's polls",
          up == samples and drops == 0,
          f"up {100 * up / samples:.1f} % of {samples} samples; {wyoming['polls'] - polls} polls served; "
          f"Home Assistant logged {drops} 'Satellite disconnected'; satellite connection up {wyoming['connected_s']:g} s")
    check("an idle link writes next to nothing to the log", len(records) / minutes <= 1,
          f"{len(records)} records in {minutes:.1f} min ({', '.join(sorted({r['type'] for r in records})) or 'none'})")


def one_request(g: Guardd, p: Partner, what: str, transcript: str | None = None) -> dict[str, Any] | None:
    """Say the wake word and a question, press at an arbitrary moment while it asks; the
    request's records, or None when it never asked."""
    seq = g.last_seq()
    transcript_file = p.run_dir / "standins" / "transcript.txt"
    if transcript is not None:
        transcript_file.write_text(transcript)
    try:
        g.say(f"Hey Jarvis, {what}")
        asked = wait(lambda: any(r["type"] == "request" for r in g.records(seq)), 60, 0.5)
        if not asked:
            return None
        announced = re.findall(r" is announced \(([\d.]+) s", g.console())  # "(5.75 s; a press counts after 3.84 s)"
        duration = float(announced[-1]) if announced else 6.0
        time.sleep(duration + random.uniform(0.3, 6.0))  # an arbitrary moment, after the words
        g.press()
        wait(lambda: any(r["type"] == "pipeline" for r in g.records(seq)), 60, 0.5)
        time.sleep(2.0)
        return {"records": g.records(seq)}
    finally:
        if transcript is not None:
            transcript_file.unlink(missing_ok=True)


def presses(g: Guardd, p: Partner, count: int) -> None:
    for i in range(count):
        heard_before, spoke_before = p.lines("stt.jsonl"), p.lines("tts.jsonl")
        got = one_request(g, p, "what time is it?")
        if got is None:
            check(f"press {i + 1}: a request asked", False, "no request record within 60 s")
            continue
        records = got["records"]
        of = {t: [r for r in records if r["type"] == t] for t in ("request", "sent", "pipeline", "sound_end")}
        request, sent = of["request"][-1], (of["sent"] or [{}])[-1]
        stt = p.last_line("stt.jsonl") if p.lines("stt.jsonl") > heard_before else {}
        tts = p.last_line("tts.jsonl") if p.lines("tts.jsonl") > spoke_before else {}
        replies = [r for r in of["sound_end"] if r["sound"].endswith("-reply")]
        check(f"press {i + 1}: delivered, Home Assistant heard exactly the approved bytes, the reply played byte for byte",
              sent.get("delivered") == 1 and stt.get("sha256") == request["sha256"]
              and bool(replies) and replies[-1]["audio_sha256"] in p.spoken()
              and of["pipeline"][-1]["result"] == "replied",
              f"request {request['id']} sha256 {request['sha256'][:16]}, STT heard {str(stt.get('sha256'))[:16]}; "
              f"sent delivered={sent.get('delivered')} error={sent.get('error')!r}; "
              f"pipeline {of['pipeline'][-1]['result'] if of['pipeline'] else 'none'}; "
              f"reply {replies[-1]['audio_sha256'][:16] if replies else 'none'} vs TTS "
              f"{str(tts.get('sha256'))[:16] if tts else 'none new (Home Assistant cached that answer)'}")
        line = f"request {request['id']} sent: Home Assistant took it"
        check(f"press {i + 1}: the console says it was sent (not 'send failed: no answer')", line in g.console(), line)


def pipeline_error(g: Guardd, p: Partner) -> None:
    console_at = len(g.console())
    got = one_request(g, p, "what time is it?", transcript="")
    records = got["records"] if got else []
    ends = [r for r in records if r["type"] == "pipeline"]
    request = next((r for r in records if r["type"] == "request"), {})
    said = g.console()[console_at:]
    told = f"request {request.get('id')}: Home Assistant took it but did not understand it (stt-no-text-recognized)"
    runs = p.ha("runs", "1")
    codes = [e.get("data", {}).get("code") for e in runs[-1]["events"] if e["type"] == "error"] if runs else []
    check("a pipeline Home Assistant ends with stt-no-text-recognized is logged, told, shown and heard as not understood",
          bool(ends) and ends[-1].get("code") == "stt-no-text-recognized" and told in said and "one glow" in said,
          f"pipeline record {({k: ends[-1].get(k) for k in ('id', 'result', 'code')}) if ends else None}; "
          f"console: {told in said}; LED 'one glow': {'one glow' in said}; "
          f"Home Assistant's run ended with {codes}")


def announce(g: Guardd, p: Partner) -> None:
    seq, spoke_before = g.last_seq(), p.lines("tts.jsonl")
    answer = p.ha("call", "assist_satellite", "announce",
                  json.dumps({"entity_id": f"assist_satellite.{g.name}", "message": "Dinner is ready"}))
    wait(lambda: any(r["type"] == "sound_end" for r in g.records(seq)), 30, 0.5)
    ends = [r for r in g.records(seq) if r["type"] == "sound_end"]
    tts = p.last_line("tts.jsonl") if p.lines("tts.jsonl") > spoke_before else {}
    end = {k: ends[-1][k] for k in ("sound", "audio_sha256", "audio_ms")} if ends else None
    check("an announcement plays (logged, hashed, answered)",
          answer["status"] == 200 and bool(ends) and ends[-1]["audio_sha256"] in p.spoken(),
          f"HTTP {answer['status']} in {answer['took_s']} s; sound_end {end}; TTS "
          f"{str(tts.get('sha256'))[:16] if tts else 'none new (Home Assistant cached it)'}")


def holds(g: Guardd) -> tuple[bool, bool]:
    state = g.status()
    return state["owner_muted"], state["ha_paused"]


def mute_switch(g: Guardd, p: Partner) -> None:
    switch = f"switch.{g.name}_mute"
    seq, at = g.last_seq(), len(g.console())
    p.ha("call", "switch", "turn_on", json.dumps({"entity_id": switch}))
    ok = wait(lambda: holds(g) == (False, True), 20)
    records = [r for r in g.records(seq) if r["type"] == "mute"]
    check("Home Assistant's mute switch on pauses guardd: status, log, LED and Home Assistant agree",
          ok and p.state(switch) == "on" and any(r["hold"] == "home_assistant" for r in records)
          and "paused by Home Assistant" in g.console()[at:],
          f"holds (owner, ha)={holds(g)}; switch {p.state(switch)}; mute records {[(r['hold'], r['source']) for r in records]}")
    p.ha("call", "switch", "turn_off", json.dumps({"entity_id": switch}))
    ok = wait(lambda: holds(g) == (False, False) and g.status()["wyoming"]["running"], 30)
    check("the switch off resumes guardd (Home Assistant's run-satellite lifts its own pause)",
          ok and p.state(switch) == "off", f"holds={holds(g)}; running={g.status()['wyoming']['running']}")
    seq = g.last_seq()
    p.ha("call", "switch", "turn_on", json.dumps({"entity_id": switch}))
    p.ha("call", "switch", "turn_off", json.dumps({"entity_id": switch}))  # at once: its loop may not notice
    ok = wait(lambda: any(r["type"] == "mute" for r in g.records(seq)), 10) and \
        wait(lambda: holds(g) == (False, False) and g.status()["wyoming"]["running"], 30)
    records = [(r["type"], r.get("hold"), r.get("event"), r.get("reason")) for r in g.records(seq)]
    check("the switch turned on and off at once leaves guardd listening, as Home Assistant shows",
          ok and p.state(switch) == "off", f"holds={holds(g)}; records {records}")


def restart(g: Guardd, p: Partner) -> None:
    seq, at = g.last_seq(), len(g.console())
    p.stop_hass()
    paused = wait(lambda: holds(g) == (False, True), 20)
    check("Home Assistant shutting down pauses guardd (its pause, not the owner's mute)", paused,
          f"holds={holds(g)}; LED paused drawn: {'paused by Home Assistant' in g.console()[at:]}")
    started = time.monotonic()
    p.sh("up.sh", timeout=400)
    back = wait(lambda: holds(g) == (False, False) and g.status()["wyoming"]["running"], 120)
    records = [(r["type"], r.get("hold")) for r in g.records(seq) if r["type"] in ("mute", "unmute")]
    check("after a Home Assistant restart guardd listens again with no press, and the switch says off",
          back and p.state(f"switch.{g.name}_mute") == "off",
          f"link up {time.monotonic() - started:.1f} s after up.sh began; records {records}")


def reload(g: Guardd, p: Partner) -> None:
    entry = next(e for e in p.ha("entries") if e["domain"] == "wyoming" and e["port"] == g.port)
    seq = g.last_seq()
    p.ha("reload", entry["entry_id"])
    back = wait(lambda: len([r for r in g.records(seq) if r["type"] == "unmute"]) >= 1
                and g.status()["wyoming"]["running"], 60)
    records = [(r["type"], r.get("hold")) for r in g.records(seq) if r["type"] in ("mute", "unmute")]
    check("a reload of the entry pauses and resumes guardd by itself", back and holds(g) == (False, False),
          f"records {records}; holds={holds(g)}")


def owner_mute_holds(g: Guardd, p: Partner) -> None:
    g.cli("mute")
    entry = next(e for e in p.ha("entries") if e["domain"] == "wyoming" and e["port"] == g.port)
    seq = g.last_seq()
    p.ha("reload", entry["entry_id"])
    wait(lambda: any(r["type"] == "unmute" for r in g.records(seq)), 60)
    time.sleep(2)
    status = g.cli("status").stdout
    check("the owner's mute outlasts Home Assistant's pause and resume (only the long press lifts it)",
          holds(g) == (True, False) and "hold the button to unmute" in status,
          f"holds={holds(g)}; status says: {next((l for l in status.splitlines() if l.startswith('muted')), '')}")
    g.press("hold 3.5")
    check("the long press lifts it", wait(lambda: holds(g) == (False, False), 15), f"holds={holds(g)}")


# -- timers ---------------------------------------------------------------------------------------


class Speaker:
    """guardd's speaker (guardd_start.sh's played.raw) and the ring's burst as guardd makes it."""

    def __init__(self, g: Guardd) -> None:
        sys.path.insert(0, str(ROOT))
        from guardd.config.settings import AnnounceConfig
        from guardd.speak.earcons import render

        volume = (yaml.safe_load((g.dir / "guardd.yaml").read_text()).get("announce") or {}).get(
            "volume", AnnounceConfig().volume)
        self.burst = render("ring", volume)
        self.path = g.dir / "played.raw"

    def bursts(self) -> int:
        """Whole bursts of the ring in all guardd played."""
        x = np.fromfile(self.path, dtype="<i2") if self.path.exists() else np.zeros(0, np.int16)
        n, k = len(self.burst), int(np.argmax(np.abs(self.burst)))  # found by its loudest sample
        found, after = 0, 0
        for s in np.flatnonzero(x == self.burst[k]) - k:
            if s >= after and np.array_equal(x[s : s + n], self.burst):
                found, after = found + 1, s + n
        return found


def timer_records(g: Guardd, seq: int, event: str | None = None) -> list[dict[str, Any]]:
    return [r for r in g.records(seq) if r["type"] == "timer" and (event is None or r["event"] == event)]


def converse(p: Partner, g: Guardd, text: str) -> str:
    answer = p.ha("converse", text, g.name)
    return f"{text!r} -> HTTP {answer['status']} {answer['speech']!r}"


def last_led(g: Guardd) -> str:
    lines = [line for line in g.console().splitlines() if "[LED " in line]
    return lines[-1].split("[LED ", 1)[1].rstrip("]") if lines else ""


def timer_rings_until_a_press(g: Guardd, p: Partner, speaker: Speaker) -> None:
    seq, bursts = g.last_seq(), speaker.bursts()
    said = converse(p, g, "set a timer for 3 seconds")
    started = wait(lambda: timer_records(g, seq, "started"), 10, 0.5)
    rang = wait(lambda: speaker.bursts() >= bursts + 2, 30, 0.5)
    records = timer_records(g, seq)
    led, status = last_led(g), g.status()["timers"]
    check("'set a timer for 3 seconds': guardd holds it, then rings it on the speaker and the LED",
          started and rang and "a timer is ringing" in led and len(status["ringing"]) == 1
          and any(r["event"] == "finished" and r["by"] == "home_assistant" for r in records),
          f"{said}; records {[(r['event'], r.get('seconds'), r.get('by')) for r in records]}; "
          f"{speaker.bursts() - bursts} bursts of the ring in played.raw; LED '{led}'; ringing {status['ringing']}")
    g.press()
    silenced = wait(lambda: timer_records(g, seq, "silenced"), 10, 0.5)
    time.sleep(1.0)
    after = speaker.bursts()
    time.sleep(5.0)
    records = timer_records(g, seq, "silenced")
    check("a short press silences the ring: no burst after it, the LED idle, nothing approved or muted",
          silenced and records[-1]["reason"] == "press" and speaker.bursts() == after
          and "idle" in last_led(g) and not [r for r in g.records(seq) if r["type"] in ("decision", "mute")],
          f"silenced {[(r['reason'], r['rang_ms']) for r in records]}; {speaker.bursts() - after} bursts "
          f"in the 5 s after; LED '{last_led(g)}'")


def timer_cancelled(g: Guardd, p: Partner, speaker: Speaker) -> None:
    seq, bursts = g.last_seq(), speaker.bursts()
    said = [converse(p, g, "set a timer for 10 seconds")]
    wait(lambda: timer_records(g, seq, "started"), 10, 0.5)
    said.append(converse(p, g, "cancel the timer"))
    cancelled = wait(lambda: timer_records(g, seq, "cancelled"), 10, 0.5)
    time.sleep(10 + 5 + 3)  # its end, guardd's own grace (timers.LATE_S) and more
    records = timer_records(g, seq)
    check("a timer cancelled by Home Assistant never rings",
          cancelled and not timer_records(g, seq, "finished") and speaker.bursts() == bursts
          and not g.status()["timers"]["held"],
          f"{'; '.join(said)}; records {[(r['event'], r.get('seconds')) for r in records]}; "
          f"{speaker.bursts() - bursts} bursts")


def timer_paused(g: Guardd, p: Partner, speaker: Speaker) -> None:
    seq, bursts = g.last_seq(), speaker.bursts()
    said = [converse(p, g, "set a timer for 8 seconds")]
    wait(lambda: timer_records(g, seq, "started"), 10, 0.5)
    said.append(converse(p, g, "pause the timer"))
    wait(lambda: timer_records(g, seq, "updated"), 10, 0.5)
    time.sleep(8 + 5 + 2)
    quiet = not timer_records(g, seq, "finished") and speaker.bursts() == bursts
    held = g.status()["timers"]["held"]
    said.append(converse(p, g, "resume the timer"))
    rang = wait(lambda: timer_records(g, seq, "finished"), 20, 0.5) and wait(lambda: speaker.bursts() > bursts, 10, 0.5)
    g.press()
    silenced = wait(lambda: timer_records(g, seq, "silenced"), 10, 0.5)
    records = timer_records(g, seq)
    check("a timer Home Assistant paused does not ring; resumed, it rings when Home Assistant says it finished",
          quiet and rang and silenced and bool(held) and not held[0]["active"]
          and [r["event"] for r in records] == ["started", "updated", "updated", "finished", "silenced"]
          and records[3]["by"] == "home_assistant",
          f"{'; '.join(said)}; held while paused {held}; records "
          f"{[(r['event'], r.get('seconds'), r.get('active'), r.get('by')) for r in records]}")


def timer_times_out(g: Guardd, p: Partner, speaker: Speaker) -> None:
    sys.path.insert(0, str(ROOT))
    from guardd.timers import RING_S

    seq, bursts = g.last_seq(), speaker.bursts()
    said = converse(p, g, "set a timer for 3 seconds")
    rang = wait(lambda: timer_records(g, seq, "finished"), 20, 0.5)
    began = time.monotonic()
    ended = wait(lambda: timer_records(g, seq, "silenced"), RING_S + 30, 2.0)
    took = time.monotonic() - began
    time.sleep(1.0)
    after = speaker.bursts()
    time.sleep(5.0)
    records = timer_records(g, seq, "silenced")
    check(f"a ring nobody answers stops by itself after {RING_S:g} s",
          rang and ended and records[-1]["reason"] == "timeout" and speaker.bursts() == after and "idle" in last_led(g),
          f"{said}; silenced {[(r['reason'], r['rang_ms']) for r in records]} after {took:.0f} s of waiting; "
          f"{after - bursts} bursts in all; LED '{last_led(g)}'")


def timers(g: Guardd, p: Partner) -> None:
    speaker = Speaker(g)
    for step in (timer_rings_until_a_press, timer_cancelled, timer_paused, timer_times_out):
        step(g, p, speaker)


STEPS = ("muted", "idle", "presses", "announce", "error", "switch", "restart", "reload", "owner", "timers")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guardd", default=str(ROOT / ".venv" / "bin" / "guardd"))
    parser.add_argument("--root", default=None, help="run guardd inside this Debian root (setup.sh --with-trixie)")
    parser.add_argument("--ha-real", type=Path, default=HA_REAL)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ha/check-guardd"))
    parser.add_argument("--port", type=int, default=10740)
    parser.add_argument("--name", default="hacheck", help="the satellite's name (its entities: switch.NAME_mute, ...)")
    parser.add_argument("--idle-s", type=float, default=300.0)
    parser.add_argument("--presses", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave guardd and Home Assistant running")
    parser.add_argument("--esphome", action="store_true", help="the encrypted ESPHome link instead of Wyoming")
    parser.add_argument("--install-esphome", action="store_true",
                        help="with --esphome: install the ESPHome integration's requirements in Home Assistant's venv")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"the steps to run, of {','.join(STEPS)} (Wyoming)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: guardd is stopped too (finally)
    if args.esphome:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ha_check_esphome import main as esphome_main

        return esphome_main(args)
    p = Partner(args.ha_real)
    g = Guardd(p, args.guardd, args.dir, args.port, args.name, args.root)
    print(f"== Home Assistant ({p.run_dir}) and guardd ({args.guardd}{' in ' + args.root if args.root else ''})", flush=True)
    done = p.sh("up.sh", timeout=400)
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:])
        return 1
    g.start()
    try:
        p.sh("up.sh", "--satellite", f"127.0.0.1:{args.port}", timeout=400)
        print(g.cli("status").stdout, flush=True)
        steps = {"muted": lambda: fresh_install_is_muted(g, p), "idle": lambda: idle_uptime(g, p, args.idle_s),
                 "presses": lambda: presses(g, p, args.presses), "announce": lambda: announce(g, p),
                 "error": lambda: pipeline_error(g, p), "switch": lambda: mute_switch(g, p),
                 "restart": lambda: restart(g, p), "reload": lambda: reload(g, p),
                 "owner": lambda: owner_mute_holds(g, p), "timers": lambda: timers(g, p)}
        for name in args.steps.split(","):
            try:
                steps[name]()
            except Exception as exc:  # noqa: BLE001 - one failed step must not hide the others
                check(f"the step {name} ran", False, f"{type(exc).__name__}: {exc}")
        print("== guardd status at the end\n" + g.cli("status").stdout, flush=True)
    finally:
        if not args.keep:
            g.stop()
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"== {len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
