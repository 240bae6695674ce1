"""The encrypted link against a real Home Assistant: `scripts/ha_check.py --esphome` (issue 30).

It starts Home Assistant (up.sh, with HA_RUN, HA_PORT, STT_PORT and TTS_PORT passed on), a fresh
guardd with `esphome:` (guardd_start.sh --keep-config, on a config written here with a new key),
adds guardd through Home Assistant's ESPHome config flow by host, port and key (its REST flow
API, as a person does in the UI: host and port, then the key it asks for), and checks: the
entities Home Assistant made; a fresh install starts muted and its switch says so; the long
press unmutes; wakes and presses (Home Assistant's speech-to-text heard exactly the approved
bytes; the reply played); an announcement fetched from Home Assistant and played; the mute
switch both ways and the owner's mute it cannot lift; Home Assistant restarted; what the log
and `status` said.

Home Assistant 2026.11 needs its ESPHome integration's requirements in its venv, which the root
that setup.sh builds does not have (nothing in its configuration loads the integration):
aioesphomeapi (46.25.0 pinned; PyPI here has 46.23.0, whose API the integration's code imports
and runs), esphome-dashboard-api, bleak-esphome and the usb integration's serialx and
aiousbwatcher. `--install-esphome` installs them with the root's own pip (into /tmp/ha/root314,
never into the shared folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from ha_check import HA_REAL, Guardd, Partner, check, wait  # (the Wyoming mode's helpers)

REQUIREMENTS = ["aioesphomeapi==46.23.0", "esphome-dashboard-api==1.4.0", "bleak-esphome==4.0.0",
                "serialx==1.15.1", "aiousbwatcher==1.1.2"]


def install_requirements(p: Partner, root: str) -> None:
    done = subprocess.run([str(p.dir / "in_root.sh"), root, "/opt/havenv/bin/python", "-m", "pip", "install",
                           "--quiet", *REQUIREMENTS], capture_output=True, text=True, timeout=900)
    check("the ESPHome integration's requirements installed in Home Assistant's venv", done.returncode == 0,
          (done.stdout + done.stderr).strip()[-300:] or ", ".join(REQUIREMENTS))


class Rest:
    """Home Assistant's REST API from the host (standard library only)."""

    def __init__(self, p: Partner) -> None:
        self.url = f"http://127.0.0.1:{os.environ.get('HA_PORT', '8123')}"
        self.token = (p.run_dir / "token").read_text().strip()

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def add_esphome(self, host: str, port: int, key: str) -> list[dict[str, Any]]:
        """The config flow as a person goes through it: host and port, then the key it asks for."""
        steps = [self.call("POST", "/api/config/config_entries/flow", {"handler": "esphome", "show_advanced_options": False})]
        steps.append(self.call("POST", f"/api/config/config_entries/flow/{steps[0]['flow_id']}",
                               {"host": host, "port": port}))
        if steps[-1].get("type") == "form" and steps[-1].get("step_id") == "encryption_key":
            steps.append(self.call("POST", f"/api/config/config_entries/flow/{steps[0]['flow_id']}", {"noise_psk": key}))
        return steps

    def entries(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/config/config_entries/entry")


def write_config(g: Guardd, key: str) -> None:
    g.dir.mkdir(parents=True, exist_ok=True)
    key_file = g.dir / "esphome.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    (g.dir / "guardd.yaml").write_text(f"""state_dir: {g.dir}/state
wake:
  models: [hey_jarvis, alexa]
announce:
  output: device
confirm:
  timeout_s: 12
after_wake:
  upload_to: esphome
esphome:
  listen: 127.0.0.1:{g.port}
  name: {g.name}
  encryption_key: {{file: {key_file}}}
socket:
  path: {g.dir}/guardd.sock
""")


def start(g: Guardd) -> None:
    args = ["guardd_start.sh", g.program, str(g.dir), "--keep-config", "--fresh"]
    if g.root:
        args += ["--root", g.root]
    done = g.partner.sh(*args, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"guardd_start.sh failed: {done.stdout[-500:]}{done.stderr[-500:]}")
    g.socket = str(g.dir / "guardd.sock")


def link(g: Guardd) -> dict[str, Any]:
    return g.status().get("esphome", {})


def holds(g: Guardd) -> tuple[bool, bool]:
    state = g.status()
    return state["owner_muted"], state["ha_paused"]


def added(g: Guardd, p: Partner, rest: Rest, key: str) -> tuple[str, str]:
    steps = rest.add_esphome("127.0.0.1", g.port, key)
    kinds = [(s.get("type"), s.get("step_id"), s.get("errors")) for s in steps]
    ok = steps[-1].get("type") == "create_entry"
    check("Home Assistant's ESPHome config flow adds guardd by host and port, then asks for the key",
          ok and kinds[1][1] == "encryption_key", f"steps {kinds}; title {steps[-1].get('title')}")
    up = wait(lambda: link(g).get("running"), 60)
    # Only the device guardd's ESPHome link describes: a Wyoming satellite of the same name (left
    # by ha_check.py run before in the same Home Assistant) is another device, and its switch is
    # no longer guardd's.
    devices = [d for d in p.ha("device", g.name) if d["manufacturer"] == "guardd"]
    entities = sorted(e["entity_id"] for d in devices for e in d["entities"])
    model = [(d["manufacturer"], d["model"], d["sw_version"]) for d in devices]
    check("it subscribes to the voice assistant and makes an Assist satellite and the mute switch",
          up and any(e.startswith("assist_satellite.") for e in entities) and any(e.startswith("switch.") for e in entities),
          f"status esphome {({k: link(g).get(k) for k in ('peer', 'running', 'sessions', 'refused')})}; "
          f"device {model}; entities {entities}")
    return (next((e for e in entities if e.startswith("switch.")), f"switch.{g.name}_mute"),
            next((e for e in entities if e.startswith("assist_satellite.")), f"assist_satellite.{g.name}"))


def muted_at_first(g: Guardd, p: Partner, switch: str) -> None:
    state = g.status()
    check("a fresh install starts muted, and Home Assistant's mute switch says so (on)",
          state["owner_muted"] and p.state(switch) == "on", f"owner_muted={state['owner_muted']}; {switch} {p.state(switch)}")
    p.ha("call", "switch", "turn_off", json.dumps({"entity_id": switch}))
    time.sleep(2)
    check("Home Assistant's switch turned off does not lift the owner's mute, and goes back to on",
          holds(g) == (True, False) and p.state(switch) == "on", f"holds={holds(g)}; {switch} {p.state(switch)}")
    g.press("hold 3.5")
    ok = wait(lambda: not g.status()["muted"], 15) and wait(lambda: p.state(switch) == "off", 15)
    check("the long press unmutes, and the switch shows off", ok, f"holds={holds(g)}; {switch} {p.state(switch)}")


def presses(g: Guardd, p: Partner, count: int) -> None:
    from ha_check import one_request

    for i in range(count):
        heard_before = p.lines("stt.jsonl")
        got = one_request(g, p, "what time is it?")
        if got is None:
            check(f"press {i + 1}: a request asked", False, "no request record within 60 s")
            continue
        records = got["records"]
        of = {t: [r for r in records if r["type"] == t] for t in ("request", "sent", "pipeline", "sound_end", "reply")}
        request, sent = of["request"][-1], (of["sent"] or [{}])[-1]
        wait(lambda: any(r["type"] == "sound_end" for r in g.records(request["seq"])), 20, 0.5)
        ends = [r for r in g.records(request["seq"]) if r["type"] == "sound_end" and r["sound"].endswith("-reply")]
        pipeline = [r for r in g.records(request["seq"]) if r["type"] == "pipeline"]
        stt = p.last_line("stt.jsonl") if p.lines("stt.jsonl") > heard_before else {}
        check(f"press {i + 1}: Home Assistant's speech-to-text heard exactly the approved bytes, over the encrypted link",
              sent.get("delivered") == 1 and stt.get("sha256") == request["sha256"],
              f"request {request['id']} sha256 {request['sha256'][:16]}, STT heard {str(stt.get('sha256'))[:16]} "
              f"({stt.get('bytes')} bytes of {request['bytes']}); sent delivered={sent.get('delivered')} "
              f"error={sent.get('error')!r}")
        check(f"press {i + 1}: the reply streamed over the link played, and the run ended replied",
              bool(ends) and bool(pipeline) and pipeline[-1]["result"] == "replied",
              f"reply sound_end {({k: ends[-1][k] for k in ('audio_ms', 'audio_sha256')}) if ends else None}; "
              f"pipeline {pipeline[-1]['result'] if pipeline else None}; the most Home Assistant sent in a "
              f"second so far: {link(g).get('peak_bytes_per_s')} bytes (the link allows 98,304)")


def announce(g: Guardd, p: Partner, satellite: str) -> None:
    seq = g.last_seq()
    answer = p.ha("call", "assist_satellite", "announce",
                  json.dumps({"entity_id": satellite, "message": "Dinner is ready", "preannounce": False}))
    wait(lambda: any(r["type"] == "sound_end" for r in g.records(seq)), 30, 0.5)
    records = g.records(seq)
    ends = [r for r in records if r["type"] == "sound_end"]
    ignored = [r["reason"] for r in records if r["type"] == "peer_ignored"]
    check("an announcement: guardd fetches it from Home Assistant's own address, plays it and answers",
          answer["status"] == 200 and bool(ends) and link(g).get("announcements_fetched", 0) >= 1,
          f"HTTP {answer['status']} in {answer.get('took_s')} s; sound_end "
          f"{({k: ends[-1][k] for k in ('sound', 'audio_ms')}) if ends else None}; ignored {ignored}")


def announce_before_a_run(g: Guardd, p: Partner, satellite: str) -> None:
    """Before its first voice run since it started, Home Assistant makes an announcement's
    speech as MP3 (its TTS default: the SPEAKER satellite's WAV options are set at a run's start):
    guardd decodes it (soundfile) and plays it."""
    seq = g.last_seq()
    answer = p.ha("call", "assist_satellite", "announce",
                  json.dumps({"entity_id": satellite, "message": "Dinner is ready", "preannounce": False}))
    wait(lambda: any(r["type"] in ("sound_end", "peer_ignored") for r in g.records(seq)), 30, 0.5)
    records = g.records(seq)
    ignored = [r["reason"] for r in records if r["type"] == "peer_ignored"]
    played = [r for r in records if r["type"] == "sound_end"]
    check("an announcement before Home Assistant's first run since its start (MP3): decoded, played "
          "and answered (docs/home-assistant.md)",
          answer["status"] == 200 and bool(played) and played[-1].get("audio_ms", 0) > 300 and not ignored,
          f"HTTP {answer['status']} in {answer.get('took_s')} s; sound_end "
          f"{({k: played[-1][k] for k in ('sound', 'audio_ms')}) if played else None}; ignored {ignored}")


def mute_switch(g: Guardd, p: Partner, switch: str) -> None:
    p.ha("call", "switch", "turn_on", json.dumps({"entity_id": switch}))
    ok = wait(lambda: holds(g) == (False, True), 20)
    records = [(r["hold"], r["source"]) for r in g.records() if r["type"] == "mute"][-1:]
    check("Home Assistant's mute switch on pauses guardd (its own hold): status, log and switch agree",
          ok and p.state(switch) == "on", f"holds={holds(g)}; {switch} {p.state(switch)}; last mute {records}")
    p.ha("call", "switch", "turn_off", json.dumps({"entity_id": switch}))
    ok = wait(lambda: holds(g) == (False, False), 20)
    check("the switch off lifts its pause", ok and p.state(switch) == "off", f"holds={holds(g)}; {switch} {p.state(switch)}")


def restart(g: Guardd, p: Partner) -> None:
    p.stop_hass()
    started = time.monotonic()
    p.sh("up.sh", timeout=400)
    back = wait(lambda: link(g).get("running"), 120)
    check("after a Home Assistant restart it connects with the key and subscribes again, with no press",
          back and holds(g) == (False, False), f"link up {time.monotonic() - started:.1f} s after up.sh began; holds={holds(g)}")


def main(args: Any) -> int:
    from guardd.esphome.keys import new_key
    from ha_check import RESULTS

    p = Partner(args.ha_real or HA_REAL)
    folder = args.dir if str(args.dir) != "/tmp/ha/check-guardd" else Path("/tmp/ha/check-esphome")
    g = Guardd(p, args.guardd, folder, args.port if args.port != 10740 else 6093, args.name, args.root)
    print(f"== Home Assistant ({p.run_dir}) and guardd ({args.guardd}) over the encrypted link", flush=True)
    if args.install_esphome:
        install_requirements(p, os.environ.get("HA_ROOT", "/tmp/ha/root314"))
    done = p.sh("up.sh", timeout=400)
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:])
        return 1
    key = new_key()
    write_config(g, key)
    start(g)
    rest = Rest(p)
    try:
        switch, satellite = added(g, p, rest, key)
        for step in (lambda: muted_at_first(g, p, switch), lambda: presses(g, p, args.presses),
                     lambda: announce(g, p, satellite), lambda: mute_switch(g, p, switch), lambda: restart(g, p),
                     lambda: announce_before_a_run(g, p, satellite), lambda: presses(g, p, 1)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - one failed step must not hide the others
                check("a step ran", False, f"{type(exc).__name__}: {exc}")
        print("== guardd status at the end\n" + g.cli("status").stdout, flush=True)
        log = [r["type"] for r in g.records()]
        print("== the log's record types: " + ", ".join(f"{t}={log.count(t)}" for t in sorted(set(log))), flush=True)
    finally:
        if not args.keep:
            g.stop()
            for entry in rest.entries():
                if entry["domain"] == "esphome":
                    rest.call("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"== {len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0
