"""The seam between the daemon and its audit log.

The core and the broker write every record through a Journal: `append(type, **fields) -> seq`,
durable before it returns, raising AuditLogError when the record could not be written. The
daemon's journal is auditlog.writer.AuditLog; a test that needs a log which fails or stalls
passes a journal made for that. Recorder is the one place that turns a failed append into "no
seq", so neither the core nor the broker ever acts on an unlogged step.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol

from guardd.errors import AuditLogError

BySeq = Callable[[int], "int | str"]  # a field made from the seq its own record gets
Field = int | str | BySeq


class Journal(Protocol):
    def append(self, type_: str, **fields: Field) -> int:
        """Write one record durably and return its seq; raise AuditLogError if it was not."""
        ...

    def records(self) -> Iterable[dict[str, Any]]:
        """The records written so far, in order (the core reads them once, at start-up)."""
        ...


class Recorder:
    """Appends without raising: the record's seq, or None when the journal refused it. `failure`
    holds the reason from the first refusal until an append succeeds again."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.failure: str | None = None

    def __call__(self, type_: str, **fields: Field) -> int | None:
        try:
            seq = self.journal.append(type_, **fields)
        except AuditLogError as exc:
            self.failure = str(exc)
            return None
        self.failure = None
        return seq
