"""The responder's side of Noise_NNpsk0_25519_ChaChaPoly_SHA256 (the Noise Protocol Framework,
revision 34), as ESPHome's native API uses it: no I/O, only the two handshake messages and the
transport ciphers that follow.

    -> psk, e        the initiator (Home Assistant) proves it holds the pre-shared key
    <- e, ee         the responder (guardd) answers with a fresh ephemeral key

The initiator's first message is authenticated by the pre-shared key alone, so a wrong key (or
none) fails here, before guardd writes any answer. It is replayable (NNpsk0 gives it no freshness
from the responder's side); a replayer still learns nothing, because every key after this
message mixes in the responder's fresh ephemeral secret (`ee`), which the replayer cannot
compute. link.py also refuses an initiator ephemeral key it has seen before.

The primitives are libsodium's (PyNaCl): X25519 and ChaCha20-Poly1305 (IETF); SHA-256 and HMAC
are Python's own. Any failure is a HandshakeFailed, never a partial state that could be used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
)
from nacl.exceptions import CryptoError

PROTOCOL_NAME = b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"
DH_LEN = 32  # bytes of an X25519 public key
TAG_LEN = 16  # bytes of a ChaCha20-Poly1305 tag
PSK_LEN = 32
MAX_NONCE = 2**64 - 1  # reserved by the spec: a cipher that reaches it is spent


class HandshakeFailed(Exception):
    """The initiator's message does not prove the key, or is not a handshake message at all."""


class CipherSpent(Exception):
    """A transport cipher used 2**64 - 1 times (never in practice): the link must end."""


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def hkdf(chaining_key: bytes, material: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise's HKDF: two or three 32-byte outputs from the chaining key and input material."""
    temp = _hmac(chaining_key, material)
    out: list[bytes] = []
    previous = b""
    for i in range(1, outputs + 1):
        previous = _hmac(temp, previous + bytes((i,)))
        out.append(previous)
    return tuple(out)


class CipherState:
    """ChaCha20-Poly1305 under one key, with the counter as the nonce (4 zero bytes, then the
    counter little-endian in 8). Not thread-safe: each direction has one user."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key
        self.nonce = 0

    @property
    def has_key(self) -> bool:
        return self._key is not None

    def _next_nonce(self) -> bytes:
        if self.nonce >= MAX_NONCE:
            raise CipherSpent("the transport cipher is spent")
        nonce = struct.pack("<IQ", 0, self.nonce)
        self.nonce += 1
        return nonce

    def encrypt(self, plaintext: bytes, ad: bytes = b"") -> bytes:
        if self._key is None:
            return plaintext
        return crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, self._next_nonce(), self._key)

    def decrypt(self, ciphertext: bytes, ad: bytes = b"") -> bytes:
        """The plaintext; CryptoError when the tag does not verify (the counter moves on all the
        same, as the spec allows: the caller ends the link)."""
        if self._key is None:
            return ciphertext
        if len(ciphertext) < TAG_LEN:  # (libsodium's binding would fail on it another way)
            raise CryptoError(f"a ciphertext of {len(ciphertext)} bytes, shorter than its tag")
        return crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, self._next_nonce(), self._key)


class _SymmetricState:
    def __init__(self, prologue: bytes) -> None:
        self.h = PROTOCOL_NAME if len(PROTOCOL_NAME) == 32 else hashlib.sha256(PROTOCOL_NAME).digest()
        self.ck = self.h
        self.cipher = CipherState()
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, material: bytes) -> None:
        self.ck, key = hkdf(self.ck, material, 2)
        self.cipher = CipherState(key)

    def mix_key_and_hash(self, material: bytes) -> None:
        self.ck, temp_h, key = hkdf(self.ck, material, 3)
        self.mix_hash(temp_h)
        self.cipher = CipherState(key)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt(plaintext, self.h)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt(ciphertext, self.h)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        first, second = hkdf(self.ck, b"", 2)
        return CipherState(first), CipherState(second)


class Responder:
    """One handshake, as the responder: read_message (the initiator's `psk, e`), then
    write_message (`e, ee`), then ciphers(). Each step once, in that order."""

    def __init__(self, psk: bytes, prologue: bytes) -> None:
        if len(psk) != PSK_LEN:
            raise ValueError(f"the pre-shared key must be {PSK_LEN} bytes (got {len(psk)})")
        self._psk = psk
        self._state: _SymmetricState | None = _SymmetricState(prologue)
        self._their_e: bytes | None = None
        self._ciphers: tuple[CipherState, CipherState] | None = None
        self.initiator_ephemeral = b""  # the initiator's public ephemeral key, once read

    def read_message(self, message: bytes) -> bytes:
        """The initiator's first message; its payload, or HandshakeFailed."""
        state = self._state
        if state is None or self._their_e is not None:
            raise HandshakeFailed("a handshake message out of order")
        if len(message) < DH_LEN + TAG_LEN:
            raise HandshakeFailed(f"a handshake message of {len(message)} bytes, under {DH_LEN + TAG_LEN}")
        their_e = message[:DH_LEN]
        state.mix_key_and_hash(self._psk)  # psk
        state.mix_hash(their_e)  # e (and, in a psk handshake, MixKey(e) too)
        state.mix_key(their_e)
        try:
            payload = state.decrypt_and_hash(message[DH_LEN:])
        except CryptoError:
            self._state = None
            raise HandshakeFailed("the handshake does not verify: a wrong key, or tampered with") from None
        self._their_e = self.initiator_ephemeral = their_e
        return payload

    def write_message(self, payload: bytes = b"") -> bytes:
        """The answer (`e, ee`), after which the transport ciphers are ready."""
        state = self._state
        if state is None or self._their_e is None or self._ciphers is not None:
            raise HandshakeFailed("a handshake message out of order")
        secret = os.urandom(DH_LEN)  # X25519 clamps it
        ours = crypto_scalarmult_base(secret)
        state.mix_hash(ours)  # e
        state.mix_key(ours)
        try:
            shared = crypto_scalarmult(secret, self._their_e)  # ee
        except CryptoError:  # a low-order point: libsodium refuses the all-zero result
            self._state = None
            raise HandshakeFailed("the initiator's ephemeral key is not a usable curve point") from None
        state.mix_key(shared)
        message = ours + state.encrypt_and_hash(payload)
        self._ciphers = state.split()
        self._state = None  # the handshake's secrets are not kept past the split
        return message

    def ciphers(self) -> tuple[CipherState, CipherState]:
        """(send, receive) for the responder: the initiator sends with the first."""
        if self._ciphers is None:
            raise HandshakeFailed("the handshake is not finished")
        initiator_to_responder, responder_to_initiator = self._ciphers
        return responder_to_initiator, initiator_to_responder
