"""Vote sets and the per-height message log."""

from __future__ import annotations

import pytest

from protocol.consensus import ConsensusConfig
from protocol.consensus.msglog import MessageLog, ProposalOutcome
from protocol.consensus.votes import AddOutcome, VoteSet
from protocol.errors import InvariantViolation
from protocol.types import Vote, VoteType

from .harness import CHAIN_ID, keypair
from .rig import Rig

KEYS = [keypair(i) for i in range(5)]
B1, B2 = b"\x01" * 32, b"\x02" * 32


def prevote(i: int, block: bytes | None, round: int = 0, ts: int = 1) -> Vote:
    return Vote.create(KEYS[i], CHAIN_ID, VoteType.PREVOTE, 1, round, block, ts)


def test_vote_set_sums_power_per_block() -> None:
    rig = Rig(powers=[1, 2, 3, 4])
    vs = VoteSet(rig.vset)
    assert vs.add(prevote(0, B1)).outcome == AddOutcome.ADDED
    assert vs.add(prevote(1, B1)).outcome == AddOutcome.ADDED
    assert vs.add(prevote(2, None)).outcome == AddOutcome.ADDED
    assert (vs.power_for(B1), vs.power_for(None), vs.any_power) == (3, 3, 6)
    assert not vs.has_two_thirds_any()  # 6 of 10
    vs.add(prevote(3, B1))
    assert vs.power_for(B1) == 7 and vs.has_two_thirds_for(B1) and vs.blocks_with_two_thirds() == [B1]
    assert [v.validator for v in vs.votes_for(B1)] == sorted(KEYS[i].public_key for i in (0, 1, 3))
    with pytest.raises(InvariantViolation):
        vs.add(Vote.create(keypair(99), CHAIN_ID, VoteType.PREVOTE, 1, 0, None, 1))


def test_vote_set_equivocation() -> None:
    rig = Rig()
    vs = VoteSet(rig.vset)
    first, second, third = prevote(0, B2), prevote(0, B1), prevote(0, None)
    vs.add(first)
    assert vs.add(prevote(0, B2, ts=99)).outcome == AddOutcome.DUPLICATE
    result = vs.add(second)
    assert result.outcome == AddOutcome.CONFLICT and result.evidence is not None
    assert (result.evidence.vote_a, result.evidence.vote_b) == (second, first)  # canonical order
    assert vs.add(third).outcome == AddOutcome.EXCESS
    # The equivocator counts once towards "any" and once for each block it voted for.
    assert (vs.any_power, vs.power_for(B1), vs.power_for(B2)) == (1, 1, 1)
    vs.remove(KEYS[0].public_key)
    assert (vs.any_power, vs.power_for(B1), vs.power_for(B2), len(vs)) == (0, 0, 0, 0)


def test_skip_target_needs_one_third_seen_at_or_above() -> None:
    rig = Rig()  # 4 validators of power 1
    log = MessageLog(rig.vset, ConsensusConfig())
    keys = [k.public_key for k in rig.keys]
    log.note_round(keys[0], 9)
    assert log.skip_target(0) is None
    log.note_round(keys[1], 4)
    assert log.skip_target(0) == 4  # two of four seen at ≥ 4
    assert log.skip_target(4) is None
    log.note_round(keys[2], 6)
    assert log.skip_target(0) == 6


def test_future_rounds_are_capped_per_validator_keeping_the_latest() -> None:
    rig = Rig()
    log = MessageLog(rig.vset, ConsensusConfig(future_rounds_per_validator=2))
    pk = rig.keys[0].public_key
    for r in (5, 9):
        assert log.admit(pk, r, 0)
        log.add_vote(Vote.create(rig.keys[0], CHAIN_ID, VoteType.PREVOTE, 1, r, None, 1))
    assert not log.admit(pk, 3, 0)  # older than both kept rounds
    assert log.admit(pk, 1, 0)  # round_p + 1 always fits
    assert log.admit(pk, 12, 0)  # evicts round 5
    assert len(log.votes(5, VoteType.PREVOTE)) == 0 and len(log.votes(9, VoteType.PREVOTE)) == 1
    assert log.admit(pk, 9, 0)  # a round already held


def test_proposals_per_round_are_bounded_and_blocks_found_by_hash() -> None:
    rig = Rig()
    log = MessageLog(rig.vset, ConsensusConfig(max_proposals_per_round=2))
    blocks = [rig.block(f"B{i}", 0) for i in range(3)]
    props = [rig.proposal(0, f"B{i}").proposal for i in range(3)]
    assert log.add_proposal(props[0], "a") == ProposalOutcome.ADDED
    assert log.add_proposal(props[0], "a") == ProposalOutcome.DUPLICATE
    assert log.add_proposal(props[1], "b") == ProposalOutcome.CONFLICT
    assert log.add_proposal(props[2], "c") == ProposalOutcome.CONFLICT_DROPPED
    assert log.proposals(0) == props[:2]
    assert log.block(blocks[1].hash) == blocks[1] and log.block(blocks[2].hash) is None
    assert log.senders_of(blocks[1].hash) == [(props[1].proposer, "b")]
    assert log.has_proposal_for(0, blocks[0].hash) and not log.has_proposal_for(1, blocks[0].hash)
