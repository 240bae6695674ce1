"""The problems and warnings found while loading a config, each with its file, line and key."""

from __future__ import annotations

import yaml


class Problems:
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
