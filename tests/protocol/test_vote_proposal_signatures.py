"""Votes, proposals and evidence: every signed field is covered by the signature."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgpack_reference import ref_pack
from protocol_strategies import budget, example_instances, hashes, key, rounds, u64

from protocol import crypto
from protocol.types import Block, DuplicateVoteEvidence, Proposal, Tx, Vote, VoteType

CHAIN = "ekklesia-sig-test"


def flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x80]) + data[1:]


@st.composite
def signed_votes(draw: st.DrawFn) -> Vote:
    return Vote.create(
        key(draw(st.integers(0, 3))), CHAIN, draw(st.sampled_from(VoteType)), draw(u64),
        draw(rounds), draw(st.none() | hashes), draw(u64),
    )


def vote_tamperings(v: Vote) -> list[Vote]:
    other_type = VoteType.PREVOTE if v.type == VoteType.PRECOMMIT else VoteType.PRECOMMIT
    return [
        dataclasses.replace(v, type=other_type),
        dataclasses.replace(v, height=(v.height + 1) % 2**64),
        dataclasses.replace(v, round=(v.round + 1) % 2**31),
        dataclasses.replace(v, block_hash=None if v.block_hash else bytes(32)),
        dataclasses.replace(v, block_hash=flip(v.block_hash or bytes(32))),
        dataclasses.replace(v, validator=key(9).public_key),
        dataclasses.replace(v, timestamp_ms=(v.timestamp_ms + 1) % 2**64),
        dataclasses.replace(v, signature=flip(v.signature)),
    ]


@budget(40)
@given(signed_votes())
def test_vote_signature_covers_every_field(vote: Vote) -> None:
    assert vote.verify(CHAIN)
    assert Vote.decode(vote.encode()).verify(CHAIN)
    for tampered in vote_tamperings(vote):
        assert tampered != vote
        assert not tampered.verify(CHAIN)


def test_vote_signing_payload_is_the_fields_without_the_signature() -> None:
    v = Vote.create(key(1), CHAIN, VoteType.PREVOTE, 3, 0, None, 77)
    assert v.signing_payload() == ref_pack([1, 3, 0, None, key(1).public_key, 77])


def proposal_for(block: Block, round_: int = 2, pol_round: int = 1) -> Proposal:
    return Proposal.create(key(1), CHAIN, block.height, round_, pol_round, block, 1_000)


def test_proposal_signature_covers_every_field_and_the_block_header() -> None:
    p = proposal_for(example_instances()[Block])  # type: ignore[arg-type]
    assert p.verify(CHAIN)
    header = p.block.header
    changed_headers = [
        dataclasses.replace(header, **{f.name: _changed(getattr(header, f.name))})
        for f in dataclasses.fields(header)
        if f.name != "height"  # the proposal's own height must follow the block's
    ]
    tamperings: list[Any] = [
        dataclasses.replace(p, round=p.round + 1),
        dataclasses.replace(p, pol_round=-1),
        dataclasses.replace(p, proposer=key(9).public_key),
        dataclasses.replace(p, timestamp_ms=p.timestamp_ms + 1),
        dataclasses.replace(p, signature=flip(p.signature)),
        *(dataclasses.replace(p, block=dataclasses.replace(p.block, header=h))
          for h in changed_headers),
    ]
    bumped = dataclasses.replace(header, height=header.height + 1)
    tamperings.append(
        dataclasses.replace(p, height=p.height + 1, block=dataclasses.replace(p.block, header=bumped))
    )
    assert len(changed_headers) == 9
    for tampered in tamperings:
        assert not tampered.verify(CHAIN)


def _changed(value: Any) -> Any:
    if isinstance(value, bytes):
        return flip(value)
    if isinstance(value, str):
        return value + "x"
    return value + 1


def test_proposal_signing_payload_commits_to_the_block_hash() -> None:
    p = proposal_for(example_instances()[Block])  # type: ignore[arg-type]
    assert p.signing_payload() == ref_pack(
        [p.height, p.round, p.pol_round, p.block.hash, p.proposer, p.timestamp_ms]
    )


def test_proposal_covers_the_block_body_only_through_the_header() -> None:
    """By design the signature covers the header; a body swapped under the same header
    still carries a valid signature, and `Block.check_structure` is what catches it."""
    p = proposal_for(example_instances()[Block])  # type: ignore[arg-type]
    other_tx = Tx.create(key(5), "example-chain", 1, "k", b"")
    swapped = dataclasses.replace(p, block=dataclasses.replace(p.block, txs=(other_tx,)))
    assert swapped.verify(CHAIN)
    assert p.block.check_structure() is None
    assert swapped.block.check_structure() == "tx root does not match the transactions"


@pytest.mark.parametrize("nil_first", [True, False])
def test_evidence_verifies_only_with_both_signatures(nil_first: bool) -> None:
    a = Vote.create(key(2), CHAIN, VoteType.PREVOTE, 10, 1, None if nil_first else b"\x01" * 32, 5)
    b = Vote.create(key(2), CHAIN, VoteType.PREVOTE, 10, 1, b"\x02" * 32, 6)
    ev = DuplicateVoteEvidence.of(b, a)
    assert ev.verify(CHAIN)
    assert (ev.validator, ev.height) == (key(2).public_key, 10)
    assert not ev.verify("other-chain")
    bad_a = dataclasses.replace(ev.vote_a, signature=flip(ev.vote_a.signature))
    assert not DuplicateVoteEvidence(bad_a, ev.vote_b).verify(CHAIN)
    bad_b = dataclasses.replace(ev.vote_b, signature=flip(ev.vote_b.signature))
    assert not DuplicateVoteEvidence(ev.vote_a, bad_b).verify(CHAIN)


def test_signatures_are_deterministic() -> None:
    v1 = Vote.create(key(1), CHAIN, VoteType.PREVOTE, 3, 0, None, 77)
    v2 = Vote.create(key(1), CHAIN, VoteType.PREVOTE, 3, 0, None, 77)
    assert v1.signature == v2.signature
    assert crypto.verify(key(1).public_key, CHAIN, "vote", v1.signing_payload(), v1.signature)
