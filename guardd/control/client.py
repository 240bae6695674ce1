"""The client side of the control socket, for `guardd send` and `guardd status` (and a model for
an assistant's own client: one JSON object per line each way)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

from guardd.control import protocol
from guardd.errors import GuarddError

# `guardd send` exit codes, one per outcome a script may want to tell apart.
EXIT_DELIVERED = 0
EXIT_DENIED = 3
EXIT_TIMED_OUT = 4
EXIT_BUSY = 5
EXIT_UNKNOWN_DESTINATION = 6
EXIT_SEND_FAILED = 7
EXIT_NO_DAEMON = 8
EXIT_REFUSED = 9  # any other refusal: too large, bad request, the log cannot be written


class DaemonUnreachable(GuarddError, ConnectionError):
    pass


def _connect(path: Path, timeout_s: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except FileNotFoundError:
        sock.close()
        raise DaemonUnreachable(f"no guardd control socket at {path}; is guardd running?") from None
    except PermissionError:
        sock.close()
        raise DaemonUnreachable(
            f"not allowed to connect to {path}; join the socket's group (socket.group in the config)"
        ) from None
    except OSError as exc:
        sock.close()
        raise DaemonUnreachable(f"cannot connect to {path}: {exc.strerror}") from None
    return sock


def messages(path: Path, request: dict[str, Any], timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
    """Send one request line and yield each reply line until the daemon closes the connection."""
    sock = _connect(path, timeout_s)
    try:
        sock.sendall(protocol.encode(request))
        with sock.makefile("rb") as replies:
            for line in replies:
                yield json.loads(line)
    finally:
        sock.close()


def send(path: Path, request: dict[str, Any], progress: Callable[[dict[str, Any]], None]) -> int:
    """Submit and follow the request to its end; return the exit code for its outcome."""
    final: dict[str, Any] = {}
    for message in messages(path, request):
        progress(message)
        final = message
    status = final.get("status")
    if status == "sent":
        return EXIT_DELIVERED
    if status == "failed":
        return EXIT_SEND_FAILED
    if status == "denied":
        return EXIT_TIMED_OUT if final.get("reason") == "timeout" else EXIT_DENIED
    if status == "error":
        return {"busy": EXIT_BUSY, "unknown_destination": EXIT_UNKNOWN_DESTINATION}.get(
            str(final.get("code")), EXIT_REFUSED
        )
    raise DaemonUnreachable("guardd closed the connection before the request was decided")


def mute(path: Path) -> dict[str, Any]:
    for message in messages(path, {"call": "mute"}, timeout_s=10):
        return message
    raise DaemonUnreachable("guardd closed the connection without an answer")


def status(path: Path) -> dict[str, Any]:
    for message in messages(path, {"call": "status"}, timeout_s=10):
        return message
    raise DaemonUnreachable("guardd closed the connection without an answer")
