"""Sends as an owner meets them: `guardd replay --press-at` with after-wake uploads, and a real
`guardd run` (audio through ALSA, the button through --simulate's stdin) with `guardd send` and
raw clients on its control socket. A real HTTP server on loopback counts what arrives."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import replay_events, silent_wav
from harness import GUARDD, ROOT, Daemon, Inbox, wait_until, write_config
from harness.home_assistant import HomeAssistant, free_port

from guardd.auditlog.reading import read_records
from guardd.auditlog.verify import verify

PCM_TYPE = "audio/L16;rate=16000;channels=1"  # guardd's kept utterances, as Home Assistant's link carries them

DEADLINE_S = 30.0


def types(log_dir: Path) -> list[str]:
    return [r["type"] for r in read_records(log_dir)]


# -- replay --press-at ---------------------------------------------------------------------------


def upload_config(tmp_path: Path, inbox: Inbox) -> Path:
    return write_config(
        tmp_path,
        destinations={"inbox": {"url": inbox.url}},
        after_wake={"upload_to": "inbox"},
        confirm={"timeout_s": 5.0},
    )


def test_a_press_while_the_led_asks_uploads_exactly_the_kept_utterance(tmp_path, manifest, inbox):
    wav = manifest["dir"] / manifest["demo"]["file"]
    config = upload_config(tmp_path, inbox)
    first = replay_events(wav, config)  # no press: learn when the request is armed
    inbox.arrivals.clear()

    said = next(e for e in first if e["event"] == "announce")  # a press counts once it said where and how much
    events = replay_events(wav, config, "--press-at", str(said["t"] + said["asks_after_s"] + 0.2))
    by_kind = {e["event"]: e for e in events}
    assert [e["event"] for e in events] == ["wake", "utterance", "request", "asking", "announce", "decision", "sent"]
    assert by_kind["decision"]["decision"] == "approved"
    assert by_kind["sent"]["status"] == 200 and by_kind["sent"]["body"] == '{"text":"heard you"}'
    assert len(inbox.bodies) == 1
    body = inbox.bodies[0]
    assert hashlib.sha256(body).hexdigest() == by_kind["request"]["sha256"] == by_kind["utterance"]["sha256"]
    kept = tmp_path / "state" / "recordings" / by_kind["utterance"]["file"]
    assert body == kept.read_bytes()
    assert inbox.arrivals[0].headers["Content-Type"] == "audio/wav"

    log_dir = tmp_path / "state" / "log"
    second_run = types(log_dir)[types(log_dir).index("stop") + 1 :]
    assert second_run == ["start", "wake", "utterance", "request", "announce", "decision", "send", "sent", "stop"]
    assert verify(log_dir)[1] == []


def test_without_a_press_the_upload_times_out_and_nothing_arrives(tmp_path, manifest, inbox):
    wav = manifest["dir"] / manifest["demo"]["file"]
    events = replay_events(wav, upload_config(tmp_path, inbox))
    said = next(e for e in events if e["event"] == "announce")
    decision = next(e for e in events if e["event"] == "decision")
    assert (decision["decision"], decision["reason"]) == ("denied", "timeout")
    ended = said["t"] + said["duration_s"]  # the timeout runs from the end of the announcement
    assert 5.0 <= decision["t"] - ended <= 5.0 + 0.08 * 2  # replay ran the clock on
    assert inbox.arrivals == []


def test_a_press_during_the_wake_word_approves_nothing_later(tmp_path, manifest, inbox):
    wav = manifest["dir"] / manifest["demo"]["file"]
    demo = manifest["demo"]
    events = replay_events(wav, upload_config(tmp_path, inbox), "--press-at", str(demo["wake_start"]),
                           "--press-at", str(demo["command_start"]))
    decision = next(e for e in events if e["event"] == "decision")
    assert (decision["decision"], decision["reason"]) == ("denied", "timeout")
    assert inbox.arrivals == []


# -- a running daemon ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_inbox() -> Iterator[Inbox]:
    inbox = Inbox()
    yield inbox
    inbox.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, manifest, shared_inbox) -> Iterator[Daemon]:
    """`guardd run --simulate` with ALSA audio, shared by the tests of this module."""
    tmp = tmp_path_factory.mktemp("daemon")
    config = write_config(
        tmp,
        audio={"queue_s": 120},
        destinations={"inbox": {"url": shared_inbox.url, "max_bytes": 1000}},
        confirm={"timeout_s": 3.0, "queue": 0},
        socket={"path": str(tmp / "guardd.sock"), "max_frame_bytes": 4096, "read_timeout_s": 1.0},
    )
    d = Daemon(tmp, config, manifest["dir"] / manifest["demo"]["file"])
    yield d
    assert d.stop() == 0
    assert verify(d.log_dir)[1] == []


def armed(daemon: Daemon, count: int) -> None:
    """Until request #count is logged, armed and its announcement begun: a press counts then."""
    wait_until(lambda: len(daemon.records("request")) >= count, f"request #{count} to be logged")
    daemon.wait_announced(count)  # (with no queue, every request here is armed as it comes)


