"""The esphome: section's own rules: where its key comes from, and how it sits with the other
keys (one link serves Home Assistant at a time)."""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import yaml

from guardd.config.destinations import read_secret
from guardd.config.problems import Problems
from guardd.config.settings import Config
from guardd.esphome.keys import decode_key

STORE = ("guardd esphome-key | sudo install -m 600 -o guardd /dev/stdin /etc/guardd/esphome.key, "
         "then encryption_key: {file: /etc/guardd/esphome.key}")
EXTRA = ("aioesphomeapi", "nacl")  # what `pip install 'guardd[esphome]'` brings
INSTALL = ("pip install 'guardd[esphome]' (on a Pi installed by scripts/install.sh: sudo bash "
           "scripts/install.sh --esphome)")


def missing_extra() -> list[str]:
    """The modules of the esphome extra that are not installed."""
    return [m for m in EXTRA if importlib.util.find_spec(m) is None]


def load_encryption_key(node: yaml.Node, loader: yaml.SafeLoader,
                        problem: Callable[[yaml.Node, str, str], None]) -> bytes:
    """The key's bytes from {file: PATH} or {env: NAME}; b"" for null. A key written inline is
    refused: the config is a file others may read or copy."""
    key = "esphome.encryption_key"
    try:
        raw: Any = loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problem(node, key, f"not a plain YAML value: {getattr(exc, 'problem', exc)}")
        return b""
    if raw is None:
        return b""
    if isinstance(raw, str):
        problem(node, key, f"is written inline, where anyone who reads the config can take it; keep it in a "
                           f"file only guardd can read: {STORE}")
        return b""
    try:
        text = read_secret(raw)
        if text is None:
            raise ValueError("must be {file: /path/readable/only/by/guardd} or {env: VARIABLE}")
        return decode_key(text)
    except ValueError as exc:
        problem(node, key, str(exc))
        return b""


def esphome_checks(config: Config, node: yaml.Node, problems: Problems,
                   find: Callable[..., yaml.Node | None]) -> None:
    esphome = config.esphome
    if esphome.listen is not None and not problems.about("esphome"):
        if not esphome.encryption_key:
            problems.add(find(node, "esphome", "listen"), "esphome.encryption_key",
                         f"is required when esphome.listen is set: Home Assistant must prove it; {STORE}")
        missing = missing_extra()
        if missing:
            problems.add(find(node, "esphome", "listen"), "esphome.listen",
                         f"needs {', '.join(missing)}: {INSTALL}")
    if esphome.listen is None:
        for key in ("encryption_key", "allow", "advertise"):
            if getattr(esphome, key):
                problems.warn(find(node, "esphome", key), f"esphome.{key}", "does nothing while esphome.listen is null")
    if (esphome.listen is not None and config.wyoming.listen is not None
            and not problems.about("esphome.listen", "wyoming.listen")):
        problems.add(find(node, "esphome", "listen"), "esphome.listen",
                     "and wyoming.listen are both set; one link serves Home Assistant at a time: set "
                     "wyoming.listen: null for the encrypted ESPHome link, or esphome.listen: null")
