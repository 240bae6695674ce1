"""The owner's configuration: frozen settings with units in their names, and a loader that checks
everything at once and names the file, line and key of every problem.

Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import reprlib
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from guardd.destinations import check_url, load_headers
from guardd.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/guardd/guardd.yaml")
MAX_CONFIG_BYTES = 1 << 20  # a real config is a few kilobytes
NOT_KEYS = ("source", "name", "warnings")  # fields the loader fills in, never keys in the file
MAX_DEPTH = 20  # lists and mappings inside each other; guardd's own go four deep


class UnchosenStateDir(str):
    """The state directory when neither the config (state_dir) nor systemd (StateDirectory=)
    chose one. It is the path the daemon uses, marked so that `replay` can tell and work in a
    scratch directory instead of the owner's real log and sealing key."""


def default_state_dir() -> str:
    """systemd's StateDirectory= when running as a service, else a per-user directory."""
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    if os.geteuid() == 0:
        return UnchosenStateDir("/var/lib/guardd")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return UnchosenStateDir(Path(base) / "guardd")


@dataclass(frozen=True)
class WakeConfig:
    models: tuple[str, ...] = ("alexa", "hey_jarvis")  # built-in names or paths to .onnx files
    threshold: float = 0.7  # score 0..1 a frame must reach (README "Performance" says why 0.7)
    trigger_frames: int = 2  # consecutive 80 ms frames at or above the threshold
    refractory_s: float = 2.0  # seconds after a wake during which no model can fire again
    gate_silence: bool = True  # skip the models while only room noise could reach a score


@dataclass(frozen=True)
class UtteranceConfig:
    pre_roll_s: float = 0.2  # seconds kept before the detected start of speech
    trailing_silence_s: float = 0.8  # seconds of silence that end the utterance
    max_length_s: float = 15.0  # seconds; an utterance is cut here
    no_speech_timeout_s: float = 5.0  # seconds after a wake with no speech: nothing is kept
    vad_aggressiveness: int = 2  # webrtcvad mode 0 (keeps most) .. 3 (filters most non-speech)
    vad_frame_ms: int = 30  # webrtcvad sub-frame: 10, 20 or 30 milliseconds


@dataclass(frozen=True)
class RetentionConfig:
    max_age_h: float = 24.0  # hours a recording is kept, by the wall clock
    max_total_mb: float = 200.0  # megabytes of recordings; the oldest go first


@dataclass(frozen=True)
class LogConfig:
    segment_max_bytes: int = 1_000_000  # a log segment is closed once it reaches this size
    max_segments: int = 100  # segments kept; older ones are deleted after a `retention` record
    max_age_days: float = 365.0  # days a closed segment is kept after its last record


@dataclass(frozen=True)
class AudioConfig:
    device: str | int | None = None  # input device name (substring) or index; None: the default
    queue_s: float = 30.0  # seconds of audio that may wait for the core loop before frames drop


@dataclass(frozen=True)
class LedConfig:
    pin: int = 17  # BCM number
    active_high: bool = True  # True: the pin drives the LED's anode through a resistor


@dataclass(frozen=True)
class ButtonConfig:
    pin: int = 27  # BCM number
    pull_up: bool = True  # True: the button connects the pin to ground, internal pull-up on
    mute_press_s: float = 3.0  # held this long with no request armed: mute, or unmute


@dataclass(frozen=True)
class DestinationConfig:
    """Where approved bytes may go. Only the owner's config names addresses; clients name these."""

    url: str = ""  # https://..., or http:// to a loopback address only
    method: str = "POST"  # POST or PUT
    headers: tuple[tuple[str, str], ...] = ()  # resolved values; secrets come from env or a file
    timeout_s: float = 10.0  # seconds for the whole send
    max_bytes: int = 10_000_000  # largest payload accepted for this destination
    name: str = ""  # the key under destinations:, filled in by the loader


@dataclass(frozen=True)
class AfterWakeConfig:
    upload_to: str | None = None  # a destination name: ask to upload each kept utterance there


@dataclass(frozen=True)
class ConfirmConfig:
    timeout_s: float = 30.0  # seconds the LED asks before the request is denied
    long_press_s: float = 2.0  # a press held this long denies instead of approving
    stuck_s: float = 10.0  # a button held down since before arming for this long: denied, fault
    debounce_s: float = 0.03  # seconds the button line must be stable before a change counts
    queue: int = 4  # requests that may wait behind the armed one; more are refused as busy


def default_socket_path() -> str:
    """systemd's RuntimeDirectory= when running as a service, else /run or the user's runtime dir."""
    if os.environ.get("RUNTIME_DIRECTORY"):
        return str(Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]) / "guardd.sock")
    if os.geteuid() == 0:
        return "/run/guardd/guardd.sock"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/guardd-{os.geteuid()}"
    return str(Path(base) / "guardd.sock")


@dataclass(frozen=True)
class SocketConfig:
    path: str = field(default_factory=default_socket_path)  # the control socket
    group: str | None = None  # group allowed to connect (mode 0660); None: the daemon's own group
    max_frame_bytes: int = 16_000_000  # longest request line (base64 payloads are 4/3 their size)
    read_timeout_s: float = 10.0  # seconds a client has to send a whole request line