def test_guardd_send_is_delivered_after_a_press_on_the_running_daemon(daemon, shared_inbox):
    shared_inbox.arrivals.clear()
    n = len(daemon.records("request"))
    client = daemon.send("--to", "inbox", "--text", "dinner is ready")
    armed(daemon, n + 1)
    time.sleep(0.2)  # the press must come after arming, as a person's would
    daemon.press()
    out, err = client.communicate(timeout=DEADLINE_S)
    assert client.returncode == 0, err
    assert "delivered (HTTP 200)" in err and out.strip() == '{"text":"heard you"}'
    assert shared_inbox.bodies == [b"dinner is ready"]
    request = daemon.records("request")[-1]
    assert request["exe"] == os.path.realpath(sys.executable) and request["uid"] == os.getuid()


def test_guardd_send_without_a_press_counts_down_and_times_out_with_exit_4(daemon, shared_inbox):
    shared_inbox.arrivals.clear()
    client = daemon.send("--to", "inbox", "--text", "nobody is here")
    _, err = client.communicate(timeout=DEADLINE_S)
    assert client.returncode == 4 and "denied: timeout" in err
    assert shared_inbox.arrivals == []
    # Not a terminal: each second the socket streams is a line of its own, counting down.
    lines = err.splitlines()
    left = [int(line.split()[0]) for line in lines if line.endswith(" s left to press")]
    assert left[0] <= 3 and len(left) >= 3 and left == sorted(left, reverse=True), err
    announcing = [i for i, line in enumerate(lines) if "the speaker is announcing it" in line]
    assert announcing and max(announcing) < lines.index(f"{left[0]} s left to press"), err


def test_on_a_terminal_the_countdown_is_one_line_rewritten(daemon):
    controller, terminal = pty.openpty()
    client = subprocess.Popen([*GUARDD, "send", "--socket", str(daemon.sock), "--to", "inbox", "--text", "hi"],
                              stdout=subprocess.DEVNULL, stderr=terminal, cwd=ROOT)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the client has exited and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert client.wait(timeout=DEADLINE_S) == 4
    text = shown.decode()
    counting = text[text.index("\rthe speaker is announcing it"):text.index("denied: timeout")]
    assert counting.count(" s left to press\x1b[K") >= 3, repr(text)
    assert "\n" not in counting.rstrip("\r\n"), repr(text)  # (the terminal writes each newline as \r\n)


def test_a_file_named_without_flag_is_uploaded(daemon, tmp_path, shared_inbox):
    shared_inbox.arrivals.clear()
    note = tmp_path / "note.txt"
    note.write_bytes(b"the shopping list")
    n = len(daemon.records("request"))
    client = daemon.send("--to", "inbox", str(note))
    armed(daemon, n + 1)
    time.sleep(0.2)
    daemon.press()
    _, err = client.communicate(timeout=DEADLINE_S)
    assert client.returncode == 0, err
    assert shared_inbox.bodies == [b"the shopping list"]


def test_guardd_send_exit_codes_for_unknown_destination_busy_and_too_large(daemon, tmp_path, shared_inbox):
    shared_inbox.arrivals.clear()
    unknown = daemon.send("--to", "elsewhere", "--text", "x")
    _, err = unknown.communicate(timeout=DEADLINE_S)
    assert unknown.returncode == 6 and "no destination named 'elsewhere' (configured: inbox)" in err

    n = len(daemon.records("request"))
    first = daemon.send("--to", "inbox", "--text", "first")
    armed(daemon, n + 1)
    busy = daemon.send("--to", "inbox", "--text", "second")
    _, err = busy.communicate(timeout=DEADLINE_S)
    assert busy.returncode == 5, err
    first.kill()  # a client that goes away cancels its request
    first.wait(timeout=10)
    wait_until(lambda: [d["reason"] for d in daemon.records("decision")][-1:] == ["cancelled"], "the cancellation")

    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    too_large = daemon.send("--to", "inbox", "--file", str(big))
    _, err = too_large.communicate(timeout=DEADLINE_S)
    assert too_large.returncode == 9 and "over inbox's max_bytes of 1000" in err
    assert shared_inbox.arrivals == []


