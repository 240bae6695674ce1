"""Reading a config file without trusting it: only a regular file of at most MAX_CONFIG_BYTES
(never a FIFO to wait on), and YAML nesting measured before anything recursive parses it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import yaml

from guardd.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few kilobytes
MAX_DEPTH = 20  # lists and mappings inside each other; guardd's own go four deep


def line_at(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def too_deep(text: str) -> int | None:
    """The line where nesting first passes MAX_DEPTH, or None. Reads events, which PyYAML's
    parser makes without recursion, so a file nesting 5,000 deep cannot blow the stack as
    composing it would; any other YAML error is left for the real parse to report."""
    loader = yaml.SafeLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    return None


def read_file(path: Path) -> bytes:
    """The config's bytes: a regular file (a symlink to one is fine), never a FIFO to wait on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file; pass --config PATH to a guardd.yaml"]) from None
    except OSError as exc:
        fix = "make it readable by the user guardd runs as" if exc.errno == errno.EACCES else "check the path"
        raise ConfigError([f"{path}: cannot read the config: {exc.strerror}; {fix}"]) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError([f"{path}: is a directory; pass --config PATH to a guardd.yaml file"])
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError([f"{path}: is not a regular file; pass --config PATH to a guardd.yaml file"])
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError([f"{path}: is {info.st_size} bytes; a config is a few kilobytes "
                               f"(at most {MAX_CONFIG_BYTES})"])
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config: {exc.strerror}"]) from None
    finally:
        os.close(fd)
