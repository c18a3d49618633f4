"""Cross-field rules that make each value's encoding unique: broken on construction
they raise ValueError, arriving from the wire they raise DecodeError."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from protocol_strategies import example_instances, key

from protocol import codec
from protocol.errors import DecodeError
from protocol.types import (
    Commit,
    CommitSig,
    CoSignature,
    DuplicateVoteEvidence,
    Proposal,
    Tx,
    Vote,
    VoteType,
)
from protocol.validators import Validator, ValidatorSet
from protocol.wire import Struct

EX = example_instances()


def rejected_both_ways(cls: type[Struct], tree: list[Any], build: Any) -> None:
    with pytest.raises(ValueError):
        build()
    with pytest.raises(DecodeError):
        cls.decode(codec.pack(tree))


def cosig(i: int) -> CoSignature:
    return CoSignature(bytes([i]) * 32, bytes(64))


def test_cosignatures_must_be_sorted_unique_and_exclude_the_sender() -> None:
    tx: Tx = EX[Tx]  # type: ignore[assignment]
    for cosigs in [(cosig(2), cosig(1)), (cosig(1), cosig(1)),
                   (CoSignature(tx.sender, bytes(64)),)]:
        tree = tx.to_wire()
        tree[5] = [c.to_wire() for c in cosigs]
        rejected_both_ways(Tx, tree, lambda c=cosigs: dataclasses.replace(tx, cosignatures=c))


def test_commit_signatures_must_be_sorted_and_unique() -> None:
    commit: Commit = EX[Commit]  # type: ignore[assignment]
    a, b = commit.signatures[0], commit.signatures[1]
    for sigs in [(b, a), (a, a), (a, CommitSig(a.validator, a.timestamp_ms + 1, a.signature))]:
        tree = commit.to_wire()
        tree[3] = [s.to_wire() for s in sigs]
        rejected_both_ways(Commit, tree, lambda s=sigs: dataclasses.replace(commit, signatures=s))


def test_validator_sets_are_non_empty_sorted_and_unique() -> None:
    v1, v2 = Validator(b"\x01" * 32, 5), Validator(b"\x02" * 32, 7)
    for vals in [(), (v2, v1), (v1, v1), (v1, Validator(v1.pubkey, 9))]:
        tree = [[v.to_wire() for v in vals]]
        rejected_both_ways(ValidatorSet, tree, lambda v=vals: ValidatorSet(v))
    assert ValidatorSet.of([(v2.pubkey, 7), (v1.pubkey, 5)]).validators == (v1, v2)


def _vote(**changes: Any) -> Vote:
    base = Vote(VoteType.PREVOTE, 5, 1, b"\x10" * 32, b"\x01" * 32, 0, bytes(64))
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (_vote(block_hash=b"\x20" * 32), _vote()),  # wrong order
        (_vote(), _vote()),  # same block
        (_vote(), _vote(block_hash=b"\x10" * 32, timestamp_ms=9)),  # same block, other time
        (_vote(), _vote(block_hash=b"\x20" * 32, validator=b"\x02" * 32)),
        (_vote(), _vote(block_hash=b"\x20" * 32, height=6)),
        (_vote(), _vote(block_hash=b"\x20" * 32, round=2)),
        (_vote(), _vote(block_hash=b"\x20" * 32, type=VoteType.PRECOMMIT)),
        (_vote(block_hash=b"\x20" * 32), _vote(block_hash=None)),  # nil sorts first
    ],
)
def test_duplicate_vote_evidence_rules(a: Vote, b: Vote) -> None:
    rejected_both_ways(
        DuplicateVoteEvidence, [a.to_wire(), b.to_wire()], lambda: DuplicateVoteEvidence(a, b)
    )


def test_duplicate_vote_evidence_canonical_order_puts_nil_first() -> None:
    nil, block = _vote(block_hash=None), _vote()
    for pair in [(nil, block), (block, nil)]:
        evidence = DuplicateVoteEvidence.of(*pair)
        assert (evidence.vote_a, evidence.vote_b) == (nil, block)
    low, high = _vote(block_hash=b"\x01" * 32), _vote(block_hash=b"\x02" * 32)
    assert DuplicateVoteEvidence.of(high, low).vote_a == low


def test_proposal_pol_round_is_below_round_and_heights_agree() -> None:
    proposal: Proposal = EX[Proposal]  # type: ignore[assignment]
    for index, value, field in [(2, proposal.round, "pol_round"),
                                (2, proposal.round + 1, "pol_round"),
                                (0, proposal.height + 1, "height")]:
        tree = proposal.to_wire()
        tree[index] = value
        rejected_both_ways(
            Proposal, tree, lambda f=field, v=value: dataclasses.replace(proposal, **{f: v})
        )


def test_round_zero_proposal_has_pol_round_minus_one() -> None:
    block = EX[Proposal].block  # type: ignore[attr-defined]
    ok = Proposal.create(key(1), "c", block.height, 0, -1, block, 0)
    assert Proposal.decode(ok.encode()) == ok
    with pytest.raises(ValueError):
        Proposal.create(key(1), "c", block.height, 0, 0, block, 0)


def test_commit_from_votes_requires_agreeing_precommits_for_a_block() -> None:
    def pc(i: int, **kw: Any) -> Vote:
        args: dict[str, Any] = {"type": VoteType.PRECOMMIT, "height": 4, "round": 0,
                                "block_hash": b"\x05" * 32}
        args.update(kw)
        return Vote.create(key(i), "c", timestamp_ms=0, **args)

    commit = Commit.from_votes([pc(2), pc(1), pc(3)])
    assert [s.validator for s in commit.signatures] == sorted(
        key(i).public_key for i in (1, 2, 3)
    )
    assert set(commit.votes()) == {pc(1), pc(2), pc(3)}
    for bad in ([], [pc(1, block_hash=None)], [pc(1), pc(2, round=1)], [pc(1), pc(2, height=5)],
                [pc(1), pc(2, block_hash=b"\x06" * 32)], [pc(1), pc(2, type=VoteType.PREVOTE)],
                [pc(1), pc(1)]):
        with pytest.raises(ValueError):
            Commit.from_votes(bad)
