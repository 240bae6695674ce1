"""What a peer can make guardd log, rationed: at most QUOTA records of each kind in each QUOTA_S
window, so that no peer, allowed or not, can flood the log and make its rotation delete the
owner's history. The records held back are not lost from the account: they are counted, by
reason, into the next record of that kind that is written (`more`, `more_reasons`)."""

from __future__ import annotations

import re
from collections import Counter

QUOTA = 10  # records of one kind the peer may cause in QUOTA_S (the rest are counted)
QUOTA_S = 60.0
REASONS_CHARS = 400  # of the `more_reasons` field


class Ration:
    """`take` says whether a record of `kind` may be written now, and what was held back since
    the last one (to be logged with it)."""

    def __init__(self) -> None:
        self._window: dict[str, tuple[float, int]] = {}  # kind -> (window start, written in it)
        self._held: dict[str, Counter[str]] = {}  # kind -> held back, by reason

    def take(self, kind: str, now: float, reason: str = "") -> dict[str, int | str] | None:
        """None when the ration of `kind` is spent (this one is counted); else the fields that
        account for what was held back: {} or {"more": N, "more_reasons": "reason=n; ..."}."""
        start, written = self._window.get(kind, (now, 0))
        if now - start >= QUOTA_S:
            start, written = now, 0
        if written >= QUOTA:  # counted by reason, its numbers (ports, sizes) left out: one line a kind
            self._held.setdefault(kind, Counter())[re.sub(r"\d+", "N", reason)[:80]] += 1
            self._window[kind] = (start, written)
            return None
        self._window[kind] = (start, written + 1)
        held = self._held.pop(kind, None)
        if not held:
            return {}
        fields: dict[str, int | str] = {"more": sum(held.values())}
        reasons = "; ".join(f"{why or kind}={n}" for why, n in held.most_common())
        fields["more_reasons"] = reasons[:REASONS_CHARS]
        return fields
