"""What several test files share: adapters made for tests at seams guardd owns."""

from __future__ import annotations

from typing import Any

from guardd.confirm.sender import SendJob
from guardd.errors import AuditLogError


class NoSender:
    """A sender for a core that must send nothing: any job fails the test."""

    def submit(self, job: SendJob) -> None:
        raise AssertionError(f"{job.request_id} was handed to the sender")


class FailingJournal:
    """A journal over a real log that refuses appends on demand: every one while `failing` says
    why, or every one after the next `good` when fail_after(good) was called."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.failing: str | None = None
        self._good: int | None = None

    def fail_after(self, good: int, why: str = "cannot write the log: Input/output error") -> None:
        self._good, self._why = good, why

    def heal(self) -> None:
        self.failing = self._good = None

    def append(self, type_: str, **fields: Any) -> int:
        if self._good is not None:
            if self._good == 0:
                self.failing = self._why
            self._good -= 1
        if self.failing is not None:
            raise AuditLogError(self.failing)
        return self.log.append(type_, **fields)

    def records(self) -> Any:
        return self.log.records()
