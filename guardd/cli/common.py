"""What the `guardd` commands share: exit codes and how a command finds its config."""

from __future__ import annotations

import argparse

from guardd.config import load as configmod
from guardd.config.settings import Config

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `cat` in the same place


def load_config(args: argparse.Namespace) -> Config:
    """The config `--config` names, or the default one (see config/load.py)."""
    return configmod.load(args.config)
