"""The sender: delivers exactly the approved bytes to the named destination, once.

Just before sending it reads the spooled payload and hashes it again; a mismatch refuses the
send. It never retries (a new attempt needs a new press), never follows a redirect (that would
send to an address the owner did not configure), and uses no proxy (it speaks HTTP itself, with
http.client, so proxy settings in the environment never apply). The destination's `timeout_s`
bounds the whole exchange, from the name lookup to the last byte of the answer: every blocking
step gets only the time left, so a destination that trickles a byte a second, or reads slowly,
cannot keep a send alive past it. A send out of time has failed; it is not retried.
The `wyoming` destination is Home Assistant over the satellite link: the approved audio goes
out as one pipeline run (wyoming/upload.py frames it and hashes what it frames again), within
the destination's timeout (config WYOMING_TIMEOUT_S: long enough to wait for Home Assistant to
reconnect), to the connection that has the satellite running, or not at all. Its result has no
HTTP status (0): `delivered` alone says Home Assistant took it.
In `run` it works on its own thread so the audio path never waits for the network; in `replay`
it sends inline so audio time stands still while the bytes travel.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from wyoming.event import Event

from guardd import __version__
from guardd.audioformat import PCM_TYPE
from guardd.config.settings import WYOMING, DestinationConfig
from guardd.confirm.exchange import Deadline, Exchange
from guardd.wyoming.upload import NotApproved, pipeline_frames

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SendJob:
    request_id: str
    destination: DestinationConfig
    spool: Path
    sha256: str
    content_type: str


@dataclass(frozen=True)
class SendResult:
    request_id: str
    delivered: bool  # a 2xx answer came back, whole, in time
    status: int  # HTTP status, 0 when no (complete) answer came
    body: bytes  # the destination's reply (capped), for the client
    error: str  # why it was not delivered, "" when it was
    bytes_sent: int  # of the payload, handed to the network
    duration_s: float


class Uploads(Protocol):
    """The satellite link, as the sender uses it (wyoming/link.py)."""

    def upload(self, request_id: str, frames: list[Event], within_s: float) -> tuple[int, str]: ...


def send(job: SendJob, satellite: Uploads | None = None) -> SendResult:
    started = time.monotonic()

    def failed(error: str, status: int = 0, body: bytes = b"", sent: int = 0) -> SendResult:
        return SendResult(job.request_id, False, status, body, error, sent, time.monotonic() - started)

    try:
        payload = job.spool.read_bytes()
    except OSError as exc:
        return failed(f"cannot read the approved payload: {exc.strerror}")
    if hashlib.sha256(payload).hexdigest() != job.sha256:
        return failed("payload changed after approval; nothing sent")
    dest = job.destination
    if dest.name == WYOMING:
        return _upload(job, payload, satellite, started)
    headers = {"Content-Type": job.content_type, "User-Agent": f"guardd/{__version__}"}
    headers.update(dict(dest.headers))
    import http.client

    exchange = Exchange(dest, Deadline(dest.timeout_s))
    try:
        status, reason, location, body = exchange.run(payload, headers)
    except TimeoutError:  # the deadline, or a socket timeout set to what was left of it
        return failed(f"timed out after {dest.timeout_s:g} s {exchange.deadline.stage} "
                      f"(destinations.{dest.name}.timeout_s bounds the whole send)",
                      sent=exchange.payload_sent)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return failed(f"cannot reach {dest.name}: {exc}", sent=exchange.payload_sent)
    sent = exchange.payload_sent
    if 300 <= status < 400:
        refused = f"; redirect to {location} refused" if location else ""
        return failed(f"{dest.name} answered {status} {reason}{refused}", status, body, sent)
    if not 200 <= status < 300:
        return failed(f"{dest.name} answered {status} {reason}", status, body, sent)
    return SendResult(job.request_id, True, status, body, "", sent, time.monotonic() - started)


def _upload(job: SendJob, pcm: bytes, satellite: Uploads | None, started: float) -> SendResult:
    def result(sent: int, error: str) -> SendResult:
        return SendResult(job.request_id, not error, 0, b"", error, sent, time.monotonic() - started)

    if satellite is None:
        return result(0, "satellite mode is not running")
    if job.content_type != PCM_TYPE:
        return result(0, f"Home Assistant takes only {PCM_TYPE} over the satellite link (got {job.content_type})")
    try:
        frames = pipeline_frames(pcm, job.sha256)
    except NotApproved as exc:
        return result(0, str(exc))
    return result(*satellite.upload(job.request_id, frames, job.destination.timeout_s))


class Sender:
    """Sends one job at a time and hands each result to `on_result`, never while `submit` is on
    the stack when threaded. Inline (threaded=False: replay and tests) it sends in `submit` and
    hands the result over before returning; `on_result` must then only queue it, as the daemon's
    inbox does, so the core takes every result as an input of its own."""

    def __init__(self, on_result: Callable[[SendResult], None], *, threaded: bool = True,
                 satellite: Uploads | None = None) -> None:
        self._on_result = on_result
        self._satellite = satellite
        self._threaded = threaded
        self._jobs: queue.Queue[SendJob | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._threaded and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="guardd-sender", daemon=True)
            self._thread.start()

    def submit(self, job: SendJob) -> None:
        if self._threaded:
            self._jobs.put(job)
        else:
            self._on_result(self._send(job))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._on_result(self._send(job))

    def _send(self, job: SendJob) -> SendResult:
        try:
            return send(job, self._satellite)
        except Exception as exc:  # never lose a result: the core must log and answer
            log.exception("sender failed")
            return SendResult(job.request_id, False, 0, b"", f"sender error: {exc}", 0, 0.0)

    def stop(self, timeout_s: float = 2.0) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout_s)
            self._thread = None
