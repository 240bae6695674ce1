"""`guardd send`, `guardd mute` and `guardd status`: the commands that talk to a running daemon
over its control socket."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from guardd.cli.common import EXIT_FAILURE, EXIT_USAGE, load_config_or_salvage
from guardd.config.settings import default_socket_path

SERVICE_SOCKET = Path("/run/guardd/guardd.sock")  # the systemd unit's RuntimeDirectory=guardd


def _socket_paths(args: argparse.Namespace) -> list[Path]:
    """Where the daemon's socket is: --socket, $GUARDD_SOCKET, or the config's socket.path.
    When the config has a problem (warned of), what its file says, then the usual places."""
    if args.socket:
        return [Path(args.socket)]
    if os.environ.get("GUARDD_SOCKET"):
        return [Path(os.environ["GUARDD_SOCKET"])]
    config, salvaged = load_config_or_salvage(args)
    paths = [Path(config.socket.path)]
    if salvaged:
        paths += [p for p in (Path(default_socket_path()), SERVICE_SOCKET) if p not in paths]
    return paths


def _socket_path(args: argparse.Namespace) -> Path:
    """The first of _socket_paths that is there (else the first, for its error message)."""
    paths = _socket_paths(args)
    return next((p for p in paths if _is_socket(p)), paths[0])


def _is_socket(path: Path) -> bool:
    try:
        return path.is_socket()
    except OSError:  # a directory on the way that this user may not search
        return False


class _Progress:
    """What `guardd send` shows of the socket's answers, on stderr. The countdown the daemon
    streams once a second is one line rewritten in place on a terminal, a line each otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._counting = False  # a countdown line is on screen, without its newline

    def __call__(self, message: dict) -> None:
        status = message.get("status")
        if status == "waiting" and "sha256" not in message:
            self._countdown(message)
            return
        if self._counting:
            self.out.write("\n")
            self._counting = False
        if status == "queued":
            self._say(f"queued behind another request (position {message.get('position')})")
        elif status == "waiting":
            self._say(f"request {message['id']}: {message['bytes']} bytes to {message['destination']} "
                      f"(sha256 {message['sha256'][:16]}…). Press the guardd button while its LED blinks")
            self._countdown(message)
        elif status == "approved":
            self._say("approved by a press; sending")
        elif status == "sent":
            self._say(f"delivered (HTTP {message['http_status']})" if message.get("http_status")
                      else "delivered: Home Assistant took it")
            if message.get("body"):
                print(message["body"])
        elif status == "failed":
            self._say(f"send failed: {message.get('error')}")
        elif status == "denied":
            self._say(f"denied: {message.get('reason')}")
        elif status == "error":
            self._say(f"refused: {message.get('message')}")

    def _say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def _countdown(self, message: dict) -> None:
        if message.get("announcing"):  # the timeout runs from the end of the announcement
            text = "the speaker is announcing it; a press counts from now"
        else:
            text = f"{message['seconds_left']:.0f} s left to press"
        if self.tty:
            self.out.write(f"\r{text}\x1b[K")  # the line rewritten, the rest of it cleared
            self._counting = True
            self.out.flush()
        else:
            self._say(text)


def send_payload(args: argparse.Namespace) -> tuple[bytes, bool, str | None]:
    """(payload, whether it is a message, content type) of `guardd send`. The flag decides the
    kind, never the bytes: --text T (or --text - for standard input) is a message, read out by
    the speaker; FILE, --file F and - (standard input) are uploads, sent as they are and
    described by their size (or, a 16 kHz mono WAV, by its length). Raises ValueError saying
    what is wrong."""
    given = [v for v in (args.text, args.file, args.source) if v is not None]
    if len(given) != 1:
        raise ValueError("say what to send: --text T (a message, read out) or FILE, --file F (an upload; "
                         "- for standard input)" if not given else "give one of --text, --file or FILE, not more")
    if args.text is not None:
        if args.content_type is not None:
            raise ValueError("--content-type is for uploads; a message is text/plain")
        if args.text != "-":
            return args.text.encode("utf-8"), True, None
        data = sys.stdin.buffer.read()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("standard input is not UTF-8 text, so it cannot be a message; "
                             "send it as an upload with --file - (or -)") from None
        return data, True, None
    source = args.file if args.file is not None else args.source
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise OSError(f"cannot read {source}: {exc.strerror}") from None
    content_type = args.content_type
    if content_type is None and str(source).endswith(".wav"):
        content_type = "audio/wav"
    return data, False, content_type


