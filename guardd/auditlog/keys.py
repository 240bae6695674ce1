"""The writer's sealing key: found at open against the log's head, used to seal the next record,
ratcheted once that record is durable, and its state saved after every step (sealing.py holds
the cryptography, recovery.check_key the rule for a key state found one record behind or ahead).
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

from guardd.auditlog import sealing
from guardd.auditlog.format import GENESIS, Head
from guardd.auditlog.recovery import check_key
from guardd.errors import AuditLogError, KeyStateError

log = logging.getLogger(__name__)

REINIT = "run `guardd log init` (with guardd stopped) to start a new sealing key, and keep the key it prints"


class DiskFull(AuditLogError):
    """The key state could not be saved for want of space."""


class SealingKey:
    """K_{head.seq+1}, or why there is no usable key (`unsealed`)."""

    def __init__(self, key_dir: Path, announce: bool) -> None:
        self.key_dir = key_dir
        self._announce = announce  # print a new verification key to stderr (the journal)
        self._key: bytes | None = None
        self.unsaved = False  # the ratchet moved on but its state is not yet on disk
        self.unsealed: str | None = None  # why appends are refused: lost, corrupt or mismatched
        self.skip: int | None = None  # a seq lost with a cut last record (see check_key)
        self.verification_key: str | None = None  # set when a new epoch began

    def find(self, head: Head, last: dict[str, Any] | None, torn: bool, fresh: bool) -> None:
        """Load the saved state and check it belongs to this head; a fresh log gets a new key."""
        try:
            state = sealing.load_state(self.key_dir)
        except FileNotFoundError:
            if fresh:
                self.start_epoch(Head(0, GENESIS))
                return
            self.unsealed = f"the sealing key state ({self.key_dir / sealing.STATE_NAME}) is missing; {REINIT}"
            return
        except (KeyStateError, OSError) as exc:
            self.unsealed = f"the sealing key state is unreadable: {exc}; {REINIT}"
            return
        found = check_key(state, head, last, torn)
        if found.wrong is not None:
            self.unsealed = f"{found.wrong}; run `guardd verify`. guardd will not write to this log; {REINIT}"
            return
        self._key, self.skip = found.key, found.skip
        if found.evolved:
            self.unsaved = True
            self.save(head)

    def start_epoch(self, head: Head) -> str:
        """A new key for the record after `head`; returns its verification key."""
        self._key = sealing.new_key()
        self.unsealed = None
        self.unsaved = True
        self.save(head)
        self.verification_key = sealing.format_verification_key(head.seq + 1, self._key)
        if self._announce:
            log.warning(
                "guardd: new log sealing key. Write this verification key down and keep it off this "
                "device; `guardd verify --key KEY` checks the log with it. It is not shown again:\n%s",
                self.verification_key,
            )
        return self.verification_key

    def seal(self, h: str) -> str:
        assert self._key is not None
        return sealing.seal(self._key, h)

    def advance(self, head: Head) -> None:
        """`head` is durable: ratchet the key, forget the old one and save the new state."""
        assert self._key is not None
        self._key = sealing.next_key(self._key)
        self.unsaved = True
        self.save(head)

    def save(self, head: Head) -> None:
        """Save the key state for the record after `head`. Raises AuditLogError (DiskFull)."""
        assert self._key is not None
        try:
            sealing.save_state(self.key_dir, sealing.KeyState(head.seq + 1, self._key, head.h))
        except OSError as exc:
            error = DiskFull if exc.errno == errno.ENOSPC else AuditLogError
            raise error(f"cannot save the log's sealing key: {exc.strerror or exc}") from exc
        self.unsaved = False

    def forget(self) -> None:
        self._key = None
