"""What one check of `guardd doctor` found: passed, failed with the fix, or skipped because what
it checks is not here (no GPIO on a laptop), which is no problem and does not fail doctor."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    ok: bool  # False: a real problem, and doctor exits 1
    name: str
    detail: str
    fix: str = ""
    skipped: bool = False  # (ok as well: nothing is wrong)

    @property
    def mark(self) -> str:
        """The line's first word: ok, skip or FAIL."""
        return "skip" if self.skipped else "ok" if self.ok else "FAIL"


def passed(name: str, detail: str) -> Result:
    return Result(True, name, detail)


def failed(name: str, detail: str, fix: str) -> Result:
    return Result(False, name, detail, fix)


def skipped(name: str, detail: str) -> Result:
    return Result(True, name, f"skipped: {detail}", skipped=True)
