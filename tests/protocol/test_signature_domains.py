"""Domain separation: a signature made for one chain id or message kind never
verifies for another, whatever the payload."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from msgpack_reference import ref_pack
from protocol_strategies import budget, chain_ids, example_instances, key

from protocol import crypto
from protocol.types import Proposal, Tx, Vote

KINDS = [crypto.KIND_TX, crypto.KIND_VOTE, crypto.KIND_PROPOSAL]
SIGNER = key(3)


@budget(60)
@given(
    chain_a=chain_ids,
    chain_b=chain_ids,
    kind_a=st.sampled_from(KINDS),
    kind_b=st.sampled_from(KINDS),
    payload=st.binary(max_size=64),
)
def test_a_signature_verifies_only_for_its_chain_and_kind(
    chain_a: str, chain_b: str, kind_a: str, kind_b: str, payload: bytes
) -> None:
    sig = SIGNER.sign(chain_a, kind_a, payload)
    assert crypto.verify(SIGNER.public_key, chain_a, kind_a, payload, sig)
    same = (chain_a, kind_a) == (chain_b, kind_b)
    assert crypto.verify(SIGNER.public_key, chain_b, kind_b, payload, sig) is same


@budget(40)
@given(payload=st.binary(max_size=64), other=st.binary(max_size=64))
def test_a_signature_verifies_only_for_its_payload(payload: bytes, other: bytes) -> None:
    assume(payload != other)
    sig = SIGNER.sign("c", crypto.KIND_TX, payload)
    assert not crypto.verify(SIGNER.public_key, "c", crypto.KIND_TX, other, sig)


def test_sign_bytes_layout() -> None:
    assert crypto.sign_bytes("chain", "vote", b"\x01") == ref_pack(
        ["ekklesia/sig/v1", "chain", "vote", b"\x01"]
    )
    assert crypto.sign_bytes("c", "tx", b"").hex() == "94af656b6b6c657369612f7369672f7631a163a27478c400"


@pytest.mark.parametrize("name", ["Tx", "Vote", "Proposal"])
def test_a_message_signature_never_verifies_as_another_kind(name: str) -> None:
    ex = example_instances()
    tx: Tx = ex[Tx]  # type: ignore[assignment]
    vote: Vote = ex[Vote]  # type: ignore[assignment]
    proposal: Proposal = ex[Proposal]  # type: ignore[assignment]
    chain = "example-chain"  # the chain the examples were signed for
    signed = {
        "Tx": (tx.sender, crypto.KIND_TX, tx.signing_payload(), tx.signature),
        "Vote": (vote.validator, crypto.KIND_VOTE, vote.signing_payload(), vote.signature),
        "Proposal": (proposal.proposer, crypto.KIND_PROPOSAL, proposal.signing_payload(),
                     proposal.signature),
    }
    pubkey, kind, payload, sig = signed[name]
    assert crypto.verify(pubkey, chain, kind, payload, sig)
    for other in KINDS:
        if other != kind:
            assert not crypto.verify(pubkey, chain, other, payload, sig)
    assert not crypto.verify(pubkey, chain + "-2", kind, payload, sig)


def test_messages_signed_for_one_chain_fail_on_another() -> None:
    ex = example_instances()
    assert ex[Vote].verify("example-chain")  # type: ignore[attr-defined]
    assert not ex[Vote].verify("other-chain")  # type: ignore[attr-defined]
    assert ex[Proposal].verify("example-chain")  # type: ignore[attr-defined]
    assert not ex[Proposal].verify("other-chain")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pubkey", "sig"),
    [(b"\x00" * 31, b"\x00" * 64), (b"\x00" * 33, b"\x00" * 64), (SIGNER.public_key, b"\x00" * 63),
     (SIGNER.public_key, b"\x00" * 65), (b"\x00" * 32, b"\x00" * 64), (b"\xff" * 32, b"\xff" * 64)],
)
def test_malformed_keys_and_signatures_fail_quietly(pubkey: bytes, sig: bytes) -> None:
    assert crypto.verify(pubkey, "c", "tx", b"", sig) is False
    assert crypto.verify(pubkey, "c", "tx", b"", sig, crypto.VerifyCache()) is False
