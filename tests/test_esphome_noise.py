"""guardd's Noise responder against the initiator Home Assistant's client runs (noiseprotocol,
which aioesphomeapi drives): the handshake completes only with the same key and prologue, the
transport ciphers agree both ways, and anything tampered with fails without a usable state."""

from __future__ import annotations

import os

import pytest
from nacl.exceptions import CryptoError

from harness.esphome import PROLOGUE, initiator

from guardd.esphome import noise
from guardd.esphome.handshake import SeenEphemerals
from guardd.esphome.noise import DH_LEN, HandshakeFailed, Responder


def handshake(psk: bytes, their_psk: bytes | None = None, prologue: bytes = PROLOGUE):
    client = initiator(their_psk or psk, prologue)
    server = Responder(psk, PROLOGUE)
    payload = server.read_message(bytes(client.write_message()))
    client.read_message(server.write_message())
    return client, server, payload


def test_the_same_key_makes_ciphers_that_agree_both_ways():
    client, server, payload = handshake(os.urandom(32))
    assert payload == b"" and client.handshake_finished
    send, receive = server.ciphers()
    for i in range(5):  # the counters move together
        assert receive.decrypt(bytes(client.encrypt(b"to guardd %d" % i))) == b"to guardd %d" % i
        assert bytes(client.decrypt(send.encrypt(b"to home assistant %d" % i))) == b"to home assistant %d" % i


def test_a_wrong_key_fails_at_the_first_message_before_guardd_answers():
    with pytest.raises(HandshakeFailed, match="wrong key"):
        handshake(os.urandom(32), their_psk=os.urandom(32))


def test_a_different_prologue_fails_like_a_wrong_key():
    with pytest.raises(HandshakeFailed):
        handshake(os.urandom(32), prologue=b"NoiseAPIInit\x00\x01x")


@pytest.mark.parametrize("where", [0, DH_LEN - 1, DH_LEN, DH_LEN + 15])
def test_a_flipped_byte_in_the_first_message_fails(where):
    psk = os.urandom(32)
    message = bytearray(initiator(psk).write_message())
    message[where] ^= 0x40
    with pytest.raises(HandshakeFailed):
        Responder(psk, PROLOGUE).read_message(bytes(message))


def test_a_short_message_and_steps_out_of_order_fail():
    psk = os.urandom(32)
    with pytest.raises(HandshakeFailed):
        Responder(psk, PROLOGUE).read_message(b"\x00" * 47)
    with pytest.raises(HandshakeFailed):
        Responder(psk, PROLOGUE).write_message()
    with pytest.raises(HandshakeFailed):
        Responder(psk, PROLOGUE).ciphers()
    server = Responder(psk, PROLOGUE)
    message = bytes(initiator(psk).write_message())
    server.read_message(message)
    with pytest.raises(HandshakeFailed):
        server.read_message(message)  # (one first message per handshake)


def test_a_failed_handshake_keeps_nothing_usable():
    psk = os.urandom(32)
    server = Responder(psk, PROLOGUE)
    with pytest.raises(HandshakeFailed):
        server.read_message(bytes(initiator(os.urandom(32)).write_message()))
    with pytest.raises(HandshakeFailed):
        server.write_message()


def test_a_low_order_ephemeral_key_is_refused():
    """The all-zero point: DH with it gives zero, which libsodium refuses. The first message
    must still carry a valid tag, so this takes the key: a key holder gone wrong."""
    psk = os.urandom(32)
    server = Responder(psk, PROLOGUE)
    state = noise._SymmetricState(PROLOGUE)  # (noiseprotocol would not send such a key)
    zero = bytes(32)
    state.mix_key_and_hash(psk)
    state.mix_hash(zero)
    state.mix_key(zero)
    forged = zero + state.encrypt_and_hash(b"")
    server.read_message(forged)
    with pytest.raises(HandshakeFailed, match="curve point"):
        server.write_message()


def test_a_tampered_transport_frame_does_not_decrypt():
    client, server, _ = handshake(os.urandom(32))
    _, receive = server.ciphers()
    sealed = bytearray(client.encrypt(b"hello"))
    sealed[0] ^= 1
    with pytest.raises(CryptoError):
        receive.decrypt(bytes(sealed))


def test_a_replayed_ephemeral_key_is_seen_and_the_oldest_are_forgotten():
    seen = SeenEphemerals(size=3)
    keys = [os.urandom(32) for _ in range(4)]
    assert all(seen.first_time(k) for k in keys[:3])
    assert not seen.first_time(keys[0])
    assert seen.first_time(keys[3])  # ... and pushes keys[0] out
    assert not seen.first_time(keys[3])
    assert seen.first_time(keys[0])


def test_a_key_that_is_not_32_bytes_is_refused():
    with pytest.raises(ValueError):
        Responder(os.urandom(16), PROLOGUE)
