"""What the verifier finds: a Problem names the seq where it is, and a Walk collects them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "log"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class Line:
    segment: int  # index into the segment list
    raw: bytes
    record: dict[str, Any] | None = None
    seq: int | None = None


@dataclass
class Walk:
    problems: list[Problem] = field(default_factory=list)

    def add(self, seq: int | None, kind: str, detail: str) -> None:
        self.problems.append(Problem(seq, kind, detail))