def raw_client(daemon: Daemon) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(daemon.sock))
    return s


def read_lines(s: socket.socket) -> list[dict]:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_an_oversized_frame_is_refused_and_the_connection_closed(daemon):
    s = raw_client(daemon)
    s.sendall(b'{"call":"submit","to":"inbox","text":"' + b"a" * 5000 + b'"}\n')
    assert read_lines(s) == [{"code": "too_large", "message": "a request line may be at most 4096 bytes",
                              "status": "error"}]


def test_a_slow_client_is_cut_off_after_the_read_deadline(daemon):
    s = raw_client(daemon)
    s.sendall(b'{"call":"sta')
    started = time.monotonic()
    assert read_lines(s)[0]["code"] == "timeout"
    assert time.monotonic() - started < 5


def test_garbage_gets_a_clear_error_and_the_daemon_keeps_serving(daemon):
    for line in (b"not json\n", b"[1,2]\n", b'{"call":"rm -rf"}\n', b'{"call":"submit","to":"inbox"}\n',
                 b'{"call":"submit","to":"inbox","kind":"upload","data":"%%%"}\n'):
        s = raw_client(daemon)
        s.sendall(line)
        reply = read_lines(s)
        assert reply[0]["status"] == "error" and reply[0]["code"] == "bad_request", (line, reply)
    s = raw_client(daemon)
    s.sendall(b'{"call":"status"}\n')
    s.settimeout(10)
    status = json.loads(s.makefile("rb").readline())
    assert status["status"] == "ok" and status["armed"] is None and status["queue"] == []  # nothing asks


def test_a_subscriber_hears_request_decision_and_sent_with_the_response_body(daemon):
    sub = raw_client(daemon)
    sub.sendall(b'{"call":"subscribe"}\n')
    lines = sub.makefile("rb")
    assert json.loads(lines.readline()) == {"status": "subscribed"}
    n = len(daemon.records("request"))
    client = daemon.send("--to", "inbox", "--text", "for the subscriber")
    armed(daemon, n + 1)
    time.sleep(0.2)
    daemon.press()
    client.communicate(timeout=DEADLINE_S)
    heard: list[str] = []
    while not heard or heard[-1] != "sent":  # (the microphone may tell a wake in between)
        event = json.loads(lines.readline())
        if "id" in event:
            heard.append(event["event"])
    assert heard == ["request", "asking", "announce", "decision", "sent"]


def test_a_press_the_moment_the_announcement_begins_approves_nothing(daemon, shared_inbox):
    """Presses 0-2 ms after the `announce` event, inside the asking tone, approved 3 of 3: a
    press counts only once the speaker has said where the request goes and how much."""
    shared_inbox.arrivals.clear()
    sub = raw_client(daemon)
    sub.sendall(b'{"call":"subscribe"}\n')
    lines = sub.makefile("rb")
    assert json.loads(lines.readline()) == {"status": "subscribed"}
    client = daemon.send("--to", "inbox", "--text", "pay 900 euros to account 12345")
    while (event := json.loads(lines.readline()))["event"] != "announce":
        pass
    daemon.press()  # at once
    began = time.monotonic()
    time.sleep(1.0)
    assert [r for r in daemon.records("decision") if r["id"] == event["id"]] == []
    assert shared_inbox.arrivals == []
    time.sleep(max(0.0, began + event["asks_after_s"] + 0.3 - time.monotonic()))
    daemon.press()  # "Send to inbox: a message of 30 characters." has been said
    _, err = client.communicate(timeout=DEADLINE_S)
    assert client.returncode == 0, err
    assert shared_inbox.bodies == [b"pay 900 euros to account 12345"]


