"""Table-driven step tests: each line is (input, the actions it produces, the state
after it). Four validators of equal power; "me" is the engine under test and
p0, p1, p2 are the proposers of rounds 0, 1, 2 (never me unless a test says so).
WAL appends are left out of the transcripts; test_persistence covers them.
"""

from __future__ import annotations

from dataclasses import replace

from protocol.consensus import ConsensusConfig, Step, TxsAvailable
from protocol.crypto import Keypair
from protocol.types import Vote, VoteType

from .harness import CHAIN_ID
from .rig import Rig

PROPOSE, PREVOTE, PRECOMMIT = Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT


def test_non_proposer_prevotes_locks_and_decides() -> None:
    rig = Rig()
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B1", 0)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], "r0 propose lock=- valid=-"),
        # L22 waits for valid(v): the engine's checks passed, the host's answer is pending.
        (rig.proposal(0, "B1"), ["validate B1"], "r0 propose lock=- valid=-"),
        (rig.validity("B1"), ["persist prevote r0", "prevote r0 B1"], "r0 prevote lock=- valid=-"),  # L24
        (rig.prevote(p0, 0, "B1"), [], "r0 prevote lock=- valid=-"),
        # L36–L43: +2/3 prevotes for B1 with its proposal known and valid.
        (rig.prevote(p1, 0, "B1"), ["persist precommit r0", "precommit r0 B1"], "r0 precommit lock=B1@0 valid=B1@0"),
        (rig.precommit(p0, 0, "B1"), [], None),
        # L49: +2/3 precommits for B1; deciding does not wait for anything.
        (rig.precommit(p2, 0, "B1"), ["decide r0 B1"], "r0 committed lock=B1@0 valid=B1@0"),
        (rig.precommit(p1, 0, "B1"), ["ignored stale_height"], None),
    ])


def test_proposer_builds_proposes_and_decides() -> None:
    rig = Rig()
    rig = Rig(me=rig.proposers[0])
    a, b, c = rig.others
    rig.block("B1", 0)
    rig.play([
        # L14, L18: getValue() is BuildBlock; the proposer also arms timeoutPropose.
        (rig.start(), ["build r0", "timeout propose r0 3000"], "r0 propose lock=- valid=-"),
        # L19 then L22 on its own proposal: the sign state is persisted before each broadcast.
        (
            rig.built(0, "B1"),
            ["persist propose r0", "propose r0 B1 pol=-1", "persist prevote r0", "prevote r0 B1"],
            "r0 prevote lock=- valid=-",
        ),
        (rig.built(0, "B1"), [], None),  # a second answer is stale
        (rig.prevote(a, 0, "B1"), [], None),
        (rig.prevote(b, 0, "B1"), ["persist precommit r0", "precommit r0 B1"], "r0 precommit lock=B1@0 valid=B1@0"),
        (rig.precommit(c, 0, "B1"), [], None),
        (rig.precommit(a, 0, "B1"), ["decide r0 B1"], "r0 committed lock=B1@0 valid=B1@0"),
    ])


def test_paper_locking_lock_on_polka_unlock_only_on_later_polka() -> None:
    rig = Rig()
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B1", 0)
    rig.block("B2", 1)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.proposal(0, "B1"), ["validate B1"], None),
        (rig.validity("B1"), ["persist prevote r0", "prevote r0 B1"], None),
        (rig.prevote(p0, 0, "B1"), [], None),
        # Polka for B1 in round 0: lock (L38–L39).
        (rig.prevote(p1, 0, "B1"), ["persist precommit r0", "precommit r0 B1"], "r0 precommit lock=B1@0 valid=B1@0"),
        (rig.precommit(p0, 0, None), [], None),
        (rig.precommit(p1, 0, None), ["timeout precommit r0 1000"], None),  # L47
        (rig.timeout(PRECOMMIT, 0), ["timeout propose r1 3500"], "r1 propose lock=B1@0 valid=B1@0"),  # L65–L67
        # A fresh proposal of another block while locked: nil at once (L23 fails whatever
        # valid(B2) will say), the host is still asked about B2.
        (
            rig.proposal(1, "B2"),
            ["validate B2", "persist prevote r1", "prevote r1 nil"],
            "r1 prevote lock=B1@0 valid=B1@0",
        ),
        (rig.validity("B2"), [], None),
        (rig.prevote(p0, 1, "B2"), [], None),
        (rig.prevote(p1, 1, "B2"), ["timeout prevote r1 1500"], None),  # L34
        # A later polka, for B2 in round 1, while in prevote: the lock moves (L36–L41).
        (rig.prevote(p2, 1, "B2"), ["persist precommit r1", "precommit r1 B2"], "r1 precommit lock=B2@1 valid=B2@1"),
        (rig.timeout(PREVOTE, 1), [], "r1 precommit lock=B2@1 valid=B2@1"),  # L62: no longer in prevote
    ])


