"""The config keys as data, read from the settings dataclasses themselves: each key's dotted
name, what it means (the comment beside or above its field in the source), the kind of value it
takes, its limits (in the words of its check) and its default. docs/configuration.md's table is
made from this, so a key added to a settings class is in the docs with no more work."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import math
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from guardd.config.checks import CHECKS
from guardd.config.load import _type_name, keys_of
from guardd.config.settings import Config, DestinationConfig

PROBE = "\x00probe"  # a string no check accepts; a message that quotes it says nothing general

TYPE_NAMES = {  # the few kinds of value load.py's messages do not name
    "tuple[tuple[str, str], ...]": "a mapping of header names to values, or to {env: NAME} / {file: PATH}",
    "bytes": "{file: PATH} or {env: NAME} holding a key: base64 of 32 bytes, or null",
}


@dataclass(frozen=True)
class Key:
    name: str  # dotted, as in the file: wake.threshold, destinations.NAME.url
    meaning: str
    kind: str  # the kind of value, in the loader's words
    limits: str  # from its check, or ""
    default: str  # as YAML, or a sentence for one computed at start


@lru_cache(maxsize=None)
def _comments(path: str) -> tuple[dict[int, str], dict[int, str]]:
    """(line -> the comment ending it, line -> a line that is a comment alone) of a source file."""
    text = Path(path).read_text(encoding="utf-8")
    trailing: dict[int, str] = {}
    alone: dict[int, str] = {}
    lines = text.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            row = token.start[0]
            comment = token.string.lstrip("#").strip()
            (alone if lines[row - 1].strip().startswith("#") else trailing)[row] = comment
    return trailing, alone


def field_comments(cls: type) -> dict[str, str]:
    """Each field of a dataclass with the comment beside it, or else the comment lines just above."""
    path = inspect.getsourcefile(cls)
    assert path is not None
    trailing, alone = _comments(path)
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    found = {}
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            line = stmt.lineno
            if stmt.end_lineno in trailing:
                found[stmt.target.id] = trailing[stmt.end_lineno]
                continue
            above = []
            while line - 1 in alone:
                line -= 1
                above.insert(0, alone[line])
            found[stmt.target.id] = " ".join(above)
    return found


def yaml_value(value: Any) -> str:
    if value is None or value == b"":  # (no key: esphome.encryption_key)
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) for v in value):
            return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value) + "}"
        return "[" + ", ".join(yaml_value(v) for v in value) + "]" if value else "[]"
    if value == "":
        return '""'
    return str(value)


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        if str(f.type).startswith("tuple[tuple[") and f.default == ():
            return "{}"
        return yaml_value(f.default)
    if f.default_factory is not dataclasses.MISSING:  # computed when guardd starts: its rule
        doc = inspect.getdoc(f.default_factory) or ""
        return doc.split("\n\n")[0].replace("\n", " ").rstrip(".")
    return "(required)"


def _limits(key: str, tp: str) -> str:
    """The rule of a key's check, in its own words: what it says of a value far out of range."""
    check = CHECKS.get(key)
    if check is None:
        return ""
    probe: Any = {"int": -(10**12), "float": -math.inf, "str": PROBE, "str | None": PROBE}.get(tp)
    if probe is None:
        return ""
    said = (check(probe) or "").split(" (got ")[0]
    if not said.startswith("must be ") or PROBE in said or repr(PROBE) in said:
        return ""  # (a message about this value only, such as a URL's "has no host")
    return said.removeprefix("must be ")


def keys(cls: type = Config, prefix: str = "") -> Iterator[Key]:
    """Every key of a settings class and its sections, in the order of their fields."""
    comments = field_comments(cls)
    for name, f in keys_of(cls).items():
        full = f"{prefix}{name}"
        if full == "destinations":
            yield from keys(DestinationConfig, "destinations.NAME.")
            continue
        if dataclasses.is_dataclass(f.default):
            yield from keys(type(f.default), f"{full}.")
            continue
        tp = str(f.type)
        generic = full.replace("destinations.NAME.", "destinations.*.")
        yield Key(full, comments.get(name, ""), TYPE_NAMES.get(tp, _type_name(tp)), _limits(generic, tp), _default(f))
