"""The sender: delivers exactly the approved bytes to the named destination, once.

Just before sending it reads the spooled payload and hashes it again; a mismatch refuses the
send. It never retries (a new attempt needs a new press), never follows a redirect (that would
send to an address the owner did not configure), and ignores proxy settings in the environment.
In `run` it works on its own thread so the audio path never waits for the network; in `replay`
it sends inline so audio time stands still while the bytes travel.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from guardd import __version__
from guardd.config import DestinationConfig

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1_000_000  # of the destination's reply kept for the client


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
    delivered: bool  # a 2xx answer came back
    status: int  # HTTP status, 0 when no answer came
    body: bytes  # the destination's reply (capped), for the client
    error: str  # why it was not delivered, "" when it was
    bytes_sent: int
    duration_s: float


@functools.cache
def _opener() -> Any:
    """urllib with redirects refused and no proxies. Imported on the first send: urllib.request
    brings http.client and ssl (about 3.5 MB and 60 ms at start-up) that listening never needs."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused", headers, fp)

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def send(job: SendJob) -> SendResult:
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
    headers = {"Content-Type": job.content_type, "User-Agent": f"guardd/{__version__}"}
    headers.update(dict(dest.headers))
    opener = _opener()
    import urllib.error
    import urllib.request

    request = urllib.request.Request(dest.url, data=payload, method=dest.method, headers=headers)
    try:
        with opener.open(request, timeout=dest.timeout_s) as response:
            body = response.read(MAX_RESPONSE_BYTES)
            status = response.status
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_RESPONSE_BYTES) if exc.fp is not None else b""
        return failed(f"{dest.name} answered {exc.code} {exc.reason}", exc.code, body, len(payload))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return failed(f"cannot reach {dest.name}: {reason}")
    return SendResult(job.request_id, True, status, body, "", len(payload), time.monotonic() - started)


class Sender:
    """Sends one job at a time on its own thread and hands each result to `on_result`."""

    def __init__(self, on_result: Callable[[SendResult], None], *, threaded: bool = True) -> None:
        self._on_result = on_result
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
            self._on_result(send(job))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                result = send(job)
            except Exception as exc:  # never lose a result: the core must log and answer
                log.exception("sender failed")
                result = SendResult(job.request_id, False, 0, b"", f"sender error: {exc}", 0, 0.0)
            self._on_result(result)

    def stop(self, timeout_s: float = 2.0) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout_s)
            self._thread = None
