"""The owner's views of what the speaker did: `guardd history`, `guardd recordings` and
`guardd report --html`, against a log with known activity.

The activity is real: three `guardd replay` runs of the spoken demo ("Alexa, send a message to
the kitchen speaker...") with a press (delivered to a real HTTP server on loopback), without one
(timed out) and with a press to a destination nobody listens on (failed). Then, through the
log's own writer, what a replay cannot make: a local client refused at the door (with a hostile
program name and destination), a message still waiting for its press, and a satellite upload as
an older version logged it (a `sent` without `delivered`) with Home Assistant's `pipeline` record.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Inbox, guardd, write_config

from guardd.auditlog.reading import read_records
from guardd.auditlog.writer import AuditLog

UTC = {"TZ": "UTC"}  # the views print local time: the test reads them in a known zone
HOSTILE_EXE = "/tmp/\x1b[2J<script>alert(1)</script>"
HOSTILE_DEST = "<img src=http://127.0.0.1:9/x.png>\x07"


def utc(wall_ms: int) -> str:
    return datetime.datetime.fromtimestamp(wall_ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def activity(tmp_path_factory, manifest) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("views")
    inbox = Inbox()
    demo = manifest["dir"] / manifest["demo"]["file"]
    # Once the speaker has said where the upload goes and how much (about 3.5 s after it asks):
    press = str(round(manifest["demo"]["command_end"] + 0.8 + 5.0, 2))
    destinations = {"inbox": {"url": inbox.url}, "nowhere": {"url": "http://127.0.0.1:9/nobody", "timeout_s": 2.0}}
    try:
        config = write_config(tmp, destinations=destinations, after_wake={"upload_to": "inbox"},
                              confirm={"timeout_s": 3.0})
        for extra in (["--press-at", press], []):
            run = guardd("replay", str(demo), "--config", str(config), *extra)
            assert run.returncode == 0, run.stderr
        failing = tmp / "failing.yaml"
        failing.write_text(config.read_text().replace("upload_to: inbox", "upload_to: nowhere"))
        run = guardd("replay", str(demo), "--config", str(failing), "--press-at", press)
        assert run.returncode == 0, run.stderr
        assert len(inbox.arrivals) == 1
    finally:
        inbox.close()
    state = tmp / "state"
    log = AuditLog(state / "log", announce_key=False)
    log.open()
    try:
        log.append("start", version="0.0.9", pid=4242)
        log.append("refused", kind="message", destination=HOSTILE_DEST, bytes=12, code="unknown_destination",
                   uid=1000, pid=77, exe=HOSTILE_EXE)
        old = log.append("request", id=lambda seq: f"r{seq}", kind="upload", destination="wyoming",
                         sha256="ab" * 32, bytes=64000, uid=0, pid=4242, exe="guardd (after wake)")
        log.append("decision", id=f"r{old}", decision="approved", reason="pressed")  # no announce: older
        log.append("send", id=f"r{old}", destination="wyoming", sha256="ab" * 32, bytes=64000)
        log.append("sent", id=f"r{old}", status=0, bytes=64000, duration_ms=40, error="")  # no `delivered`
        log.append("pipeline", id=f"r{old}", result="replied", reason="")
        waiting = log.append("request", id=lambda seq: f"r{seq}", kind="message", destination="inbox",
                             sha256="cd" * 32, bytes=11, uid=1000, pid=78, exe="/usr/bin/python3.11")
        log.append("announce", id=f"r{waiting}", sha256="ef" * 32, playback=0)
    finally:
        log.close()
    records = list(read_records(state / "log"))
    return {"config": config, "state": state, "records": records, "tmp": tmp}


def wall(records: list[dict[str, Any]], type_: str, **match: Any) -> int:
    return next(r["wall_ms"] for r in records if r["type"] == type_ and all(r.get(k) == v for k, v in match.items()))


def lines_with_times(lines: list[str], times: list[int]) -> list[str]:
    return [line.replace("{t}", utc(t)).replace("{at}", utc(t)[11:]) for line, t in zip(lines, times)]


def test_history_prints_one_line_per_request_joined_from_its_records(activity):
    records = activity["records"]
    result = guardd("history", "--config", str(activity["config"]), env=UTC)
    assert result.returncode == 0, result.stderr
    requests = [wall(records, "request", id="r4"), wall(records, "request", id="r13"),
                wall(records, "request", id="r20"), wall(records, "refused"),
                wall(records, "request", id="r28"), wall(records, "request", id="r33")]
    announced = [wall(records, "announce", id="r4"), wall(records, "announce", id="r13"),
                 wall(records, "announce", id="r20"), 0, 0, wall(records, "announce", id="r33")]
    expected = [
        "TIME                 ID   FROM                                              TO                                      WHAT                                   ANNOUNCED     DECISION                       RESULT",
        "{t}  r4   guardd (after wake)                               inbox                                   upload, 4.3 s of audio (137964 bytes)  yes {at}  approved (pressed)             delivered (HTTP 200)",
        "{t}  r13  guardd (after wake)                               inbox                                   upload, 4.3 s of audio (137964 bytes)  yes {at}  denied (timeout)               not sent",
        "{t}  r20  guardd (after wake)                               nowhere                                 upload, 4.3 s of audio (137964 bytes)  yes {at}  approved (pressed)             failed: cannot reach nowhere: [Errno 111] Connection refused",
        r"{t}  -    /tmp/\x1b[2J<script>alert(1)</script> (uid 1000)  <img src=http://127.0.0.1:9/x.png>\x07  message, 12 bytes                      no            refused (unknown_destination)  not sent",
        "{t}  r28  guardd (after wake)                               wyoming                                 upload, 2.0 s of audio (64000 bytes)   no            approved (pressed)             sent (this older log does not say whether it was delivered); Home Assistant run: replied",
        "{t}  r33  /usr/bin/python3.11 (uid 1000)                    inbox                                   message, 11 bytes                      yes {at}  open                           open: waiting for a press",
    ]
    got = result.stdout.splitlines()
    assert got[0] == expected[0]
    rows = [line.replace("{t}", utc(t)) for line, t in zip(expected[1:], requests)]
    rows = [line.replace("{at}", utc(a)[11:]) for line, a in zip(rows, announced)]
    assert got[1:] == rows
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout  # a client's bytes never reach the terminal


def test_history_json_since_and_last(activity):
    config = str(activity["config"])
    rows = [json.loads(line) for line in guardd("history", "--config", config, "--json").stdout.splitlines()]
    assert [r["id"] for r in rows] == ["r4", "r13", "r20", "", "r28", "r33"]
    first = rows[0]
    assert (first["decision"], first["reason"], first["delivered"], first["status"]) == ("approved", "pressed", True, 200)
    assert (first["file"], first["audio_s"], first["announced"], first["exe"]) == (
        "utterance-00000003.wav", 4.31, True, "guardd (after wake)")
    assert rows[3]["exe"] == HOSTILE_EXE and rows[3]["decision"] == "refused"
    assert rows[5]["decision"] is None and rows[5]["result"] == "open: waiting for a press"
    last_two = guardd("history", "--config", config, "-n", "2", env=UTC).stdout.splitlines()
    assert [line.split()[2] for line in last_two[1:]] == ["r28", "r33"]
    later = guardd("history", "--config", config, "--since", "2099-01-01")
    assert later.returncode == 0 and later.stdout == "" and later.stderr == "no requests since then\n"
    bad = guardd("history", "--config", config, "--since", "yesterday-ish")
    assert bad.returncode == 2 and "is not a time" in bad.stderr


def test_recordings_lists_each_kept_file_with_its_length_expiry_and_where_it_went(activity, tmp_path):
    state = tmp_path / "state"
    shutil.copytree(activity["state"], state)  # (copy2: the files keep their mtimes)
    old = state / "recordings" / "utterance-00000012.wav"
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    config = write_config(tmp_path, unmuted=False, retention={"max_age_h": 24.0, "max_total_mb": 200.0})
    result = guardd("recordings", "--config", str(config), env=UTC)
    assert result.returncode == 0, result.stderr
    records = activity["records"]
    kept = [wall(records, "utterance", file=f"utterance-{n:08d}.wav") for n in (3, 12, 19)]
    deletes = [int(((state / "recordings" / f"utterance-{n:08d}.wav").stat().st_mtime + 86400) * 1000) for n in (3, 19)]
    assert result.stdout.splitlines() == [
        "FILE                    LENGTH  KEPT                 DELETED BY           SENT",
        f"utterance-00000003.wav  4.3 s   {utc(kept[0])}  {utc(deletes[0])}  sent to inbox (r4)",
        f"utterance-00000012.wav  4.3 s   {utc(kept[1])}  due now (max_age)    not sent to inbox (r13: denied, timeout)",
        f"utterance-00000019.wav  4.3 s   {utc(kept[2])}  {utc(deletes[1])}  send to nowhere failed (r20)",
        f"3 recording(s), 0.4 MB in {state / 'recordings'}; each is deleted 24 h after it was kept "
        "(retention.max_age_h), the oldest first when all of them pass 200 MB (retention.max_total_mb)",
    ]
    as_json = [json.loads(line) for line in guardd("recordings", "--config", str(config), "--json").stdout.splitlines()]
    assert [(r["file"], r["sent_to"], r["due"]) for r in as_json] == [
        ("utterance-00000003.wav", ["inbox"], None), ("utterance-00000012.wav", [], "max_age"),
        ("utterance-00000019.wav", [], None)]


def test_the_views_read_while_the_daemon_holds_the_log_and_need_no_daemon(activity):
    """The writer's lock is held (as by a running guardd) and no socket exists: they still read."""
    holder = AuditLog(activity["state"] / "log", announce_key=False)
    holder.open()
    try:
        for command in (["history"], ["recordings"], ["verify"]):
            result = guardd(*command, "--config", str(activity["config"]))
            assert result.returncode == 0 and result.stdout, (command, result.stderr)
    finally:
        holder.close()
    assert not (activity["tmp"] / "guardd.sock").exists()


