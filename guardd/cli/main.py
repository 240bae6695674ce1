"""The owner's command line. Errors print `guardd: error: message` and exit non-zero; set
GUARDD_DEBUG=1 to get the traceback as well.

Exit status: 0 success, 1 failure (a problem found, or an error named on stderr), 2 usage,
78 a bad config (EX_CONFIG; the systemd unit does not restart on it), 141 the reader of the
output went away (`guardd log | head`), quietly, as a shell reports it for other tools.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Callable

# SHA-256 and HMAC come from Python's own hash code, not OpenSSL's: hashlib's OpenSSL module maps
# libcrypto, 3.2 MB of a Pi Zero's memory, and for log records and one utterance at a time the
# speed is the same. (Only when Python has its own SHA-256 built in; an HTTPS send still loads
# OpenSSL through ssl, when it happens.) This must run before anything imports hashlib.
if "_hashlib" not in sys.modules and any(importlib.util.find_spec(m) for m in ("_sha2", "_sha256")):
    sys.modules["_hashlib"] = None  # makes `import _hashlib` fail, so hashlib and hmac fall back

from guardd import __version__  # noqa: E402
from guardd.cli.common import (  # noqa: E402
    EXIT_BROKEN_PIPE, EXIT_CONFIG, EXIT_FAILURE, EXIT_USAGE, load_config,
)
from guardd.config import load as configmod  # noqa: E402
from guardd.config.settings import Config  # noqa: E402
from guardd.auditlog.format import RECORD_TYPES  # noqa: E402
from guardd.errors import ConfigError, GuarddError  # noqa: E402


def _command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """Command `name` of guardd.cli.`module`, imported only when it runs, as `run` imports the
    daemon: so the daemon does not hold the other commands' code (about 1 MB; docs/performance.md,
    "Memory of the running daemon")."""

    def command(args: argparse.Namespace) -> int:
        run: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(f"guardd.cli.{module}"), name)
        return run(args)

    command.__name__ = name
    return command


cmd_log, cmd_verify, cmd_export = (_command("log_commands", n) for n in ("cmd_log", "cmd_verify", "cmd_export"))
cmd_mute, cmd_send, cmd_status = (_command("socket_commands", n) for n in ("cmd_mute", "cmd_send", "cmd_status"))
cmd_history, cmd_recordings, cmd_report = (
    _command("view_commands", n) for n in ("cmd_history", "cmd_recordings", "cmd_report"))


def cmd_run(args: argparse.Namespace) -> int:
    from guardd.cli.daemon import run

    microphone = Path(args.microphone) if args.microphone else None
    if args.loop and microphone is None:
        print("guardd run: --loop goes with --microphone FILE.wav", file=sys.stderr)
        return EXIT_USAGE
    return run(load_config(args), simulate=args.simulate, microphone=microphone, loop=args.loop)


def cmd_replay(args: argparse.Namespace) -> int:
    from guardd.cli.replay import replay

    return replay(load_config(args), Path(args.audio), json_out=args.json, press_at=args.press_at)


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.path and args.config and Path(args.path) != Path(args.config):
        print(f"guardd check-config: two files given ({args.config} with --config, {args.path} as PATH); "
              "name the one to check once", file=sys.stderr)
        return EXIT_USAGE
    cfg = configmod.load(args.path or args.config)
    from guardd.listen.features import resolve_model

    from guardd.listen.verifier import load_all

    for model in cfg.wake.models:
        resolve_model(model)  # a missing model file is a config problem the owner can fix now
    load_all(cfg.state_path, cfg.wake.verify)
    warnings = list(cfg.warnings)
    if cfg.wyoming.address is not None:
        from guardd.wyoming.link import not_here

        elsewhere = not_here(cfg.wyoming.address[0])
        if elsewhere is not None:
            warnings.append(f"{cfg.source}: wyoming.listen: {elsewhere}: guardd cannot listen there; set it "
                            "to this device's LAN address (`hostname -I`) or 0.0.0.0")
    for warning in warnings:
        print(f"guardd: warning: {warning}", file=sys.stderr)
    print(f"{cfg.source}: ok" + (f", with {len(warnings)} warning(s)" if warnings else ""))
    return 0


def cmd_esphome_key(args: argparse.Namespace) -> int:
    from guardd.config.esphome import STORE
    from guardd.esphome.keys import new_key

    print(new_key())
    if sys.stdout.isatty():  # (piped into install, the key alone goes down the pipe)
        print(f"guardd: store it where only guardd can read it: {STORE}; give Home Assistant the same "
              "key when it asks (sudo cat /etc/guardd/esphome.key)", file=sys.stderr)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from guardd.cli.tune import cmd_tune as tune

    return tune(args)


def cmd_devices(args: argparse.Namespace) -> int:
    from guardd.sounddevices import list_devices

    inputs, outputs = list_devices("input"), list_devices("output")
    for kind, short, devices, key, none in (
        ("input", "in", inputs, "audio.device", "no input devices found: plug in a USB microphone or check `arecord -l`"),
        ("output", "out", outputs, "audio.output_device", "no output devices found: plug in a speaker or check `aplay -l`"),
    ):
        print(f"{kind} devices (for {key}):" if devices else none)
        for d in devices:
            mark = ">" if d["default"] else " "
            print(
                f"{mark} {d['index']:3d} {d['name']}, {d['hostapi']} "
                f"({d['channels']} {short}, {d['default_samplerate']:g} Hz)"
            )
    print("\nSet audio.device and audio.output_device to an index or a part of a name above; > marks the default.")
    return 0 if inputs else EXIT_FAILURE


def cmd_doctor(args: argparse.Namespace) -> int:
    from guardd.cli.doctor import Result, run_checks

    results: list[Result] = []
    try:
        cfg: Config | None = load_config(args)
        results.append(Result(True, "config", cfg.source))
    except ConfigError as exc:
        cfg = None
        results.append(Result(False, "config", "; ".join(exc.problems), "fix the config: guardd check-config"))
    results += run_checks(cfg, hardware=args.hardware)
    for r in results:
        print(f"{r.mark:<4}  {r.name}: {r.detail}")
        if not r.ok:
            print(f"      fix: {r.fix}")
    failed = sum(not r.ok for r in results)
    skips = sum(r.skipped for r in results)
    print(f"\n{len(results) - failed - skips} ok, " + (f"{skips} skipped, " if skips else "") + f"{failed} failed")
    return EXIT_FAILURE if failed else 0  # a skipped check is nothing wrong


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
    p.add_argument("--microphone", metavar="FILE.wav", help="a 16 kHz mono 16-bit WAV stands in for the "
                   "microphone, in real time from when the microphone opens (after an unmute), then silence")
    p.add_argument("--loop", action="store_true", help="with --microphone: play the file again from its start")

    p = add("replay", cmd_replay, "run the pipeline on a 16 kHz mono 16-bit WAV on audio time")
    p.add_argument("audio", metavar="AUDIO.wav", help="the audio to run, 16 kHz mono 16-bit")
    p.add_argument("--json", action="store_true", help="one JSON object per event per line")
    p.add_argument("--press-at", metavar="SECONDS", type=float, action="append", default=[],
                   help="press the simulated button at these audio times")

    p = add("send", cmd_send, "ask to send a message or file to a configured destination; "
            "it leaves only after a press of the button")
    p.add_argument("--to", required=True, metavar="NAME", help="a destination named in the config")
    p.add_argument("source", nargs="?", metavar="FILE", help="a file to upload (sent as its bytes, described "
                   "by its size), or - to upload standard input")
    p.add_argument("--file", metavar="F", help="a file to upload (- uploads standard input), the same as FILE")
    p.add_argument("--text", metavar="T", help="a text message, read out before you press (- reads it "
                   "from standard input, which must be UTF-8)")
    p.add_argument("--content-type", metavar="TYPE", help="Content-Type of an upload")
    p.add_argument("--socket", metavar="PATH", help="the control socket (default: socket.path)")
    p.epilog = ("exit status: 0 delivered, 3 denied, 4 timed out, 5 busy, 6 unknown destination, "
                "7 send failed, 8 guardd not reachable, 9 refused otherwise")

    p = add("mute", cmd_mute, "close the microphone now; only a long press of the button reopens it")
    p.add_argument("--socket", metavar="PATH", help="the control socket (default: socket.path)")

    p = add("status", cmd_status, "show what guardd is doing: state, armed request, queue, last events")
    p.add_argument("--json", action="store_true", help="the status as one JSON object")
    p.add_argument("--socket", metavar="PATH", help="the control socket (default: socket.path)")

    p = add("check-config", cmd_check_config, "validate a config file and report every problem")
    p.add_argument("path", nargs="?", metavar="PATH", help="the file to check")

    p = add("tune", cmd_tune, "say the wake word a few times: see how your voice scores, and get a "
            "threshold that wakes on every take")
    p.add_argument("--takes", nargs="+", metavar="FILE", help="16 kHz mono 16-bit WAV takes instead of recording")
    p.add_argument("--count", type=int, default=5, metavar="N", help="takes to record (default 5)")
    p.add_argument("--simulate", action="store_true", help="Enter on stdin is the press (a laptop's microphone)")
    p.add_argument("--model", metavar="NAME", help="the wake model to tune (default: the one your takes score highest on)")
    p.add_argument("--write", action="store_true", help="put the suggested threshold into the config file")

    p = add("esphome-key", cmd_esphome_key, "print a new encryption key for the ESPHome link (esphome.encryption_key)")
    p.epilog = ("store it with: guardd esphome-key | sudo install -m 600 -o guardd /dev/stdin "
                "/etc/guardd/esphome.key, then set esphome.encryption_key: {file: /etc/guardd/esphome.key}")

    add("devices", cmd_devices, "list audio input and output devices for audio.device and audio.output_device")

    p = add("doctor", cmd_doctor, "check everything guardd needs, one line per check with the fix")
    p.add_argument("--hardware", action="store_true",
                   help="also blink the LED and wait for a press of the button")

    p = add("log", cmd_log, "show the audit log (`guardd log init`: make its sealing key)")
    p.add_argument("action", nargs="?", choices=["init"], metavar="init",
                   help="init: make the sealing key and print the verification key once")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log")
    p.add_argument("--json", action="store_true", help="the records as stored, one per line")
    p.add_argument("--type", action="append", metavar="TYPE", choices=RECORD_TYPES,
                   help=f"only records of this type (repeatable): {', '.join(RECORD_TYPES)}")
    p.add_argument("--since", metavar="TIME", help="from this local time (2026-11-03T14:00) or 2h, 7d ago")
    p.add_argument("--until", metavar="TIME", help="before this local time or 30m ago")
    p.add_argument("-n", "--last", type=_count, metavar="N", help="only the last N records (0: none)")
    p.add_argument("-f", "--follow", action="store_true", help="keep showing new records")
    p.add_argument("--head", action="store_true", help="print the head (SEQ:H) to note elsewhere")

    p = add("verify", cmd_verify, "check that the audit log is intact; exit 0 only if it is")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log")
    p.add_argument("--key", action="append", metavar="K",
                   help="a verification key (or a file of them) from `guardd log init`: check the seals")
    p.add_argument("--head", metavar="SEQ:H", help="a head noted earlier with `guardd log --head`")

    p = add("export", cmd_export, "copy your recordings and the log, with a verification report, "
            "to a local directory")
    p.add_argument("out", metavar="DIR", help="a new or empty directory")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log")
    p.add_argument("--key", action="append", metavar="K", help="a verification key to check the seals")

    p = add("history", cmd_history, "one line per request: when, who asked, where to, what and how much, "
            "whether it was announced, the decision and the result")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log")
    p.add_argument("--json", action="store_true", help="one JSON object per request per line")
    p.add_argument("--since", metavar="TIME", help="requests from this local time (2026-11-03T14:00) or 2h, 7d ago")
    p.add_argument("-n", "--last", type=_count, metavar="N", help="only the last N requests")

    p = add("recordings", cmd_recordings, "the recordings kept on this device: length, when kept, when "
            "retention deletes them, and where they were sent")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log (its "
                   "recordings/ beside it)")
    p.add_argument("--json", action="store_true", help="one JSON object per recording per line")

    p = add("report", cmd_report, "write one self-contained HTML page of a day: the timeline, the "
            "requests, what is kept, and whether the log verifies")
    p.add_argument("--html", required=True, metavar="FILE", help="the page to write")
    p.add_argument("--day", metavar="YYYY-MM-DD", help="the local day to show (default: today)")
    p.add_argument("--dir", metavar="DIR", help="a log directory instead of <state_dir>/log")
    p.add_argument("--key", action="append", metavar="K", help="a verification key to check the seals")
    return parser


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count of records (0, 1, 2, ...)")
    return n


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not at exit
        return status
    except BrokenPipeError:  # `guardd log | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush is quiet too
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
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
