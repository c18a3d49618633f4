"""Transaction signatures: the documented signed bytes, tamper detection on every
field, and co-signatures that cannot be stripped, added or reordered."""

from __future__ import annotations

import dataclasses

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgpack_reference import ref_pack
from protocol_strategies import budget, key, tx_kinds, u64

from protocol import crypto
from protocol.types import CoSignature, Tx

CHAIN = "ekklesia-sig-test"
COSIGNER_POOL = [key(20 + i) for i in range(4)]


@st.composite
def signed_txs(draw: st.DrawFn) -> Tx:
    cosigners = draw(st.lists(st.sampled_from(COSIGNER_POOL), max_size=3, unique_by=id))
    return Tx.create(
        key(1), CHAIN, draw(u64), draw(tx_kinds), draw(st.binary(max_size=40)), tuple(cosigners)
    )


def flip(data: bytes, i: int = 0) -> bytes:
    out = bytearray(data)
    out[i % len(out)] ^= 0x01
    return bytes(out)


def test_signed_bytes_are_exactly_the_documented_array() -> None:
    tx = Tx.create(key(1), CHAIN, 7, "transfer", b"\x01\x02", (key(20), key(21)))
    signers = sorted([key(20).public_key, key(21).public_key])
    payload = ref_pack([CHAIN, key(1).public_key, 7, "transfer", b"\x01\x02", signers])
    assert tx.signing_payload() == payload
    message = ref_pack(["ekklesia/sig/v1", CHAIN, "tx", payload])
    assert crypto.sign_bytes(CHAIN, "tx", payload) == message
    # Plain ed25519 over those bytes, checked with the library directly.
    nacl.signing.VerifyKey(tx.sender).verify(message, tx.signature)
    for c in tx.cosignatures:
        nacl.signing.VerifyKey(c.signer).verify(message, c.signature)


@budget(40)
@given(signed_txs())
def test_created_transactions_verify(tx: Tx) -> None:
    assert tx.verify_signatures()
    assert Tx.decode(tx.encode()).verify_signatures()


@budget(40)
@given(signed_txs(), st.data())
def test_tampering_with_any_field_breaks_verification(tx: Tx, data: st.DataObject) -> None:
    tampered = data.draw(
        st.sampled_from(
            [
                dataclasses.replace(tx, chain_id=tx.chain_id + "x"),
                dataclasses.replace(tx, sender=key(2).public_key),
                dataclasses.replace(tx, nonce=(tx.nonce + 1) % 2**64),
                dataclasses.replace(tx, kind=tx.kind[:-1] if tx.kind else "k"),
                dataclasses.replace(tx, body=tx.body + b"\x00"),
                dataclasses.replace(tx, body=flip(tx.body) if tx.body else b"\x00"),
                dataclasses.replace(tx, signature=flip(tx.signature, data.draw(st.integers()))),
                dataclasses.replace(tx, signature=bytes(64)),
            ]
        )
    )
    assert not tampered.verify_signatures()


@budget(30)
@given(signed_txs().filter(lambda t: len(t.cosignatures) > 0), st.data())
def test_a_corrupted_cosignature_breaks_verification(tx: Tx, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(tx.cosignatures) - 1))
    bad = list(tx.cosignatures)
    bad[i] = CoSignature(bad[i].signer, flip(bad[i].signature, data.draw(st.integers())))
    assert not dataclasses.replace(tx, cosignatures=tuple(bad)).verify_signatures()


@budget(30)
@given(signed_txs().filter(lambda t: len(t.cosignatures) > 0), st.data())
def test_a_stripped_cosignature_breaks_verification(tx: Tx, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(tx.cosignatures) - 1))
    stripped = tx.cosignatures[:i] + tx.cosignatures[i + 1 :]
    assert not dataclasses.replace(tx, cosignatures=stripped).verify_signatures()


@budget(30)
@given(signed_txs().filter(lambda t: len(t.cosignatures) < len(COSIGNER_POOL)), st.data())
def test_an_added_cosignature_breaks_verification(tx: Tx, data: st.DataObject) -> None:
    present = {c.signer for c in tx.cosignatures}
    intruder = data.draw(st.sampled_from([k for k in COSIGNER_POOL if k.public_key not in present]))
    # The intruder signs what it sees (the original payload), or the payload that names it;
    # either way some signature no longer matches.
    unsigned = tuple(
        sorted([*tx.cosignatures, CoSignature(intruder.public_key, bytes(64))], key=lambda c: c.signer)
    )
    with_intruder = dataclasses.replace(tx, cosignatures=unsigned)
    for payload in (tx.signing_payload(), with_intruder.signing_payload()):
        sig = intruder.sign(CHAIN, crypto.KIND_TX, payload)
        added = tuple(
            CoSignature(c.signer, sig) if c.signer == intruder.public_key else c for c in unsigned
        )
        assert not dataclasses.replace(tx, cosignatures=added).verify_signatures()


def test_cosignatures_swapped_between_signers_break_verification() -> None:
    tx = Tx.create(key(1), CHAIN, 1, "k", b"", (key(20), key(21)))
    a, b = tx.cosignatures
    swapped = (CoSignature(a.signer, b.signature), CoSignature(b.signer, a.signature))
    assert not dataclasses.replace(tx, cosignatures=swapped).verify_signatures()


def test_reordered_cosignatures_are_not_a_valid_transaction() -> None:
    tx = Tx.create(key(1), CHAIN, 1, "k", b"", (key(20), key(21)))
    with pytest.raises(ValueError):
        dataclasses.replace(tx, cosignatures=tx.cosignatures[::-1])


def test_create_orders_cosigners_and_refuses_bad_sets() -> None:
    forward = Tx.create(key(1), CHAIN, 1, "k", b"", (key(20), key(21), key(22)))
    backward = Tx.create(key(1), CHAIN, 1, "k", b"", (key(22), key(21), key(20)))
    assert forward == backward and forward.hash == backward.hash
    with pytest.raises(ValueError):
        Tx.create(key(1), CHAIN, 1, "k", b"", (key(20), key(20)))
    with pytest.raises(ValueError):
        Tx.create(key(1), CHAIN, 1, "k", b"", (key(1),))


def test_tx_hash_covers_signatures() -> None:
    tx = Tx.create(key(1), CHAIN, 1, "k", b"")
    assert tx.hash != dataclasses.replace(tx, signature=flip(tx.signature)).hash