def test_reproposal_with_a_newer_polka_unlocks() -> None:
    """L28–L30: locked on B1 in round 0, a round-2 proposal of B2 justified by a
    round-1 polka is prevoted, because lockedRound 0 ≤ vr 1."""
    rig = Rig()
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B1", 0)
    rig.block("B2", 1)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.proposal(0, "B1"), ["validate B1"], None),
        (rig.validity("B1"), ["persist prevote r0", "prevote r0 B1"], None),
        (rig.prevote(p0, 0, "B1"), [], None),
        (rig.prevote(p1, 0, "B1"), ["persist precommit r0", "precommit r0 B1"], "r0 precommit lock=B1@0 valid=B1@0"),
        (rig.precommit(p0, 0, None), [], None),
        (rig.precommit(p1, 0, None), ["timeout precommit r0 1000"], None),
        (rig.timeout(PRECOMMIT, 0), ["timeout propose r1 3500"], None),
        (rig.proposal(1, "B2"), ["validate B2", "persist prevote r1", "prevote r1 nil"], None),
        (rig.validity("B2"), [], None),
        (rig.prevote(p0, 1, "B2"), [], None),
        (rig.prevote(p1, 1, "B2"), ["timeout prevote r1 1500"], None),
        (rig.timeout(PREVOTE, 1), ["persist precommit r1", "precommit r1 nil"], "r1 precommit lock=B1@0 valid=B1@0"),
        # The polka completes after this node precommitted nil: valid value only (L42–L43).
        (rig.prevote(p2, 1, "B2"), [], "r1 precommit lock=B1@0 valid=B2@1"),
        (rig.precommit(p0, 1, None), [], None),
        (rig.precommit(p1, 1, None), ["timeout precommit r1 1500"], None),
        (rig.timeout(PRECOMMIT, 1), ["timeout propose r2 4000"], "r2 propose lock=B1@0 valid=B2@1"),
        (
            rig.proposal(2, "B2", pol_round=1),
            ["persist prevote r2", "prevote r2 B2"],
            "r2 prevote lock=B1@0 valid=B2@1",
        ),
    ])


