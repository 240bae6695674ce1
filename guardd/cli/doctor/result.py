"""What one check of `guardd doctor` found: passed, or failed with the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    ok: bool
    name: str
    detail: str
    fix: str = ""


def passed(name: str, detail: str) -> Result:
    return Result(True, name, detail)


def failed(name: str, detail: str, fix: str) -> Result:
    return Result(False, name, detail, fix)
