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
from guardd.config.destinations import load_headers
from guardd.config.reading import MAX_DEPTH, line_at, read_file, too_deep
from guardd.config.settings import DEFAULT_CONFIG_PATH, WYOMING, Config, DestinationConfig
from guardd.errors import ConfigError

NOT_KEYS = ("source", "warnings")  # fields the loader fills in, never keys in the file


def keys_of(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """The fields of a section that are keys in the file (a destination's name is its key)."""
    filled = NOT_KEYS + (("name",) if cls is DestinationConfig else ())
    return {f.name: f for f in dataclasses.fields(cls) if f.name not in filled}


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []
        self.warnings: list[str] = []
        self._keys: set[str] = set()  # the dotted keys a problem was found at

    def _where(self, node: yaml.Node | None) -> str:
        return f"{self.source}:{node.start_mark.line + 1}" if node is not None else self.source

    def add(self, node: yaml.Node | None, key: str, message: str) -> None:
        self._keys.add(key)
        where = self._where(node)
        self.lines.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")

    def warn(self, node: yaml.Node | None, key: str, message: str) -> None:
        self.warnings.append(f"{self._where(node)}: {key}: {message}")

    def about(self, *keys: str) -> bool:
        """Whether a problem was already found at one of `keys`, inside it or around it (its
        value then stands at the default, and a cross-check on it would be about that)."""
        return any(k == bad or k.startswith(bad + ".") or bad.startswith(k + ".") or not bad
                   for k in keys for bad in self._keys)


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
    if tp == "str | None":
        return value is None or (isinstance(value, str) and value != ""), value
    if tp == "str | int | None":
        ok = value is None or (isinstance(value, (str, int)) and not isinstance(value, bool))
        return ok, value
    raise AssertionError(f"no conversion for {tp}")


def _load_section(
    cls: type, node: yaml.Node, prefix: str, loader: yaml.SafeLoader, problems: _Problems
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
    node: yaml.Node, loader: yaml.SafeLoader, problems: _Problems
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
        if name == WYOMING:
            problems.add(key_node, f"destinations.{name}", "is reserved for Home Assistant's satellite link "
                         "(the wyoming: section); give this destination another name")
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


def _cross_checks(config: Config, node: yaml.Node, problems: _Problems) -> None:
    """Checks between keys, each made unless one of its keys already has a problem."""
    if config.led.pin == config.button.pin and not problems.about("led.pin", "button.pin"):
        if _find(node, "button", "pin") is None:  # the button kept its default: point at the LED's line
            problems.add(
                _find(node, "led", "pin"),
                "led.pin",
                f"uses GPIO{config.led.pin}, which button.pin already uses by default; give each its own pin",
            )
        else:
            problems.add(
                _find(node, "button", "pin"),
                "button.pin",
                f"uses GPIO{config.button.pin}, which led.pin already uses; give each its own pin",
            )
    upload_to = config.after_wake.upload_to
    if (upload_to not in (None, WYOMING) and config.destination(upload_to) is None
            and not problems.about("after_wake.upload_to", "destinations")):
        names = ", ".join(d.name for d in config.destinations) or "none are configured"
        problems.add(
            _find(node, "after_wake", "upload_to"),
            "after_wake.upload_to",
            f"names no destination {upload_to!r} (destinations: {names})",
        )
    _wyoming_checks(config, node, problems)
    if (config.utterance.pre_roll_s >= config.utterance.max_length_s
            and not problems.about("utterance.pre_roll_s", "utterance.max_length_s")):
        problems.add(
            _find(node, "utterance", "pre_roll_s"),
            "utterance.pre_roll_s",
            "must be shorter than utterance.max_length_s",
        )


def _wyoming_checks(config: Config, node: yaml.Node, problems: _Problems) -> None:
    wyoming = config.wyoming
    if wyoming.listen is not None and not wyoming.allow and not problems.about("wyoming"):
        problems.add(_find(node, "wyoming", "listen"), "wyoming.allow",
                     "is required when wyoming.listen is set: the address of your Home Assistant host, "
                     "such as [192.168.1.10] (any other peer is refused)")
    for key in [k for k in ("allow", "advertise") if getattr(wyoming, k) and wyoming.listen is None]:
        problems.warn(_find(node, "wyoming", key), f"wyoming.{key}", "does nothing while wyoming.listen is null")
    if (config.after_wake.upload_to == WYOMING and wyoming.listen is None
            and not problems.about("after_wake.upload_to", "wyoming")):
        problems.add(_find(node, "after_wake", "upload_to"), "after_wake.upload_to",
                     "is wyoming, but satellite mode is off; set wyoming.listen and wyoming.allow")
    elif (wyoming.listen is not None and config.after_wake.upload_to != WYOMING
            and not problems.about("after_wake.upload_to", "wyoming")):
        problems.warn(_find(node, "wyoming", "listen"), "wyoming.listen",
                      "Home Assistant gets no audio unless after_wake.upload_to is wyoming")


def _find(node: yaml.Node, *keys: str) -> yaml.Node | None:
    """The value node at a key path, for a line number; None when it is absent."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        match = [v for k, v in node.value if getattr(k, "value", None) == key]
        if not match:
            return None
        node = match[0]
    return node


def parse(text: str, source: str) -> Config:
    """Parse and validate a config text; raise ConfigError listing every problem.

    A file with nothing in it but comments is every setting at its default."""
    problems = _Problems(source)
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
        _cross_checks(config, root, problems)
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
