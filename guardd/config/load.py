"""The config loader: reads the owner's YAML file, checks everything at once and names the file,
line and key of every problem. Unknown keys are errors, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import reprlib
from pathlib import Path
from typing import Any

import yaml

from guardd.config.checks import CHECKS
from guardd.config.crosschecks import cross_checks
from guardd.config.destinations import load_headers
from guardd.config.esphome import load_encryption_key
from guardd.config.problems import Problems
from guardd.config.reading import MAX_DEPTH, line_at, read_file, too_deep
from guardd.config.settings import DEFAULT_CONFIG_PATH, ESPHOME, WYOMING, Config, DestinationConfig
from guardd.errors import ConfigError

NOT_KEYS = ("source", "warnings")  # fields the loader fills in, never keys in the file


def keys_of(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """The fields of a section that are keys in the file (a destination's name is its key)."""
    filled = NOT_KEYS + (("name",) if cls is DestinationConfig else ())
    return {f.name: f for f in dataclasses.fields(cls) if f.name not in filled}


# A value quoted in a message is cut short: YAML aliases can make a small file hold a list whose
# full repr is gigabytes ("billion laughs").
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 6, 6, 80, 80


def _type_name(tp: Any) -> str:
    return {
        "bool": "true or false",
        "int": "a whole number",
        "float": "a number",
        "str": "a string",
        "tuple[str, ...]": "a list of strings",
        "str | int | None": "a device name, an index or null",
        "str | None": "a string or null",
        "tuple[tuple[str, float], ...]": "a mapping of model names to numbers",
    }.get(str(tp), str(tp))


def _convert(tp: str, value: Any) -> tuple[bool, Any]:
    """Check a YAML value against a field's annotation; bools are never numbers here."""
    if tp == "bool":
        return isinstance(value, bool), value
    if tp == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            return False, value
        try:
            return True, float(value)
        except OverflowError:  # an integer too large for a float: let the range check name it
            return True, math.inf if value > 0 else -math.inf
    if tp == "str":
        return isinstance(value, str) and value != "", value
    if tp == "tuple[str, ...]":
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        return ok, tuple(value) if ok else value
    if tp == "tuple[tuple[str, float], ...]":  # a mapping of names to numbers
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and k and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in value.items())
        return ok, tuple((k, float(v)) for k, v in value.items()) if ok else value
    if tp == "str | None":
        return value is None or (isinstance(value, str) and value != ""), value
    if tp == "str | int | None":
        ok = value is None or (isinstance(value, (str, int)) and not isinstance(value, bool))
        return ok, value
    raise AssertionError(f"no conversion for {tp}")


def _load_section(
    cls: type, node: yaml.Node, prefix: str, loader: yaml.SafeLoader, problems: Problems
) -> Any:
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, prefix, "must be a mapping of keys to values")
        return cls()
    fields = keys_of(cls)
    values: dict[str, Any] = {}
    seen: set[str] = set()  # every key met, also those whose value was rejected
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "(a list or mapping)"
        full = f"{prefix}.{key}" if prefix else key
        if key in seen:
            problems.add(key_node, full, "appears twice")
            continue
        seen.add(key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            problems.add(key_node, full, f"unknown key (known keys here: {known})")
            continue
        tp = str(fields[key].type)
        if full == "destinations":
            values[key] = _load_destinations(value_node, loader, problems)
            continue
        if full == "esphome.encryption_key":
            values[key] = load_encryption_key(value_node, loader, problems.add)
            continue
        if tp == "tuple[tuple[str, str], ...]":  # headers
            values[key] = load_headers(value_node, full, loader, problems.add, problems.warn)
            continue
        if dataclasses.is_dataclass(fields[key].default):
            values[key] = _load_section(type(fields[key].default), value_node, full, loader, problems)
            continue
        try:
            value = loader.construct_object(value_node, deep=True)
        except yaml.YAMLError as exc:  # e.g. a !!python/object tag, which safe loading refuses
            problems.add(value_node, full, f"not a plain YAML value: {getattr(exc, 'problem', exc)}")
            continue
        ok, converted = _convert(tp, value)
        if not ok:
            problems.add(value_node, full, f"must be {_type_name(tp)} (got {_SHORT.repr(value)})")
            continue
        check = CHECKS.get(_generic(full))
        message = check(converted) if check else None
        if message:
            problems.add(value_node, full, message)
            continue
        values[key] = converted
    return cls(**values)


def _generic(key: str) -> str:
    """destinations.stt.url -> destinations.*.url, the key CHECKS knows."""
    parts = key.split(".")
    return ".".join(["destinations", "*", *parts[2:]]) if parts[0] == "destinations" and len(parts) > 2 else key


def _load_destinations(
    node: yaml.Node, loader: yaml.SafeLoader, problems: Problems
) -> tuple[DestinationConfig, ...]:
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, "destinations", "must be a mapping of names to destinations")
        return ()
    found: list[DestinationConfig] = []
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else ""
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            problems.add(key_node, "destinations", f"{name!r} is not a name (letters, digits, - and _)")
            continue
        if name in (WYOMING, ESPHOME):
            link = "satellite link" if name == WYOMING else "encrypted link"
            problems.add(key_node, f"destinations.{name}", f"is reserved for Home Assistant's {link} "
                         f"(the {name}: section); give this destination another name")
            continue
        if any(d.name == name for d in found):
            problems.add(key_node, f"destinations.{name}", "appears twice")
            continue
        before = len(problems.lines)
        dest = _load_section(DestinationConfig, value_node, f"destinations.{name}", loader, problems)
        if not dest.url and len(problems.lines) == before:
            problems.add(key_node, f"destinations.{name}.url", "is required")
        found.append(dataclasses.replace(dest, name=name))
    return tuple(found)


def parse(text: str, source: str) -> Config:
    """Parse and validate a config text; raise ConfigError listing every problem.

    A file with nothing in it but comments is every setting at its default."""
    problems = Problems(source)
    try:
        loader = yaml.SafeLoader(text)  # the reader refuses control characters here
    except yaml.reader.ReaderError as exc:  # a NUL, say
        raise ConfigError([f"{source}:{line_at(text, exc.position)}: the character "
                           f"U+{exc.character:04X} may not appear in a config; remove it"]) from None
    deep = too_deep(text)
    if deep is not None:
        loader.dispose()
        raise ConfigError([f"{source}:{deep}: lists or mappings nest more than {MAX_DEPTH} deep; "
                           "a guardd config needs four at most"])
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark else ""
            raise ConfigError(
                [f"{source}{line}: not valid YAML: {exc.problem or exc.context}"]
            ) from None
        if root is None:
            return Config(source=source)
        config = _load_section(Config, root, "", loader, problems)
        cross_checks(config, root, problems)
    finally:
        loader.dispose()
    if problems.lines:
        raise ConfigError(problems.lines)
    return dataclasses.replace(config, source=source, warnings=tuple(problems.warnings))


def load(path: str | Path | None) -> Config:
    """Load the config at `path`; with None, the system config if it exists, else defaults."""
    if path is None:
        env = os.environ.get("GUARDD_CONFIG")
        if env:
            path = env
        elif DEFAULT_CONFIG_PATH.exists():
            path = DEFAULT_CONFIG_PATH
        else:
            return Config()
    path = Path(path)
    data = read_file(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                           "save the file as UTF-8"]) from None
    return parse(text, str(path))
