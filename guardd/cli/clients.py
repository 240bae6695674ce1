"""The daemon's side of the control socket: calls become core actions, core events become lines
for the subscribers."""

from __future__ import annotations

from typing import Any

from guardd.control import protocol
from guardd.control.server import ClientCall, ClientGone, ControlServer
from guardd.core import Core
from guardd.errors import BadRequest, Refused
from guardd.homeassistant.link import Link


class Clients:
    """Turns control-socket calls into core actions and core events into client messages."""

    def __init__(self, core: Core, server: ControlServer, link: Link | None = None) -> None:
        self.core = core
        self.server = server
        self.link = link  # Home Assistant's link: its peer and message counts are part of the status
        self.subscribers: set[int] = set()

    def handle(self, event: ClientCall | ClientGone) -> None:
        if isinstance(event, ClientGone):
            self.subscribers.discard(event.client)
            self.core.cancel_client(event.client)
            return
        client, message = event.client, event.message
        call = message["call"]
        if call == "status":
            link = {self.link.destination: self.link.status()} if self.link is not None else {}
            self.server.send(client, {"status": "ok", **self.core.tell.status(), **link})
        elif call == "mute":  # software can mute, never unmute
            caller = event.caller
            self.core.mute(f"socket uid={caller.uid} pid={caller.pid} exe={caller.exe}")
            self.server.send(client, {"status": "muted"}, close=True)
        elif call == "subscribe":
            self.subscribers.add(client)
            self.server.send(client, {"status": "subscribed"})
        elif call == "submit":
            self._submit(event)

    def _submit(self, event: ClientCall) -> None:
        client = event.client

        def reply(message: dict[str, Any]) -> None:
            self.server.send(client, message, close=message["status"] in protocol.FINAL)

        try:
            kind, to, payload, content_type = protocol.parse_submit(event.message)
            self.core.submit(kind, to, payload, event.caller, reply=reply, client=client,
                             content_type=content_type)
        except BadRequest as exc:
            self.server.send(client, protocol.error("bad_request", str(exc)), close=True)
        except Refused as exc:
            self.server.send(client, protocol.error(exc.code, str(exc)), close=True)

    def publish(self, event: dict[str, Any]) -> None:
        for client in list(self.subscribers):
            self.server.send(client, event)