@dataclass(frozen=True)
class Config:
    state_dir: str = field(default_factory=default_state_dir)  # recordings, log and keys
    wake: WakeConfig = WakeConfig()
    utterance: UtteranceConfig = UtteranceConfig()
    retention: RetentionConfig = RetentionConfig()
    log: LogConfig = LogConfig()
    audio: AudioConfig = AudioConfig()
    led: LedConfig = LedConfig()
    button: ButtonConfig = ButtonConfig()
    destinations: tuple[DestinationConfig, ...] = ()
    after_wake: AfterWakeConfig = AfterWakeConfig()
    confirm: ConfirmConfig = ConfirmConfig()
    socket: SocketConfig = SocketConfig()
    source: str = "<defaults>"  # where this config came from, for messages
    # what is allowed but unwise (a secret written inline), for check-config and the start-up log
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def destination(self, name: str) -> DestinationConfig | None:
        return next((d for d in self.destinations if d.name == name), None)


# --- value checks: each returns None when fine, or the message after "key: " -------------------

Check = Callable[[Any], "str | None"]


def _between(lo: float, hi: float, *, lo_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        bad = v <= lo if lo_open else v < lo
        if bad or v > hi:
            return f"must be between {lo:g} and {hi:g} (got {v!r})"
        return None

    return check


def _at_least(lo: float) -> Check:
    return lambda v: None if v >= lo else f"must be at least {lo:g} (got {v!r})"


def _positive(v: Any) -> str | None:
    if not v > 0:
        return f"must be greater than 0 (got {v!r})"
    # .inf would mean "keep forever" and breaks the size arithmetic: a limit must be a number.
    return None if math.isfinite(v) else f"must be a finite number (got {v!r})"


def _one_of(*allowed: Any) -> Check:
    names = ", ".join(str(a) for a in allowed)
    return lambda v: None if v in allowed else f"must be one of {names} (got {v!r})"


def _gpio_pin(v: Any) -> str | None:
    return None if 0 <= v <= 27 else f"must be a BCM GPIO number 0..27 (got {v!r})"


def _model_list(v: Any) -> str | None:
    if not v:
        return "needs at least one model (for example [alexa])"
    from guardd.wake import BUILTIN_MODELS

    for m in v:
        if m not in BUILTIN_MODELS and not m.endswith(".onnx"):
            return (
                f"{m!r} is neither a built-in model ({', '.join(BUILTIN_MODELS)}) "
                "nor a path to an .onnx file"
            )
    if len(set(v)) != len(v):
        return "lists a model twice"
    return None


CHECKS: dict[str, Check] = {
    "wake.models": _model_list,
    "wake.threshold": _between(0, 1, lo_open=True),
    "wake.trigger_frames": _between(1, 25),
    "wake.refractory_s": _between(0, 60),
    "utterance.pre_roll_s": _between(0, 1),
    "utterance.trailing_silence_s": _between(0.1, 5),
    "utterance.max_length_s": _between(1, 120),
    "utterance.no_speech_timeout_s": _between(0.5, 30),
    "utterance.vad_aggressiveness": _one_of(0, 1, 2, 3),
    "utterance.vad_frame_ms": _one_of(10, 20, 30),
    "retention.max_age_h": _positive,
    "retention.max_total_mb": _positive,
    "log.segment_max_bytes": _between(4096, 1_000_000_000),
    "log.max_segments": _between(2, 1_000_000),
    "log.max_age_days": _between(1, 36_500),
    "audio.queue_s": _between(1, 300),
    "led.pin": _gpio_pin,
    "button.pin": _gpio_pin,
    "button.mute_press_s": _between(1, 30),
    "destinations.*.url": check_url,
    "destinations.*.method": _one_of("POST", "PUT"),
    "destinations.*.timeout_s": _between(0.1, 600),
    "destinations.*.max_bytes": _between(1, 100_000_000),
    "confirm.timeout_s": _between(1, 600),
    "confirm.long_press_s": _between(0.3, 30),
    "confirm.stuck_s": _between(1, 600),
    "confirm.debounce_s": _between(0.001, 0.2),
    "confirm.queue": _between(0, 64),
    "socket.max_frame_bytes": _between(1024, 200_000_000),
    "socket.read_timeout_s": _between(0.1, 600),
}


# --- the loader ---------------------------------------------------------------------------------


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
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in NOT_KEYS}
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
    if (upload_to is not None and config.destination(upload_to) is None
            and not problems.about("after_wake.upload_to", "destinations")):
        names = ", ".join(d.name for d in config.destinations) or "none are configured"
        problems.add(
            _find(node, "after_wake", "upload_to"),
            "after_wake.upload_to",
            f"names no destination {upload_to!r} (destinations: {names})",
        )
    if (config.utterance.pre_roll_s >= config.utterance.max_length_s
            and not problems.about("utterance.pre_roll_s", "utterance.max_length_s")):
        problems.add(
            _find(node, "utterance", "pre_roll_s"),
            "utterance.pre_roll_s",
            "must be shorter than utterance.max_length_s",
        )


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
        raise ConfigError([f"{source}:{_line_at(text, exc.position)}: the character "
                           f"U+{exc.character:04X} may not appear in a config; remove it"]) from None
    deep = _too_deep(text)
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


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _too_deep(text: str) -> int | None:
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
    data = _read(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                           "save the file as UTF-8"]) from None
    return parse(text, str(path))


def _read(path: Path) -> bytes:
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