def test_reproposal_with_an_older_polka_than_the_lock_gets_nil() -> None:
    """L29 fails: locked on B1 in round 1, a round-2 proposal of B2 justified by a
    round-0 polka is prevoted nil."""
    rig = Rig()
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B2", 0)
    rig.block("B1", 1)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.timeout(PROPOSE, 0), ["persist prevote r0", "prevote r0 nil"], "r0 prevote lock=- valid=-"),  # L57–L60
        (rig.proposal(0, "B2"), ["validate B2"], None),
        (rig.validity("B2"), [], None),
        (rig.prevote(p0, 0, "B2"), [], None),
        (rig.prevote(p1, 0, "B2"), ["timeout prevote r0 1000"], None),
        (rig.timeout(PREVOTE, 0), ["persist precommit r0", "precommit r0 nil"], None),  # L61–L64
        (rig.prevote(p2, 0, "B2"), [], "r0 precommit lock=- valid=B2@0"),
        (rig.precommit(p0, 0, None), [], None),
        (rig.precommit(p1, 0, None), ["timeout precommit r0 1000"], None),
        (rig.timeout(PRECOMMIT, 0), ["timeout propose r1 3500"], None),
        (rig.proposal(1, "B1"), ["validate B1"], None),
        (rig.validity("B1"), ["persist prevote r1", "prevote r1 B1"], None),
        (rig.prevote(p0, 1, "B1"), [], None),
        (rig.prevote(p1, 1, "B1"), ["persist precommit r1", "precommit r1 B1"], "r1 precommit lock=B1@1 valid=B1@1"),
        (rig.precommit(p0, 1, None), [], None),
        (rig.precommit(p1, 1, None), ["timeout precommit r1 1500"], None),
        (rig.timeout(PRECOMMIT, 1), ["timeout propose r2 4000"], None),
        (
            rig.proposal(2, "B2", pol_round=0),
            ["persist prevote r2", "prevote r2 nil"],
            "r2 prevote lock=B1@1 valid=B1@1",
        ),
    ])


def test_proposer_reproposes_its_valid_value() -> None:
    """L15–L16: a proposer with a valid value proposes it again, with its round."""
    rig = Rig()
    rig = Rig(me=rig.proposers[1])
    p0 = rig.proposers[0]
    a, b = rig.others[:2]
    rig.block("B1", 0)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.proposal(0, "B1"), ["validate B1"], None),
        (rig.validity("B1"), ["persist prevote r0", "prevote r0 B1"], None),
        (rig.prevote(a, 0, "B1"), [], None),
        (rig.prevote(b, 0, "B1"), ["persist precommit r0", "precommit r0 B1"], "r0 precommit lock=B1@0 valid=B1@0"),
        (rig.precommit(a, 0, None), [], None),
        (rig.precommit(b, 0, None), ["timeout precommit r0 1000"], None),
        (
            rig.timeout(PRECOMMIT, 0),
            [
                "persist propose r1",
                "propose r1 B1 pol=0",
                "timeout propose r1 3500",
                "persist prevote r1",
                "prevote r1 B1",
            ],
            "r1 prevote lock=B1@0 valid=B1@0",
        ),
    ])
    assert p0 != rig.me


def test_timeouts_carry_a_silent_round_forward_and_stale_ones_do_nothing() -> None:
    rig = Rig()
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B1", 0)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.timeout(PREVOTE, 0), [], "r0 propose lock=- valid=-"),  # not in prevote yet
        (rig.timeout(PROPOSE, 3), [], "r0 propose lock=- valid=-"),  # another round
        (rig.timeout(PROPOSE, 0, height=2), [], "r0 propose lock=- valid=-"),  # another height
        (rig.timeout(PROPOSE, 0), ["persist prevote r0", "prevote r0 nil"], "r0 prevote lock=- valid=-"),
        (rig.timeout(PROPOSE, 0), [], "r0 prevote lock=- valid=-"),
        (rig.prevote(p0, 0, None), [], None),
        (rig.prevote(p1, 0, "B1"), ["timeout prevote r0 1000"], None),  # L34: +2/3 of anything
        (rig.timeout(PREVOTE, 0), ["persist precommit r0", "precommit r0 nil"], "r0 precommit lock=- valid=-"),
        (rig.precommit(p0, 0, None), [], None),
        (rig.precommit(p1, 0, "B1"), ["timeout precommit r0 1000"], None),
        (rig.precommit(p2, 0, None), [], None),  # L47 fires once per round
        (rig.timeout(PRECOMMIT, 0), ["timeout propose r1 3500"], "r1 propose lock=- valid=-"),
        (rig.timeout(PRECOMMIT, 0), [], "r1 propose lock=- valid=-"),
    ])


def test_nil_polka_precommits_nil() -> None:
    rig = Rig()
    p0, p1, _ = rig.proposers[:3]
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.timeout(PROPOSE, 0), ["persist prevote r0", "prevote r0 nil"], None),
        (rig.prevote(p0, 0, None), [], None),
        (rig.prevote(p1, 0, None), ["persist precommit r0", "precommit r0 nil"], "r0 precommit lock=- valid=-"),  # L44
    ])


