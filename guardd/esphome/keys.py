"""The pre-shared key of the ESPHome link: 32 random bytes, written as ESPHome writes them
(standard base64, 44 characters), that Home Assistant stores per device. Standard library only,
so the config can check a key without loading the link."""

from __future__ import annotations

import base64
import binascii
import os

KEY_BYTES = 32


def new_key() -> str:
    """A fresh key, base64, from the system's random source."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def decode_key(text: str) -> bytes:
    """The key's 32 bytes; ValueError saying what is wrong and how to make a good one."""
    fix = "make one with `guardd esphome-key`"
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"is not base64 text ({len(text.strip())} characters); {fix}") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"is the base64 of {len(key)} bytes, not {KEY_BYTES}; {fix}")
    if not any(key):
        raise ValueError(f"is all zero bytes, a key everyone knows (ESPHome's provisioning key); {fix}")
    return key
