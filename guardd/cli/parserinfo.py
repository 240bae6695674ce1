"""The command line as data, read from main.py's argument parser: each command with its usage,
what it does and its arguments. The docs' command table, the man page and the shell completion
are all made from this, so none of them can drift from the parser."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

Completes = Literal["file", "dir", "words", "none"]

FILE_METAVARS = ("PATH", "FILE", "F", "FILE.wav", "AUDIO.wav")  # what a shell completes as a file
COMMON = ("-h", "--help", "--config")  # every command takes these; shown once, not per command


@dataclass(frozen=True)
class Argument:
    flags: tuple[str, ...]  # ("-n", "--last"); () for a positional
    metavar: str  # what the value is called; "" for a flag that takes none
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False

    @property
    def completes(self) -> Completes:
        if self.choices:
            return "words"
        if self.metavar == "DIR":
            return "dir"
        if self.metavar in FILE_METAVARS:
            return "file"
        return "none"

    @property
    def takes_value(self) -> bool:
        return bool(self.metavar)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    usage: str  # "guardd run [--simulate] ..." without the options every command takes
    arguments: tuple[Argument, ...]  # its own, without COMMON
    epilog: str = ""

    @property
    def options(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if a.flags)

    @property
    def positionals(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if not a.flags)

    def actions(self) -> list[tuple[str, str]]:
        """A positional with fixed words (`log init`) is a command of its own: (usage, help)."""
        return [(f"guardd {self.name} {word}", a.help) for a in self.positionals for word in a.choices]


def _argument(action: argparse.Action) -> Argument:
    takes = action.nargs != 0
    metavar = action.metavar or (action.dest.upper() if takes else "")
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    choices = tuple(str(c) for c in action.choices) if action.choices else ()
    return Argument(tuple(action.option_strings), str(metavar) if takes else "", action.help or "", choices,
                    bool(action.required))


def _usage(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=10_000)  # one line, however long
    formatter.add_usage(None, actions, [], prefix="")
    return " ".join(formatter.format_help().split())


def commands(parser: argparse.ArgumentParser) -> list[Command]:
    """Every command of `parser` (main.build_parser()), in the order they were added."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help or "" for c in sub._choices_actions}
    found = []
    for name, p in sub.choices.items():
        own = [a for a in p._actions if not set(a.option_strings) & set(COMMON)]
        found.append(Command(name, helps.get(name, p.description or ""), _usage(p, own),
                             tuple(_argument(a) for a in own), p.epilog or ""))
    return found


def global_options(parser: argparse.ArgumentParser) -> tuple[Argument, ...]:
    """The options before the command (--version, --verbose, --help)."""
    return tuple(_argument(a) for a in parser._actions if a.option_strings)