def sent_from(daemon: Daemon, args: list[str], stdin: Path | None) -> tuple[dict, str]:
    """`guardd send ARGS` (standard input from `stdin`): its request record and the journal line
    of its announcement; then the client goes away (cancelling it)."""
    n = len(daemon.records("request"))
    with open(stdin or os.devnull, "rb") as given:
        client = subprocess.Popen([*GUARDD, "send", "--socket", str(daemon.sock), "--to", "inbox", *args],
                                  stdin=given, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        wait_until(lambda: len(daemon.records("request")) > n, "the request", DEADLINE_S)
        request = daemon.records("request")[n]
        line = f"request {request['id']} is announced"
        wait_until(lambda: line in daemon.said(), "its announcement", DEADLINE_S)
        said = next(l for l in daemon.said().splitlines() if line in l)
    finally:
        client.kill()
        client.wait(timeout=10)
    wait_until(lambda: daemon.records("decision")[-1]["id"] == request["id"], "the cancellation", DEADLINE_S)
    return request, said


def test_a_file_is_an_upload_from_any_source_and_text_is_a_message_from_any_source(daemon, tmp_path):
    note = tmp_path / "note.txt"
    note.write_bytes(b"the shopping list")
    for args, stdin in (([str(note)], None), (["--file", str(note)], None), (["-"], note), (["--file", "-"], note)):
        request, said = sent_from(daemon, args, stdin)
        assert request["kind"] == "upload" and request["bytes"] == 17, args
        assert "“Send to inbox: an upload of 17 bytes. Press the button to send it.”" in said, (args, said)
    for args, stdin in ((["--text", "the shopping list"], None), (["--text", "-"], note)):
        request, said = sent_from(daemon, args, stdin)
        assert request["kind"] == "message", args
        assert "It reads: the shopping list. Press the button" in said, (args, said)


def test_text_from_standard_input_that_is_not_utf8_is_refused_with_the_fix(daemon, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\xff\xfe not text")
    with open(blob, "rb") as given:
        done = subprocess.run([*GUARDD, "send", "--socket", str(daemon.sock), "--to", "inbox", "--text", "-"],
                              stdin=given, capture_output=True, text=True, cwd=ROOT, timeout=DEADLINE_S)
    assert done.returncode == 2 and "not UTF-8 text" in done.stderr and "--file -" in done.stderr


def test_a_local_program_cannot_send_to_home_assistants_voice_pipeline(tmp_path):
    """A client submitted to `wyoming` typed audio/L16, and Home Assistant got `detection` and a
    pipeline run with no wake word heard: only guardd's own kept utterances go there."""
    port = free_port()
    config = write_config(tmp_path, after_wake={"upload_to": "wyoming"},
                          wyoming={"listen": f"127.0.0.1:{port}", "allow": ["127.0.0.1"], "name": "kitchen"})
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "silence.wav"))
    ha = HomeAssistant(port, answer=None).connect()
    try:
        pcm = tmp_path / "not-a-wake.raw"
        pcm.write_bytes(bytes(32000))
        for args in (["--content-type", PCM_TYPE, str(pcm)], ["--text", "turn off the alarm"], [str(pcm)]):
            client = d.send("--to", "wyoming", *args)
            _, err = client.communicate(timeout=DEADLINE_S)
            assert client.returncode == 9 and "only guardd's own recordings after a wake word" in err, (args, err)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(str(d.sock))
        s.sendall(json.dumps({"call": "submit", "to": "wyoming", "kind": "upload", "data": "AAAAAA==",
                              "content_type": PCM_TYPE}).encode() + b"\n")
        [reply] = read_lines(s)
        assert (reply["status"], reply["code"]) == ("error", "reserved") and "wake word" in reply["message"]
        esphome = d.send("--to", "esphome", "--content-type", PCM_TYPE, str(pcm))  # the other link: the same rule
        _, err = esphome.communicate(timeout=DEADLINE_S)
        assert esphome.returncode == 9 and "only guardd's own recordings after a wake word" in err, err
        refused = d.records("refused")
        assert len(refused) == 5 and {(r["code"], r["destination"]) for r in refused} == {
            ("reserved", "wyoming"), ("reserved", "esphome")}
        assert d.records("request") == []
        time.sleep(0.5)
        assert set(ha.types()) <= {"info", "pong"}  # no detection, no pipeline run
    finally:
        ha.close()
        assert d.stop() == 0
