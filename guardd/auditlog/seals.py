"""What the keys say about a log's records: the owner's verification keys check every seal, a head
noted elsewhere shows a cut or a rollback, and the device's key state shows a cut that the chain
alone cannot (sealing.KeyState.position is the rule the writer goes by too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guardd.auditlog import sealing
from guardd.auditlog.findings import Line, Walk
from guardd.auditlog.format import GENESIS, HEX64, parse_head
from guardd.errors import KeyStateError


def keys_of_this_log(epochs: list[tuple[int, bytes]], lines: list[Line], walk: Walk) -> list[sealing.Ratchet]:
    """The given keys that seal at least one record of their range; each other key is one
    problem, not a "modified" line for every record it was never going to match."""
    budget = 20 * len(lines) + 1000
    kept = []
    for i, (start, key) in enumerate(epochs):
        end = epochs[i + 1][0] if i + 1 < len(epochs) else None
        sealed = sorted(((line.seq, line.record) for line in lines if line.record is not None and line.seq is not None
                         and start <= line.seq and (end is None or line.seq < end)), key=lambda pair: pair[0])
        probe = sealing.Ratchet(start, key, max_steps=budget)
        if sealed and not any(_sealed_by(probe, seq, record) for seq, record in sealed):
            walk.add(None, "wrong key",
                     f"the key {sealing.KEY_PREFIX}-{start}-{key.hex()[:8]}… seals none of the {len(sealed)} records "
                     f"from seq {start}: it is not this log's key (or every one of them was rewritten). Pass the "
                     "key `guardd log init` printed for this device; the chain was still checked")
            continue
        kept.append(sealing.Ratchet(start, key, max_steps=budget))
    return kept


def _sealed_by(ratchet: sealing.Ratchet, seq: int, record: dict[str, Any]) -> bool:
    key = ratchet.key_for(seq)
    mac = record.get("mac")
    return key is not None and isinstance(mac, str) and isinstance(record.get("h"), str) \
        and sealing.seal(key, record["h"]) == mac


def check_seal(seq: int, record: dict[str, Any], ratchets: list[sealing.Ratchet], walk: Walk, name: str) -> None:
    mac = record.get("mac")
    if not isinstance(mac, str) or not HEX64.fullmatch(mac):
        walk.add(seq, "unsealed", f"{name}: no valid mac")
        return
    epoch = next((r for r in reversed(ratchets) if r.start <= seq), None)
    if epoch is None:
        return  # older than every key given: chain-checked only
    key = epoch.key_for(seq)
    if key is None:
        walk.add(seq, "modified", f"{name}: seal not checked (too many out-of-order records)")
    elif sealing.seal(key, record["h"]) != mac:
        walk.add(seq, "modified", f"{name}: the seal does not match: the record was rewritten after it was sealed")


def check_head(head: Any, good: list[tuple[int, str]], walk: Walk) -> None:
    seq, h = parse_head(head) if isinstance(head, str) else head
    last = good[-1][0] if good else 0
    found = [g for s, g in good if s == seq]
    if last < seq:
        walk.add(last + 1, "truncated", f"the log ends at seq {last}; the noted head is seq {seq}")
    elif found and found[0] != h:
        walk.add(seq, "rolled back", f"seq {seq} is not the record the noted head names: the log was rewritten")
    elif not found and good and seq >= good[0][0]:
        walk.add(seq, "truncated", f"seq {seq}, the noted head, is not in the log")


def check_key_state(
    key_dir: Path, good: list[tuple[int, str]], lines: list[Line], ratchets: list[sealing.Ratchet], walk: Walk
) -> None:
    try:
        state = sealing.load_state(key_dir)
    except FileNotFoundError:
        if good:
            walk.add(None, "key state", f"{key_dir / sealing.STATE_NAME} is missing: the log's end cannot be checked")
        return
    except (KeyStateError, OSError) as exc:
        walk.add(None, "key state", str(exc))
        return
    last_seq, last_h = good[-1] if good else (0, GENESIS)
    last_prev = next((line.record["prev"] for line in reversed(lines) if line.record is not None), GENESIS)
    position = state.position(last_seq, last_h, last_prev)
    if position == "ahead":
        walk.add(last_seq + 1, "truncated", f"the sealing key has moved on to seq {state.seq}; the log ends at seq {last_seq}")
    elif position == "other" and state.seq == last_seq + 1:
        walk.add(last_seq, "rolled back", "the last record is not the one the sealing key was evolved after")
    elif position == "other":
        walk.add(last_seq, "rolled back", "the last record does not follow the one the sealing key was evolved after")
    elif position == "behind":
        walk.add(state.seq + 1, "key state", f"records from seq {state.seq + 1} on were written after the key state was saved")
    epoch = next((r for r in reversed(ratchets) if r.start <= state.seq), None)
    if epoch is not None and epoch.key_for(state.seq) != state.key:
        walk.add(None, "key state", "the device's key is not the evolution of the verification key")