def cmd_send(args: argparse.Namespace) -> int:
    from guardd.control import client, protocol

    try:
        payload, text, content_type = send_payload(args)
    except ValueError as exc:
        print(f"guardd send: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    request = protocol.submit_call(args.to, payload, text=text, content_type=content_type)
    try:
        return client.send(_socket_path(args), request, _Progress(sys.stderr))
    except client.DaemonUnreachable as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return client.EXIT_NO_DAEMON


def cmd_mute(args: argparse.Namespace) -> int:
    from guardd.control import client

    try:
        client.mute(_socket_path(args))
    except client.DaemonUnreachable as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return client.EXIT_NO_DAEMON
    print("muted: the microphone is closed. Only holding the button unmutes it.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from guardd.control import client

    try:
        state = client.status(_socket_path(args))
    except client.DaemonUnreachable as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return client.EXIT_NO_DAEMON
    if args.json:
        print(json.dumps(state, sort_keys=True))
        return 0
    print(f"state:     {state['state']}" + (f" (fault: {state['fault']})" if state.get("fault") else ""))
    if state.get("owner_muted", state.get("muted")):
        print("muted:     yes: hold the button to unmute")
    elif state.get("ha_paused"):
        print("muted:     paused by Home Assistant (its mute switch, or it is restarting): it resumes it")
    else:
        print("muted:     no")
    armed = state.get("armed")
    print("armed:     " + (f"{armed['id']} {armed['kind']} of {armed['bytes']} bytes to "
                           f"{armed['destination']}, {armed['seconds_left']:g} s left" if armed else "none"))
    sending = state.get("sending")
    if sending:
        print(f"sending:   {sending['id']} to {sending['destination']}")
    print(f"queue:     {len(state.get('queue', []))} waiting")
    timers = state.get("timers")
    if timers and (timers["held"] or timers["ringing"]):
        print_timers(timers)
    wyoming = state.get("wyoming")
    if wyoming:
        print_wyoming(wyoming)
    esphome = state.get("esphome")
    if esphome:
        print_esphome(esphome)
    for event in state.get("recent_events", []):
        fields = " ".join(f"{k}={v}" for k, v in sorted(event.items()) if k not in ("event", "t", "body", "wall_ms"))
        when = time.strftime("%H:%M:%S", time.localtime(event["wall_ms"] / 1000)) if "wall_ms" in event else "--:--:--"
        print(f"  {when} {event['event']:<10} {fields}")
    return 0


def print_timers(timers: dict) -> None:
    """Home Assistant's timers, as guardd holds them (guardd/timers.py)."""
    held = "; ".join(f"{t['timer']} {t['left_s']} s left" + ("" if t["active"] else " (paused)")
                     for t in timers["held"]) or "none running"
    ringing = (f"RINGING ({len(timers['ringing'])}), {timers['ring_left_s']} s more unless the button "
               "is pressed; " if timers["ringing"] else "")
    print(f"timers:    {ringing}{held}")


def print_wyoming(wyoming: dict) -> None:
    """The satellite link's lines of `guardd status`."""
    if not wyoming.get("listening", True):
        print(f"wyoming:   NOT listening on {wyoming['listen']}: {wyoming.get('failure') or 'not started'}")
    elif wyoming["peer"]:
        print(f"wyoming:   listening on {wyoming['listen']}; Home Assistant's satellite connection "
              f"{wyoming['peer']} up {wyoming['connected_s']:g} s, satellite "
              f"{'running' if wyoming['running'] else 'paused'}")
    else:
        print(f"wyoming:   listening on {wyoming['listen']}; Home Assistant not connected")
    if "polls" in wyoming:
        last = wyoming.get("last_poll_s")
        print(f"  polls     {wyoming['polls']} describe-only connections" +
              (f", the last {last:g} s ago" if last is not None else "") +
              f"; {wyoming.get('connections', 0)} connection(s) open")
    for way in ("sent", "received", "refused"):
        counts = " ".join(f"{k}={v}" for k, v in sorted(wyoming.get(way, {}).items())) or "none"
        print(f"  {way:<9} {counts}")


def print_esphome(esphome: dict) -> None:
    """The encrypted link's lines of `guardd status`."""
    if not esphome.get("listening", True):
        print(f"esphome:   NOT listening on {esphome['listen']}: {esphome.get('failure') or 'not started'}")
    elif esphome["peer"]:
        print(f"esphome:   listening on {esphome['listen']}; Home Assistant ({esphome['peer']}) subscribed "
              f"to the voice assistant, up {esphome['connected_s']:g} s; {esphome['sessions']} connection(s) "
              "past the handshake")
    else:
        print(f"esphome:   listening on {esphome['listen']}; Home Assistant not subscribed "
              f"({esphome['sessions']} connection(s) past the handshake)")
    print(f"  refused   {esphome['refused']} connection(s) without the key; "
          f"{esphome.get('announcements_fetched', 0)} announcement(s) fetched; the most a peer sent in a "
          f"second: {esphome.get('peak_bytes_per_s', 0)} bytes")
    for way in ("sent", "received"):
        counts = " ".join(f"{k}={v}" for k, v in sorted(esphome.get(way, {}).items())) or "none"
        print(f"  {way:<9} {counts}")