def test_one_third_in_a_higher_round_skips_ahead() -> None:
    rig = Rig()
    a, b, c = rig.others
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.prevote(a, 5, None), [], "r0 propose lock=- valid=-"),  # 1 of 4: not +1/3
        # a seen at 5, b at 7: validators at rounds ≥ 5 hold 2 of 4 > 1/3 (L55).
        (rig.precommit(b, 7, None), ["timeout propose r5 5500"], "r5 propose lock=- valid=-"),
        (rig.prevote(c, 2, None), [], "r5 propose lock=- valid=-"),  # lower rounds never pull back
    ])


def test_double_vote_yields_evidence_once_and_a_third_vote_is_refused() -> None:
    rig = Rig()
    a = rig.others[0]
    rig.block("B1", 0)
    rig.block("B2", 0)
    first = rig.prevote(a, 0, "B1")
    second = rig.prevote(a, 0, None)
    name_a = f"v{a}"
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (first, [], None),
        (second, [f"evidence {name_a} prevote r0"], None),
        (second, [], None),  # the same pair again: no second report
        (first, [], None),
        (rig.prevote(a, 0, "B2"), ["rejected excess_votes"], None),
        (rig.precommit(a, 0, "B1"), [], None),  # another type is another vote set
        (rig.precommit(a, 0, "B2"), [f"evidence {name_a} precommit r0"], None),
    ])


def test_same_block_with_another_timestamp_is_not_equivocation() -> None:
    rig = Rig()
    a = rig.others[0]
    rig.block("B1", 0)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.vote(a, VoteType.PREVOTE, 0, "B1", ts=1), [], None),
        (rig.vote(a, VoteType.PREVOTE, 0, "B1", ts=2), [], None),
    ])


def test_bad_messages_are_rejected_with_a_reason() -> None:
    rig = Rig()
    p0, p1, _ = rig.proposers[:3]
    rig.block("B1", 0)
    rig.block("B2", 0)
    rig.block("B3", 0)
    stranger = Keypair(bytes(range(32)))
    forged = rig.prevote(p0, 0, "B1")
    forged = replace(forged, vote=replace(forged.vote, signature=bytes(64)))
    outsider = replace(forged, vote=Vote.create(stranger, CHAIN_ID, VoteType.PREVOTE, 1, 0, None, rig.now))
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (forged, ["rejected bad_signature"], None),
        (outsider, ["rejected not_validator"], None),
        (rig.proposal(0, "B1", signer=p1), ["rejected wrong_proposer"], None),
        (rig.proposal(0, "B1"), ["validate B1"], None),
        # The proposer equivocates: kept once (a decision may need it), reported each time.
        (rig.proposal(0, "B2"), ["rejected conflicting_proposal", "validate B2"], None),
        (rig.proposal(0, "B3"), ["rejected conflicting_proposal"], None),
        # The host rejects B1: blame the proposer; L22 prevotes nil.
        (
            rig.validity("B1", ok=False),
            ["rejected invalid_block", "persist prevote r0", "prevote r0 nil"],
            "r0 prevote lock=- valid=-",
        ),
    ])


def test_block_failing_the_engine_checks_is_rejected_and_prevoted_nil() -> None:
    rig = Rig()
    rig.block("BAD", 0, app_hash=bytes(32))  # fine for the engine: the app hash is the host's
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.proposal(0, "BAD"), ["validate BAD"], None),
    ])
    rig = Rig()
    wrong_time = rig.block("B1", 0)
    header = replace(wrong_time.header, time_ms=wrong_time.header.time_ms + 1)
    rig.name(replace(wrong_time, header=header), "LATE")
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.proposal(0, "LATE"), ["rejected invalid_block", "persist prevote r0", "prevote r0 nil"], None),
    ])


