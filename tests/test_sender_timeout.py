"""A destination's `timeout_s` bounds the whole send, from connecting to the last byte of the
answer: a destination that trickles, stalls, or reads slowly makes the send fail at that time,
never later, and the failure says why. The sender also still refuses redirects, ignores proxy
settings and checks certificates. Each test sends to a real HTTP server on loopback (the
harness's Inbox, told how to misbehave)."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness import Inbox
from guardd.config.settings import DestinationConfig
from guardd.confirm.sender import SendJob, SendResult, send

SLACK_S = 0.5  # what the test machine may add to a deadline (two shared cores)


@pytest.fixture
def inboxes() -> Iterator[list[Inbox]]:
    opened: list[Inbox] = []
    yield opened
    for r in opened:
        r.close()


def start(inboxes: list[Inbox], answer: str = "ok", **kwargs) -> Inbox:
    r = Inbox(answer, **kwargs)
    inboxes.append(r)
    return r


def send_to(tmp_path: Path, url: str, payload: bytes, timeout_s: float) -> tuple[SendResult, float]:
    spool = tmp_path / "payload.bin"
    spool.write_bytes(payload)
    dest = DestinationConfig(url=url, name="inbox", timeout_s=timeout_s)
    job = SendJob("r1", dest, spool, hashlib.sha256(payload).hexdigest(), "text/plain")
    started = time.monotonic()
    result = send(job)
    return result, time.monotonic() - started


def assert_timed_out(result: SendResult, waited: float, timeout_s: float, stage: str) -> None:
    assert timeout_s <= waited < timeout_s + SLACK_S, f"the send took {waited:.2f} s"
    assert not result.delivered and result.status == 0
    assert result.error == (f"timed out after {timeout_s:g} s {stage} "
                            "(destinations.inbox.timeout_s bounds the whole send)")


def test_a_destination_answering_a_byte_a_second_fails_the_send_at_timeout_s(tmp_path, inboxes):
    slow = start(inboxes, "trickle")
    result, waited = send_to(tmp_path, slow.url, b"hello", timeout_s=2.0)
    assert_timed_out(result, waited, 2.0, "reading the answer (HTTP 200)")
    assert slow.bodies == [b"hello"] and result.bytes_sent == 5  # it arrived; the answer did not


def test_a_destination_that_never_answers_fails_the_send_at_timeout_s(tmp_path, inboxes):
    silent = start(inboxes, "silent")
    result, waited = send_to(tmp_path, silent.url, b"hello", timeout_s=1.0)
    assert_timed_out(result, waited, 1.0, "waiting for the answer")
    assert silent.bodies == [b"hello"]


def test_a_destination_trickling_its_headers_fails_the_send_at_timeout_s(tmp_path, inboxes):
    slow = start(inboxes, "trickle_headers", pace_s=0.2)  # each byte well inside any per-read timeout
    result, waited = send_to(tmp_path, slow.url, b"hello", timeout_s=2.0)
    assert_timed_out(result, waited, 2.0, "waiting for the answer")


def test_a_destination_that_does_not_read_fails_the_send_at_timeout_s(tmp_path, inboxes):
    deaf = start(inboxes, "deaf")
    payload = bytes(32_000_000)  # more than loopback's socket buffers hold
    result, waited = send_to(tmp_path, deaf.url, payload, timeout_s=1.0)
    assert_timed_out(result, waited, 1.0, "sending")
    assert 0 < result.bytes_sent < len(payload)


def test_a_tls_handshake_that_crawls_fails_the_send_at_timeout_s(tmp_path, inboxes):
    crawl = start(inboxes, "trickle_raw", pace_s=0.2)
    url = crawl.url.replace("http://", "https://")
    result, waited = send_to(tmp_path, url, b"hello", timeout_s=1.5)
    assert_timed_out(result, waited, 1.5, "in the TLS handshake")
    assert result.bytes_sent == 0


def test_a_timed_out_send_is_not_retried(tmp_path, inboxes):
    silent = start(inboxes, "silent")
    send_to(tmp_path, silent.url, b"once", timeout_s=0.5)
    time.sleep(0.5)
    assert silent.connections == 1 and silent.bodies == [b"once"]


def test_a_redirect_is_refused_not_followed(tmp_path, inboxes):
    moved = start(inboxes, "redirect")
    result, _ = send_to(tmp_path, moved.url, b"hello", timeout_s=5.0)
    assert not result.delivered and result.status == 302
    assert result.error == "inbox answered 302 Found; redirect to /elsewhere refused"
    assert [a.path for a in moved.arrivals] == ["/in"]


def test_proxy_settings_in_the_environment_are_ignored(tmp_path, inboxes, monkeypatch):
    inbox, proxy = start(inboxes), start(inboxes)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url.removesuffix("/in"))
    monkeypatch.delenv("no_proxy", raising=False)
    result, _ = send_to(tmp_path, inbox.url, b"hello", timeout_s=5.0)
    assert result.delivered and result.status == 200 and result.body == b'{"text":"heard you"}'
    assert inbox.bodies == [b"hello"] and proxy.arrivals == [] and proxy.connections == 0


def test_a_certificate_the_system_does_not_trust_is_refused(tmp_path, inboxes):
    pem = tmp_path / "self-signed.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(pem), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    pem.write_text(pem.read_text() + (tmp_path / "cert.pem").read_text())
    impostor = start(inboxes, tls_cert=pem)
    result, _ = send_to(tmp_path, impostor.url, b"hello", timeout_s=5.0)
    assert not result.delivered and result.status == 0 and result.bytes_sent == 0
    assert result.error.startswith("cannot reach inbox: ") and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert impostor.arrivals == []
