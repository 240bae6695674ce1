"""A TCP listener for a link Home Assistant connects to: its address check, and the thread that
takes connections and serves each on a thread of its own. Shared by the links (guardd/esphome/
now; guardd/wyoming/ holds its own copy until the links share one home)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Callable


def listener(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket on (host, port); OSError when the address cannot be had."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def allowed(address: str, allow: tuple[str, ...]) -> bool:
    """Whether a peer's address is one of `allow` (an IPv4 address seen as ::ffff:a.b.c.d too)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip == ipaddress.ip_address(a) for a in allow)


class Listener:
    """Takes connections on its own thread. A peer outside `allow` (when there is one) is closed
    at once, nothing written, and reported to `refused(peer, reason)`; every other connection
    goes to `serve(sock, peer)` on a thread of its own, which owns the socket from then on."""

    def __init__(self, host: str, port: int, *, allow: tuple[str, ...], allow_key: str,
                 serve: Callable[[socket.socket, str], None], refused: Callable[[str, str], None],
                 name: str, backlog: int = 8) -> None:
        self._address = (host, port)
        self._allow = allow
        self._allow_key = allow_key  # the config key of `allow`, for the refusal's reason
        self._serve = serve
        self._refused = refused
        self._name = name
        self._backlog = backlog
        self._socket: socket.socket | None = None
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    def start(self) -> None:
        """Listen (OSError when the address cannot be had) and take connections."""
        self._socket = listener(*self._address, self._backlog)
        self._spawn(self._accept, f"{self._name}-accept")

    def stop(self) -> None:
        """Stop taking connections (the caller ends those it has, then `join`s)."""
        self._stopping = True
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept
            except OSError:
                pass
            self._socket.close()

    def join(self, each_s: float = 2.0) -> None:
        """Wait for the threads, `each_s` at most for each."""
        for thread in self._threads:
            thread.join(each_s)

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self) -> None:
        assert self._socket is not None
        while not self._stopping:
            try:
                sock, address = self._socket.accept()
            except OSError:
                return  # the listener was closed: guardd is stopping
            peer = f"{address[0]}:{address[1]}"
            if self._allow and not allowed(address[0], self._allow):
                sock.close()  # nothing at all is written to a peer outside allow
                self._refused(peer, f"not in {self._allow_key}")
                continue
            self._spawn(self._serve, f"{self._name}-peer", sock, peer)
