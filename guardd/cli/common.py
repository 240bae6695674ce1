"""What the `guardd` commands share: exit codes, how a command finds its config, and what the
owner's reading commands and `mute` fall back to when that config has a problem."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from guardd.config import load as configmod
from guardd.config.reading import read_file, too_deep
from guardd.config.settings import DEFAULT_CONFIG_PATH, Config, SocketConfig
from guardd.errors import ConfigError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `cat` in the same place


def load_config(args: argparse.Namespace) -> Config:
    """The config `--config` names, or the default one (see config/load.py)."""
    return configmod.load(args.config)


def config_path(args: argparse.Namespace) -> Path | None:
    """The file load_config reads (None: the built-in defaults), by the same rule as config/load.py."""
    if args.config:
        return Path(args.config)
    if os.environ.get("GUARDD_CONFIG"):
        return Path(os.environ["GUARDD_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_config_or_salvage(args: argparse.Namespace) -> tuple[Config, bool]:
    """For the commands that only read the state (status, log, verify, history, ...) or only
    mute: the config, or, when it has a problem, what can still be read of it. A typo in the
    config must not lock the owner out of their own log, nor stop them muting.

    With a problem, a warning naming it goes to stderr, and the config is the defaults with the
    file's own `state_dir` and `socket.path` where those can be read. The bool says whether
    this happened (so `mute` may also try the usual socket paths)."""
    try:
        return load_config(args), False
    except ConfigError as exc:
        problems = exc.problems
    path = config_path(args)
    found = _salvage(path) if path is not None else {}
    config = Config()
    if "state_dir" in found:
        config = dataclasses.replace(config, state_dir=found["state_dir"])
    if "socket" in found:
        config = dataclasses.replace(config, socket=SocketConfig(path=found["socket"]))
    first = problems[0] if problems else f"{path}: cannot be used"
    more = f" ({len(problems)} problems; `guardd check-config {path}` lists them all)" if len(problems) > 1 else ""
    read = " and ".join(k for k in ("state_dir", "socket") if k in found)
    source = f"{read} as the file gives, the rest" if read else "everything"
    print(f"guardd: warning: {first}{more}. Going on with {source} at the defaults: state_dir "
          f"{config.state_dir}, socket {config.socket.path}", file=sys.stderr)
    return config, True


def _salvage(path: Path) -> dict[str, str]:
    """`state_dir` and `socket.path` from a config that does not load, if it is YAML that has
    them as strings. Read with the loader's own bounds (a regular file, at most 1 MiB, nesting
    measured first); anything else is left at the defaults."""
    try:
        text = read_file(path).decode("utf-8")
        if too_deep(text) is not None:
            return {}
        data: Any = yaml.safe_load(text)
    except (ConfigError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, str] = {}
    state_dir = data.get("state_dir")
    if isinstance(state_dir, str) and state_dir:
        found["state_dir"] = state_dir
    socket = data.get("socket")
    if isinstance(socket, dict) and isinstance(socket.get("path"), str) and socket["path"]:
        found["socket"] = socket["path"]
    return found


def state_and_log_dirs(args: argparse.Namespace, config: Config | None = None) -> tuple[Path, Path]:
    """(state_dir, log directory) for the reading commands. `--dir` names a log directory; its
    state is the directory around it (recordings/ and keys/ beside log/, as guardd lays them out
    and as `guardd export` copies them), so every command given --dir reads one state. Else the
    state_dir of `config`, or of the config the arguments name."""
    if getattr(args, "dir", None):
        log = Path(args.dir)
        return log.resolve().parent, log
    if config is None:
        config, _ = load_config_or_salvage(args)
    return config.state_path, config.state_path / "log"
