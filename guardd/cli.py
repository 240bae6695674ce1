"""The owner's command line. Errors print `guardd: error: message` and exit non-zero; set
GUARDD_DEBUG=1 to get the traceback as well.

Exit status: 0 success, 1 failure (a problem found, or an error named on stderr), 2 usage,
78 a bad config (EX_CONFIG; the systemd unit does not restart on it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from guardd import __version__, config as configmod
from guardd.errors import ConfigError, GuarddError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78


def _config(args: argparse.Namespace) -> configmod.Config:
    return configmod.load(args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from guardd.daemon import run

    return run(_config(args), simulate=args.simulate)


def cmd_replay(args: argparse.Namespace) -> int:
    from guardd.replay import replay

    return replay(_config(args), Path(args.audio), json_out=args.json, press_at=args.press_at)


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.path or args.config
    cfg = configmod.load(path)
    from guardd.wake import resolve_model

    for model in cfg.wake.models:
        resolve_model(model)  # a missing model file is a config problem the owner can fix now
    print(f"{cfg.source}: ok")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from guardd.audio import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no input devices found: plug in a USB microphone or check `arecord -l`")
        return EXIT_FAILURE
    for d in devices:
        mark = ">" if d["default"] else " "
        print(
            f"{mark} {d['index']:3d} {d['name']}, {d['hostapi']} "
            f"({d['channels']} in, {d['default_samplerate']:g} Hz)"
        )
    print("\nSet audio.device to an index or a part of a name above; > marks the default.")
    return 0


def _socket_path(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    if os.environ.get("GUARDD_SOCKET"):
        return Path(os.environ["GUARDD_SOCKET"])
    return Path(_config(args).socket.path)


def _print_progress(message: dict) -> None:
    status = message.get("status")
    if status == "queued":
        print(f"queued behind another request (position {message.get('position')})", file=sys.stderr)
    elif status == "waiting" and "sha256" in message:
        print(
            f"request {message['id']}: {message['bytes']} bytes to {message['destination']} "
            f"(sha256 {message['sha256'][:16]}…). Press the guardd button while its LED blinks; "
            f"{message['seconds_left']:g} s left",
            file=sys.stderr,
        )
    elif status == "approved":
        print("approved by a press; sending", file=sys.stderr)
    elif status == "sent":
        print(f"delivered (HTTP {message['http_status']})", file=sys.stderr)
        if message.get("body"):
            print(message["body"])
    elif status == "failed":
        print(f"send failed: {message.get('error')}", file=sys.stderr)
    elif status == "denied":
        print(f"denied: {message.get('reason')}", file=sys.stderr)
    elif status == "error":
        print(f"refused: {message.get('message')}", file=sys.stderr)


def cmd_send(args: argparse.Namespace) -> int:
    from guardd import client

    if args.text is not None:
        payload, text = args.text.encode("utf-8"), True
    elif args.file == "-" or args.stdin == "-":
        payload = sys.stdin.buffer.read()
        try:
            payload.decode("utf-8")
            text = True
        except UnicodeDecodeError:
            text = False
    else:
        try:
            payload = Path(args.file).read_bytes()
        except OSError as exc:
            print(f"guardd: error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILURE
        text = False
    content_type = args.content_type
    if not text and content_type is None and str(args.file).endswith(".wav"):
        content_type = "audio/wav"
    request = client.submit_request(args.to, payload, text=text, content_type=content_type)
    try:
        return client.send(_socket_path(args), request, _print_progress)
    except client.DaemonUnreachable as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return client.EXIT_NO_DAEMON


def cmd_status(args: argparse.Namespace) -> int:
    from guardd import client

    try:
        state = client.status(_socket_path(args))
    except client.DaemonUnreachable as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return client.EXIT_NO_DAEMON
    if args.json:
        print(json.dumps(state, sort_keys=True))
        return 0
    print(f"state:     {state['state']}" + (f" (fault: {state['fault']})" if state.get("fault") else ""))
    armed = state.get("armed")
    print("armed:     " + (f"{armed['id']} {armed['kind']} of {armed['bytes']} bytes to "
                           f"{armed['destination']}, {armed['seconds_left']:g} s left" if armed else "none"))
    sending = state.get("sending")
    if sending:
        print(f"sending:   {sending['id']} to {sending['destination']}")
    print(f"queue:     {len(state.get('queue', []))} waiting")
    for event in state.get("recent_events", []):
        fields = " ".join(f"{k}={v}" for k, v in sorted(event.items()) if k not in ("event", "t", "body"))
        print(f"  {event['event']:<10} {fields}")
    return 0


def _log_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "dir", None):
        return Path(args.dir)
    from guardd.pipeline import log_dir

    return Path(log_dir(_config(args)))


def _local_time(wall_ms: int) -> str:
    return datetime.datetime.fromtimestamp(wall_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def cmd_log(args: argparse.Namespace) -> int:
    from guardd.auditlog import read_records

    directory = _log_dir(args)
    if not directory.is_dir():
        print(f"no log yet in {directory}")
        return 0
    records = [r for r in read_records(directory) if not args.type or r.get("type") in args.type]
    if args.last:
        records = records[-args.last :]
    skip = {"seq", "prev", "h", "type", "wall_ms", "mono_us", "boot"}
    for r in records:
        if args.json:
            print(json.dumps(r, sort_keys=True))
            continue
        fields = " ".join(f"{k}={v}" for k, v in sorted(r.items()) if k not in skip)
        print(f"{r.get('seq', '?'):>6} {_local_time(int(r.get('wall_ms', 0)))} {r.get('type', '?'):<10} {fields}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from guardd.auditlog import verify

    directory = _log_dir(args)
    count, problems = verify(directory)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        print(f"{directory}: {len(problems)} problem(s) in {count} records")
        return EXIT_FAILURE
    print(f"{directory}: ok, {count} records, chain intact")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guardd",
        description="Privacy guard for a Raspberry Pi smart speaker: the wake word on the device, "
        "recordings kept locally, nothing sent without a button press.",
    )
    parser.add_argument("--version", action="version", version=f"guardd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", metavar="PATH", help="config file (default: $GUARDD_CONFIG, "
                       "then /etc/guardd/guardd.yaml, then built-in defaults)")
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "run the daemon until SIGTERM or SIGINT")
    p.add_argument("--simulate", action="store_true",
                   help="draw the LED in the terminal and read button presses from stdin "
                   "(empty line: a press; `hold SECONDS`: hold it down)")

    p = add("replay", cmd_replay, "run the pipeline on a 16 kHz mono 16-bit WAV on audio time")
    p.add_argument("audio", metavar="AUDIO.wav")
    p.add_argument("--json", action="store_true", help="one JSON object per event per line")
    p.add_argument("--press-at", metavar="SECONDS", type=float, nargs="+", default=[],
                   help="press the simulated button at these audio times")

    p = add("send", cmd_send, "ask to send a message or file to a configured destination; "
            "it leaves only after a press of the button")
    p.add_argument("--to", required=True, metavar="NAME", help="a destination named in the config")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", metavar="F", help="a file to upload (- reads standard input)")
    what.add_argument("--text", metavar="T", help="a text message")
    what.add_argument("stdin", nargs="?", choices=["-"], help="- : the payload from standard input")
    p.add_argument("--content-type", metavar="TYPE", help="Content-Type of an upload")
    p.add_argument("--socket", metavar="PATH", help="the control socket (default: socket.path)")
    p.epilog = ("exit status: 0 delivered, 3 denied, 4 timed out, 5 busy, 6 unknown destination, "
                "7 send failed, 8 guardd not reachable, 9 refused otherwise")

    p = add("status", cmd_status, "show what guardd is doing: state, armed request, queue, last events")
    p.add_argument("--json", action="store_true", help="the status as one JSON object")
    p.add_argument("--socket", metavar="PATH", help="the control socket (default: socket.path)")

    p = add("check-config", cmd_check_config, "validate a config file and report every problem")
    p.add_argument("path", nargs="?", metavar="PATH", help="the file to check")

    add("devices", cmd_devices, "list audio input devices for audio.device")

    p = add("log", cmd_log, "show the audit log")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log")
    p.add_argument("--json", action="store_true", help="the records as stored, one per line")
    p.add_argument("--type", action="append", metavar="TYPE", help="only records of this type")
    p.add_argument("-n", "--last", type=int, metavar="N", help="only the last N records")

    p = add("verify", cmd_verify, "check that the audit log is intact")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s" if not args.verbose else "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for line in exc.problems:
            print(f"guardd: error: {line}", file=sys.stderr)
        if os.environ.get("GUARDD_DEBUG"):
            raise
        return EXIT_CONFIG
    except GuarddError as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        if os.environ.get("GUARDD_DEBUG"):
            raise
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130

