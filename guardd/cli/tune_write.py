"""`guardd tune --write`: one threshold put into the owner's config file, everything else in it
(comments, order, other keys) left as it was. The new text is loaded and checked like any
config before it replaces the file (a temporary file renamed over it, its mode kept); a config
it cannot edit or that would not load is left untouched, with the reason.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from guardd.config import load as configmod
from guardd.config.settings import Config
from guardd.durable import write_atomically
from guardd.errors import ConfigError, GuarddError


def _child(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end


def edited(text: str, model: str, threshold: float, note: str) -> str:
    """`text` with wake.thresholds.MODEL set to `threshold` and `note` as its comment."""
    root = yaml.compose(text) if text.strip() else None
    entry = f"{model}: {threshold:g}  # {note}"
    wake = _child(root, "wake")
    if wake is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + f"wake:\n  thresholds:\n    {entry}\n"
    wake_key, wake_node = wake
    if not isinstance(wake_node, yaml.MappingNode) or wake_node.flow_style or not wake_node.value:
        raise GuarddError("wake: is not a block mapping; add the line by hand: wake.thresholds." + entry)
    indent = wake_node.value[0][0].start_mark.column
    found = _child(wake_node, "thresholds")
    if found is None:
        at = _line_end(text, wake_key.start_mark.index) + 1
        return text[:at] + " " * indent + f"thresholds:\n{' ' * (indent + 2)}{entry}\n" + text[at:]
    key, node = found
    if isinstance(node, yaml.MappingNode) and node.flow_style:
        pairs = [(k.value, v.value) for k, v in node.value if getattr(k, "value", None) != model]
        body = ", ".join([f"{k}: {v}" for k, v in pairs] + [f"{model}: {threshold:g}"])
        end = _line_end(text, node.end_mark.index)
        return text[: node.start_mark.index] + "{" + body + "}" + f"  # {note}" + text[end:]
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "null", "~"):  # `thresholds:` alone
        at = _line_end(text, key.start_mark.index)
        return text[: key.start_mark.index] + f"thresholds:\n{' ' * (indent + 2)}{entry}" + text[at:]
    if not isinstance(node, yaml.MappingNode):
        raise GuarddError("wake.thresholds is not a mapping; fix it (guardd check-config) and tune again")
    same = _child(node, model)
    if same is not None:
        start = same[0].start_mark.index
        return text[:start] + entry + text[_line_end(text, start):]
    inner = node.value[0][0].start_mark.column
    at = _line_end(text, node.value[-1][1].end_mark.index) + 1
    return text[:at] + " " * inner + entry + "\n" + text[at:]


def with_verify(text: str, model: str) -> str:
    """`text` with `model` in wake.verify (wake: exists, as edited() leaves it)."""
    root = yaml.compose(text)
    wake = _child(root, "wake")
    assert wake is not None
    wake_key, wake_node = wake
    found = _child(wake_node, "verify")
    indent = wake_node.value[0][0].start_mark.column
    if found is None:
        at = _line_end(text, wake_key.start_mark.index) + 1
        return text[:at] + " " * indent + f"verify: [{model}]\n" + text[at:]
    key, node = found
    if isinstance(node, yaml.SequenceNode) and node.flow_style:
        names = [n.value for n in node.value if getattr(n, "value", None) != model] + [model]
        return text[: node.start_mark.index] + "[" + ", ".join(names) + "]" + text[node.end_mark.index :]
    if isinstance(node, yaml.SequenceNode) and node.value:
        if any(getattr(n, "value", None) == model for n in node.value):
            return text
        inner = node.value[0].start_mark.column
        at = _line_end(text, node.value[-1].end_mark.index) + 1
        return text[:at] + " " * (inner - 2) + f"- {model}\n" + text[at:]
    raise GuarddError(f"wake.verify is not a list; add {model} to it by hand")


def write_threshold(config: Config, model: str, threshold: float, note: str, *, verify: bool = False) -> Path:
    if config.source == "<defaults>":
        raise GuarddError("there is no config file to write to: give --config PATH (a copy of "
                          "config/guardd.yaml, such as /etc/guardd/guardd.yaml)")
    path = Path(config.source)
    text = path.read_text(encoding="utf-8")
    new = edited(text, model, threshold, note)
    if verify:
        new = with_verify(new, model)
    try:
        checked = configmod.parse(new, str(path))
    except ConfigError as exc:
        raise GuarddError(f"{path} is left as it was: the edit would not load ({exc.problems[0]})") from None
    if checked.wake.threshold_of(model) != threshold or (verify and model not in checked.wake.verify):
        raise GuarddError(f"{path} is left as it was: the edit did not set wake.thresholds.{model}")
    write_atomically(path, new.encode("utf-8"), mode=path.stat().st_mode & 0o777)
    return path
