"""Forward-secure sealing of the audit log: the per-record MAC key, its one-way ratchet, the
owner's verification key, and the evolved key state kept on the device.

Invariants:
- record `seq` n is sealed with key K_n: mac = HMAC-SHA256(K_n, SEAL_DOMAIN || h), and
  K_{n+1} = HMAC-SHA256(K_n, "next"); nobody can go from K_n back to K_{n-1}, so whoever takes
  the device (and its key state) cannot re-seal records written before;
- the device keeps one key only: the state file names the seq that key is for and the `h` of the
  record before it, and is replaced atomically (temp file, fsync, rename, fsync the directory),
  so the old key's file is gone once the new one is durable;
- the first key of an epoch (K_1, or K_s after a re-initialisation at seq s) is the verification
  key; it is printed once for the owner to keep off the device and never written to disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from guardd.durable import read_regular, write_atomically
from guardd.errors import KeyStateError

SEAL_DOMAIN = b"guardd-seal-v1\n"
NEXT = b"next"
STATE_NAME = "seal.json"
STATE_VERSION = 1
KEY_PREFIX = "vk1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def next_key(key: bytes) -> bytes:
    """The ratchet: K_{n+1} = HMAC-SHA256(K_n, "next")."""
    return hmac.new(key, NEXT, hashlib.sha256).digest()


def seal(key: bytes, h: str) -> str:
    """The MAC of a record whose hash is `h` (64 lowercase hex), as 64 lowercase hex."""
    return hmac.new(key, SEAL_DOMAIN + h.encode("ascii"), hashlib.sha256).hexdigest()


def new_key() -> bytes:
    return secrets.token_bytes(32)


def format_verification_key(seq: int, key: bytes) -> str:
    """`vk1-SEQ-HEX`: the key for record SEQ, from which every later key follows."""
    return f"{KEY_PREFIX}-{seq}-{key.hex()}"


def parse_verification_key(text: str) -> tuple[int, bytes]:
    """Accept `vk1-SEQ-HEX` or a bare 64-hex key (for seq 1). ValueError names what is wrong."""
    text = text.strip()
    if _HEX64.fullmatch(text.lower()):
        return 1, bytes.fromhex(text)
    parts = text.split("-")
    if len(parts) == 3 and parts[0] == KEY_PREFIX and parts[1].isdigit() and _HEX64.fullmatch(parts[2].lower()):
        seq = int(parts[1])
        if seq >= 1:
            return seq, bytes.fromhex(parts[2])
    raise ValueError(f"not a guardd verification key (expected {KEY_PREFIX}-SEQ-<64 hex digits>)")


class Ratchet:
    """Keys of one epoch, derived on demand from its first key (for the verifier)."""

    def __init__(self, start: int, key: bytes, max_steps: int) -> None:
        self.start, self.first = start, key
        self._seq, self._key = start, key
        self._budget = max_steps  # bounds the work a forged huge seq can cause

    def key_for(self, seq: int) -> bytes | None:
        if seq < self.start:
            return None
        if seq < self._seq:
            self._seq, self._key = self.start, self.first
        while self._seq < seq:
            if self._budget <= 0:
                return None
            self._budget -= 1
            self._key = next_key(self._key)
            self._seq += 1
        return self._key


@dataclass(frozen=True)
class KeyState:
    seq: int  # the seq of the next record, which this key seals
    key: bytes
    prev: str  # h of record seq-1 (64 zeros before the first record)

    def body(self) -> dict[str, int | str]:
        return {"v": STATE_VERSION, "seq": self.seq, "key": self.key.hex(), "prev": self.prev}

    def position(self, seq: int, h: str, prev: str) -> str:
        """Where this key state stands against a log whose last record is seq (hash h, after
        prev). The one rule the writer (at open) and the verifier both go by:
        "next": it seals the record after that one, the normal case;
        "last": it sealed that very record; the process stopped before the evolved key was saved;
        "ahead": it is for a record past the next: records were removed;
        "behind": it is for an earlier record: records were written without it;
        "other": it is for this place in the log, but after another record: the log was rewritten."""
        if self.seq == seq + 1:
            return "next" if self.prev == h else "other"
        if self.seq == seq:
            return "last" if self.prev == prev else "other"
        return "ahead" if self.seq > seq + 1 else "behind"


def _encode(body: dict[str, int | str]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def load_state(key_dir: Path) -> KeyState:
    """Read and check the key state. FileNotFoundError when there is none; KeyStateError if bad."""
    path = key_dir / STATE_NAME
    try:
        data = read_regular(path)  # FileNotFoundError passes through: "missing" differs from "corrupt"
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyStateError(f"{path} is {exc.strerror}; guardd reads its key only from a file it made") from None
    try:
        record = json.loads(data)
        check = record.pop("check")
        if hashlib.sha256(_encode(record)).hexdigest() != check:
            raise ValueError("checksum mismatch")
        if record["v"] != STATE_VERSION:
            raise ValueError(f"version {record['v']!r}")
        seq, key, prev = record["seq"], record["key"], record["prev"]
        if not (isinstance(seq, int) and seq >= 1 and _HEX64.fullmatch(str(key)) and _HEX64.fullmatch(str(prev))):
            raise ValueError("bad field")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise KeyStateError(f"{path} is corrupt ({exc})") from None
    return KeyState(seq, bytes.fromhex(key), prev)


def save_state(key_dir: Path, state: KeyState) -> None:
    """Replace the key state atomically and durably; the previous key is gone once this returns."""
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    body = state.body()
    body["check"] = hashlib.sha256(_encode(state.body())).hexdigest()
    write_atomically(key_dir / STATE_NAME, _encode(body) + b"\n")
