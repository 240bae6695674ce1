"""`man guardd`: the man page, in roff, made from the argument parser (parserinfo.py) and
main.py's own words on exit status, so it says what the installed guardd does."""

from __future__ import annotations

from guardd import __version__
from guardd.cli.parserinfo import Argument, commands, global_options

ENVIRONMENT = (
    ("GUARDD_CONFIG", "the config file when --config is not given (before /etc/guardd/guardd.yaml)"),
    ("GUARDD_SOCKET", "the control socket for send, status and mute (before the config's socket.path)"),
    ("GUARDD_DEBUG", "set to 1: an error prints its traceback too"),
    ("STATE_DIRECTORY, RUNTIME_DIRECTORY", "set by systemd: the default state_dir and socket directory"),
    ("XDG_STATE_HOME, XDG_RUNTIME_DIR", "as a user without a config: where the state and the socket go"),
)
FILES = (
    ("/etc/guardd/guardd.yaml", "the config (config/guardd.yaml in the source documents every key)"),
    ("/var/lib/guardd", "the state: log/ (the audit log), recordings/, keys/, outbox/"),
    ("/run/guardd/guardd.sock", "the control socket of the service"),
)


def roff(text: str) -> str:
    """Text safe in a roff line: backslashes and hyphens escaped, no line starting with a control
    character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _option(a: Argument) -> list[str]:
    names = ", ".join(f"\\fB{roff(f)}\\fR" + (f" \\fI{roff(a.metavar)}\\fR" if a.metavar else "") for f in a.flags)
    return [".TP", names or f"\\fI{roff(a.metavar)}\\fR", roff(a.help) or "."]


def _exit_status() -> str:
    from guardd.cli import main

    doc = main.__doc__ or ""
    said = doc[doc.index("Exit status:"):] if "Exit status:" in doc else ""
    return " ".join(said.removeprefix("Exit status:").split())


def man_page() -> str:
    from guardd.cli.main import build_parser

    parser = build_parser()
    found = commands(parser)
    lines = [
        f'.TH GUARDD 1 "" "guardd {roff(__version__)}" "User Commands"',
        ".SH NAME",
        "guardd \\- " + roff(parser.description or ""),
        ".SH SYNOPSIS",
        "\\fBguardd\\fR [\\fB\\-v\\fR] \\fICOMMAND\\fR [\\fB\\-\\-config\\fR \\fIPATH\\fR] [\\fIARGUMENTS\\fR]",
        ".SH DESCRIPTION",
        "guardd captures the microphone, hears the wake word on the device, keeps what follows "
        "locally, and lets nothing leave without a press of its button: each request is announced "
        "on the speaker and approved by a fresh press, and every step is written first to an "
        "append\\-only, hash\\-chained, sealed log.",
        ".SH OPTIONS",
    ]
    for a in global_options(parser):
        lines += _option(a)
    lines += [".TP", "\\fB\\-\\-config\\fR \\fIPATH\\fR",
              "(every command) the config file; default $GUARDD_CONFIG, then /etc/guardd/guardd.yaml, "
              "then the built\\-in defaults", ".SH COMMANDS"]
    for c in found:
        lines += [".SS " + roff(c.usage), roff(c.help)]
        for usage, help_ in c.actions():
            lines += [".PP", f"\\fB{roff(usage)}\\fR: {roff(help_.split(': ', 1)[-1])}"]
        for a in c.arguments:
            lines += _option(a)
        if c.epilog:
            lines += [".PP", roff(c.epilog)]
    lines += [".SH EXIT STATUS", roff(_exit_status()), ".SH ENVIRONMENT"]
    for name, meaning in ENVIRONMENT:
        lines += [".TP", f"\\fB{roff(name)}\\fR", roff(meaning)]
    lines += [".SH FILES"]
    for name, meaning in FILES:
        lines += [".TP", f"\\fI{roff(name)}\\fR", roff(meaning)]
    lines += [".SH SEE ALSO", "The docs/ pages of the guardd source: commands.md, configuration.md, log.md, "
              "laptop.md, install\\-pi.md; \\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)."]
    return "\n".join(lines) + "\n"