def test_commit_for_an_unknown_block_fetches_it_then_decides() -> None:
    rig = Rig()
    p0, p1, p2 = rig.proposers[:3]
    rig.block("B9", 0)
    rig.block("B8", 0)
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.received("B9"), ["ignored unsolicited"], None),
        (rig.precommit(p0, 0, "B9"), [], None),
        (rig.precommit(p1, 0, "B9"), [], None),
        (rig.precommit(p2, 0, "B9"), ["request r0 B9", "timeout precommit r0 1000"], None),
        (rig.received("B8"), ["ignored unsolicited"], None),
        (rig.received("B9"), ["validate B9"], None),
        (rig.validity("B9"), ["decide r0 B9"], "r0 committed lock=- valid=-"),
    ])


def test_messages_for_other_heights() -> None:
    rig = Rig()
    a = rig.others[0]
    later = rig.prevote(a, 0, None)
    rig.play([
        (later, ["ignored no_height"], None),
        (rig.start(), ["timeout propose r0 3000"], None),
        (replace(later, vote=_at_height(rig, a, 2)), [], None),  # next height: buffered
        (replace(later, vote=_at_height(rig, a, 3)), ["ignored future_height"], None),
    ])
    rig = Rig(config=ConsensusConfig(max_buffered_votes=1))
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (replace(later, vote=_at_height(rig, a, 2)), [], None),
        (replace(later, vote=_at_height(rig, rig.others[1], 2)), ["ignored buffer_full"], None),
    ])


def test_far_future_rounds_are_bounded_per_validator() -> None:
    rig = Rig(config=ConsensusConfig(min_block_interval_ms=0, future_rounds_per_validator=2))
    a = rig.others[0]
    rig.play([
        (rig.start(), ["timeout propose r0 3000"], None),
        (rig.prevote(a, 10, None), [], None),
        (rig.prevote(a, 20, None), [], None),
        (rig.prevote(a, 5, None), ["ignored round_limit"], None),  # below both kept rounds
        (rig.prevote(a, 30, None), [], None),  # evicts round 10
        (rig.prevote(a, 1, None), [], None),  # round_p + 1 is always kept
    ])
    assert len(rig.engine._h.log.votes(10, VoteType.PREVOTE)) == 0  # type: ignore[union-attr]
    assert len(rig.engine._h.log.votes(30, VoteType.PREVOTE)) == 1  # type: ignore[union-attr]


def test_txs_available_ends_the_wait_for_a_non_empty_block() -> None:
    config = ConsensusConfig(min_block_interval_ms=0, create_empty_blocks=False)
    rig = Rig(config=config)
    start = replace(rig.start(), prev_block_empty=True)
    rig.play([
        (start, [], "r0 new_height lock=- valid=-"),
        (rig.timeout(Step.NEW_HEIGHT, 0), [], "r0 new_height lock=- valid=-"),
        (TxsAvailable(rig.now), ["timeout propose r0 3000"], "r0 propose lock=- valid=-"),
    ])


def _at_height(rig: Rig, who: int, height: int) -> Vote:
    return Vote.create(rig.keys[who], CHAIN_ID, VoteType.PREVOTE, height, 0, None, rig.now)


def test_messages_offers_the_height_log_for_gossip() -> None:
    rig = Rig()
    p0, p1, _ = rig.proposers[:3]
    rig.block("B1", 0)
    assert rig.engine.messages() == []
    inputs = [rig.start(), rig.proposal(0, "B1"), rig.validity("B1")]
    inputs += [rig.prevote(p1, 0, "B1"), rig.precommit(p0, 0, None)]
    for inp in inputs:
        rig.step(inp)
    held = rig.engine.messages()
    assert held[0] == inputs[1].proposal  # type: ignore[union-attr]
    assert {(type(m).__name__, m.round) for m in held[1:]} == {("Vote", 0)}
    assert inputs[3].vote in held and inputs[4].vote in held  # type: ignore[union-attr]
    assert len(held) == 4  # the proposal, two received votes and this node's prevote
