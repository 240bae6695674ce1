"""Checks between keys, each made unless one of its keys already has a problem (its value then
stands at the default, and the check would be about that)."""

from __future__ import annotations

import yaml

from guardd.config.esphome import esphome_checks
from guardd.config.problems import Problems
from guardd.config.settings import ESPHOME, WYOMING, Config


def cross_checks(config: Config, node: yaml.Node, problems: Problems) -> None:
    """Checks between keys, each made unless one of its keys already has a problem."""
    if config.led.pin == config.button.pin and not problems.about("led.pin", "button.pin"):
        if find(node, "button", "pin") is None:  # the button kept its default: point at the LED's line
            problems.add(
                find(node, "led", "pin"),
                "led.pin",
                f"uses GPIO{config.led.pin}, which button.pin already uses by default; give each its own pin",
            )
        else:
            problems.add(
                find(node, "button", "pin"),
                "button.pin",
                f"uses GPIO{config.button.pin}, which led.pin already uses; give each its own pin",
            )
    upload_to = config.after_wake.upload_to
    if (upload_to not in (None, WYOMING, ESPHOME) and config.destination(upload_to) is None
            and not problems.about("after_wake.upload_to", "destinations")):
        names = ", ".join(d.name for d in config.destinations) or "none are configured"
        problems.add(
            find(node, "after_wake", "upload_to"),
            "after_wake.upload_to",
            f"names no destination {upload_to!r} (destinations: {names})",
        )
    wyoming_checks(config, node, problems)
    link_upload_checks(config, node, problems, WYOMING, config.wyoming.listen,
                       "satellite mode is off", "wyoming.listen and wyoming.allow")
    esphome_checks(config, node, problems, find)
    link_upload_checks(config, node, problems, ESPHOME, config.esphome.listen,
                       "the encrypted link is off", "esphome.listen and esphome.encryption_key")
    threshold_checks(config, node, problems)
    if (config.utterance.pre_roll_s >= config.utterance.max_length_s
            and not problems.about("utterance.pre_roll_s", "utterance.max_length_s")):
        problems.add(
            find(node, "utterance", "pre_roll_s"),
            "utterance.pre_roll_s",
            "must be shorter than utterance.max_length_s",
        )


def threshold_checks(config: Config, node: yaml.Node, problems: Problems) -> None:
    named = {"thresholds": [m for m, _ in config.wake.thresholds], "verify": list(config.wake.verify)}
    for key, models in named.items():
        unknown = [m for m in models if m not in config.wake.labels]
        if unknown and not problems.about(f"wake.{key}", "wake.models"):
            problems.add(find(node, "wake", key), f"wake.{key}",
                         f"names {unknown[0]!r}, which is not in wake.models ({', '.join(config.wake.labels)})")


def wyoming_checks(config: Config, node: yaml.Node, problems: Problems) -> None:
    wyoming = config.wyoming
    if wyoming.listen is not None and not wyoming.allow and not problems.about("wyoming"):
        problems.add(find(node, "wyoming", "listen"), "wyoming.allow",
                     "is required when wyoming.listen is set: the address of your Home Assistant host, "
                     "such as [192.168.1.10] (any other peer is refused)")
    for key in [k for k in ("allow", "advertise") if getattr(wyoming, k) and wyoming.listen is None]:
        problems.warn(find(node, "wyoming", key), f"wyoming.{key}", "does nothing while wyoming.listen is null")


def link_upload_checks(config: Config, node: yaml.Node, problems: Problems, link: str, listen: object,
                       off: str, turn_on: str) -> None:
    """`after_wake.upload_to` and the Home Assistant link `link` (wyoming or esphome) agree:
    uploads to a link that is off are an error, a link that gets no uploads a warning."""
    if config.after_wake.upload_to == link and listen is None and not problems.about("after_wake.upload_to", link):
        problems.add(find(node, "after_wake", "upload_to"), "after_wake.upload_to",
                     f"is {link}, but {off}; set {turn_on}")
    elif listen is not None and config.after_wake.upload_to != link and not problems.about("after_wake.upload_to", link):
        problems.warn(find(node, link, "listen"), f"{link}.listen",
                      f"Home Assistant gets no audio unless after_wake.upload_to is {link}")


def find(node: yaml.Node, *keys: str) -> yaml.Node | None:
    """The value node at a key path, for a line number; None when it is absent."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        match = [v for k, v in node.value if getattr(k, "value", None) == key]
        if not match:
            return None
        node = match[0]
    return node