# -- the report, in a real browser ----------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "ul", "li", "table",
                "thead", "tbody", "tr", "th", "td", "svg", "line", "text", "circle"}


def chromium(page: Path, profile: Path) -> tuple[str, list[str], set[str]]:
    """Chromium's DOM of `page` after it rendered, the console messages it logged, and the hosts
    of every URL it requested (from its network log)."""
    net = profile.parent / f"{profile.name}.netlog.json"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           f"--log-net-log={net}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    import re
    from urllib.parse import urlsplit

    hosts = {urlsplit(u).hostname or "" for u in re.findall(r'"url":"([^"]+)"', net.read_text())}
    return done.stdout, console, hosts


def tags_of(dom: str) -> set[str]:
    from html.parser import HTMLParser

    found: set[str] = set()

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            found.add(tag)
            assert not any(name in ("src", "href") for name, _ in attrs), (tag, attrs)

    Tags().feed(dom)
    return found


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: scripts/setup.sh installs it")
def test_the_report_renders_in_a_real_browser_without_errors_and_loads_nothing(activity, tmp_path):
    config = str(activity["config"])
    page = tmp_path / "report.html"
    day = utc(wall(activity["records"], "request", id="r4"))[:10]
    made = guardd("report", "--config", config, "--html", str(page), "--day", day, env=UTC)
    assert made.returncode == 0, made.stderr
    assert made.stdout == f"wrote {page}: {day}, 6 request(s), 3 recording(s) kept, log intact\n"
    assert page.stat().st_mode & 0o777 == 0o600  # the owner's activity, readable by the owner
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>")
    _, _, chromium_own = chromium(blank, tmp_path / "p0")  # what Chromium asks for by itself
    dom, console, hosts = chromium(page, tmp_path / "p1")
    assert console == [], console
    assert hosts - chromium_own == {""} or hosts - chromium_own == set(), hosts - chromium_own
    assert tags_of(dom) <= ALLOWED_TAGS, tags_of(dom) - ALLOWED_TAGS
    assert "The log verifies: " in dom and "the hash chain intact" in dom
    assert dom.count("<circle") >= 14  # the day's marks: wakes, kept, requests, decisions, results
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "&lt;img src=http://127.0.0.1:9/x.png&gt;" in dom
    for row in ("<td>inbox</td><td class=\"n\">3</td><td class=\"n\">1</td><td class=\"n\">1</td>",
                "<td>utterance-00000003.wav</td><td>4.3 s</td>"):
        assert row in dom, row
    # The checks can fail: the same page with a picture from the network is caught by both.
    leaky = tmp_path / "leaky.html"
    leaky.write_text(page.read_text().replace("<body>", '<body><img src="http://127.0.0.1:9/x.png">'))
    _, console, _ = chromium(leaky, tmp_path / "p2")
    assert any("127.0.0.1:9/x.png" in line and "Content Security Policy" in line for line in console), console
    open_page = tmp_path / "open.html"
    open_page.write_text(leaky.read_text().replace('<meta http-equiv="Content-Security-Policy"', '<meta name="x"'))
    _, _, hosts = chromium(open_page, tmp_path / "p3")
    assert "127.0.0.1" in hosts - chromium_own


def test_the_report_of_a_day_without_a_log_and_a_bad_day(tmp_path):
    config = write_config(tmp_path)
    page = tmp_path / "r.html"
    result = guardd("report", "--config", str(config), "--html", str(page), "--day", "2026-02-30")
    assert result.returncode == 2 and "'2026-02-30' is not a day" in result.stderr and not page.exists()
    empty = guardd("report", "--config", str(config), "--html", str(page), "--day", "2026-02-03")
    assert empty.returncode == 0, empty.stderr
    text = page.read_text()
    assert "No requests this day." in text and "No recordings are kept now." in text
    assert "does not verify" in text and "no log segments" in text  # no log at all is said, not hidden


def test_log_of_sent_records_names_where_each_went(activity):
    """`guardd log --type sent` alone says where a request went, not only its id."""
    lines = guardd("log", "--config", str(activity["config"]), "--type", "sent", env=UTC).stdout.splitlines()
    new = [line for line in lines if "destination=" in line]
    assert len(new) == 2, lines  # the delivered and the failed send; the old record has none
    assert any("destination=inbox" in line and "delivered=1" in line for line in new)
    assert any("destination=nowhere" in line and "delivered=0" in line for line in new)
