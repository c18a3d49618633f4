"""Where the minimum block interval counts from (engine.py, StartHeight)."""

from __future__ import annotations

from protocol.consensus import ConsensusConfig, Decide, ScheduleTimeout, StartHeight, Step
from protocol.consensus.blocktime import block_time_ms
from protocol.types import VoteType

from .rig import Rig

INTERVAL = 500


def decide_height_1(rig: Rig, precommit_ts: int, decided_at: int) -> Decide:
    """Height 1 decided by this engine at `decided_at`, on precommits the others
    stamped `precommit_ts` (its own is stamped when it precommits, at that time)."""
    p0, p1 = rig.proposers[:2]
    rig.block("B1", 0)
    rig.step(rig.start())
    rig.step(rig.proposal(0, "B1"))
    rig.step(rig.validity("B1"))
    rig.step(rig.prevote(p0, 0, "B1"))
    rig.step(rig.prevote(p1, 0, "B1"))  # polka: this engine precommits now
    rig.now = decided_at
    rig.step(rig.vote(p0, VoteType.PRECOMMIT, 0, "B1", ts=precommit_ts))
    out = rig.step(rig.vote(p1, VoteType.PRECOMMIT, 0, "B1", ts=precommit_ts))
    decided = [a for a in out if isinstance(a, Decide)]
    assert len(decided) == 1
    return decided[0]


def new_height_wait(rig: Rig, d: Decide) -> list[int]:
    start = StartHeight(rig.now, 2, rig.vset, d.block.hash, d.block.header.time_ms, last_commit=d.commit,
                        last_validators=rig.vset)
    return [a.delay_ms for a in rig.step(start) if isinstance(a, ScheduleTimeout) and a.step == Step.NEW_HEIGHT]


def test_the_interval_counts_from_the_blocks_time_when_this_engine_decided_late() -> None:
    rig = Rig(config=ConsensusConfig(min_block_interval_ms=INTERVAL))
    t0 = rig.now
    # Everyone else precommitted at t0 + 100; this engine saw the last of it 400 ms later.
    d = decide_height_1(rig, precommit_ts=t0 + 100, decided_at=t0 + 500)
    median = block_time_ms(d.commit, rig.vset, d.block.header.time_ms)
    assert median == t0 + 100
    assert new_height_wait(rig, d) == [median + INTERVAL - rig.now]  # 100 ms left, not 500


def test_a_clock_behind_the_others_counts_from_its_own_decision() -> None:
    rig = Rig(config=ConsensusConfig(min_block_interval_ms=INTERVAL))
    t0 = rig.now
    # The others' clocks read 2 s ahead of this engine's: their median is in its future.
    d = decide_height_1(rig, precommit_ts=t0 + 2_000, decided_at=t0 + 50)
    assert new_height_wait(rig, d) == [INTERVAL]
