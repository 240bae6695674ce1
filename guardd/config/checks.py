"""The limits of every config key: each check returns None when a value is fine, or the message
that follows "key: " in the loader's error."""

from __future__ import annotations

import ipaddress
import math
from typing import Any, Callable

from guardd.config.destinations import check_url
from guardd.config.settings import BUILTIN_MODELS, ESPHOME_PORT, WYOMING_PORT

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


def _label(v: Any) -> str | None:
    if len(v) > 60:
        return f"must be at most 60 characters, a name to say (got {len(v)})"
    if not v.isprintable():
        return f"must be printable text, one line (got {v!r})"
    return None


def _gpio_pin(v: Any) -> str | None:
    return None if 0 <= v <= 27 else f"must be a BCM GPIO number 0..27 (got {v!r})"


def _model_list(v: Any) -> str | None:
    if not v:
        return "needs at least one model (for example [alexa])"
    for m in v:
        if m not in BUILTIN_MODELS and not m.endswith(".onnx"):
            return (
                f"{m!r} is neither a built-in model ({', '.join(BUILTIN_MODELS)}) "
                "nor a path to an .onnx file"
            )
    if len(set(v)) != len(v):
        return "lists a model twice"
    return None


def _listen(default_port: int) -> Check:
    """HOST:PORT with HOST an IP address of this device ([...] around IPv6), or null."""

    def check(v: Any) -> str | None:
        if v is None:
            return None
        fix = f"must be ADDRESS:PORT, such as 0.0.0.0:{default_port} or 192.168.1.20:{default_port}"
        host, colon, port = v.rpartition(":")
        if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"{fix} (got {v!r}: no port 1..65535 after the last colon)"
        try:
            ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        except ValueError:
            return f"{fix} (got {v!r}: {host!r} is not an IP address)"
        if ":" in host and not host.startswith("["):
            return f"{fix}; write an IPv6 address in brackets, [::]:{default_port} (got {v!r})"
        return None

    return check


def _node_name(v: Any) -> str | None:
    """ESPHome's rule for a node name, which Home Assistant keys the device by."""
    if not 1 <= len(v) <= 31 or not all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in v):
        return f"must be 1 to 31 lowercase letters, digits and hyphens, as ESPHome names a node (got {v!r})"
    return None


def _peers(v: Any) -> str | None:
    for address in v:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return f"{address!r} is not an IP address; list the Home Assistant host's address, such as 192.168.1.10"
        if ip.is_unspecified:
            return f"{address!r} would stand for any host; list the Home Assistant host's own address"
    if len(v) > 16:
        return f"lists {len(v)} addresses; at most 16 (the Home Assistant host's)"
    return None


def _thresholds(v: Any) -> str | None:
    for model, threshold in v:
        if not 0 < threshold <= 1:
            return f"{model}: must be between 0 and 1 (got {threshold!r})"
    return None


CHECKS: dict[str, Check] = {
    "wake.models": _model_list,
    "wake.threshold": _between(0, 1, lo_open=True),
    "wake.thresholds": _thresholds,
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
    "announce.output": _one_of("device", "none"),
    "announce.volume": _between(0, 1),
    "announce.upload": _one_of("describe", "playback"),
    "led.pin": _gpio_pin,
    "button.pin": _gpio_pin,
    "button.mute_press_s": _between(1, 30),
    "destinations.*.url": check_url,
    "destinations.*.method": _one_of("POST", "PUT"),
    "destinations.*.timeout_s": _between(0.1, 600),
    "destinations.*.max_bytes": _between(1, 100_000_000),
    "destinations.*.label": _label,
    "wyoming.listen": _listen(WYOMING_PORT),
    "wyoming.allow": _peers,
    "wyoming.name": _label,
    "esphome.listen": _listen(ESPHOME_PORT),
    "esphome.allow": _peers,
    "esphome.name": _node_name,
    "confirm.timeout_s": _between(1, 600),
    "confirm.long_press_s": _between(0.3, 30),
    "confirm.stuck_s": _between(1, 600),
    "confirm.debounce_s": _between(0.001, 0.2),
    "confirm.queue": _between(0, 64),
    "socket.max_frame_bytes": _between(1024, 200_000_000),
    "socket.read_timeout_s": _between(0.1, 600),
}
