"""Block time: BFT time as in CometBFT before proposer-based timestamps.

The time of block h > 1 is the voting-power-weighted median of the precommit
timestamps in the block's own ``last_commit`` (the precommits for block h−1),
weighted by the power each signer had at h−1, raised to at least one millisecond
after block h−1's time. Block 1's time is the genesis time.

Why it is BFT-safe: a commit holds more than 2/3 of the power and faulty
validators less than 1/3, so faulty signers hold less than half of any commit's
power; the weighted median is therefore between the smallest and the largest
timestamp of a correct validator. Correct validators stamp a precommit for block
v with ``max(now, v.time + 1)`` (`vote_time_ms`), so the median already exceeds
the previous block's time; the final ``max`` makes "strictly increasing" hold by
construction, whatever the commit.

The time is a function of data in the block and of the previous block, so every
validator checks it exactly; no clock comparison is involved.
"""

from __future__ import annotations

from protocol.types import Block, Commit
from protocol.validators import ValidatorSet


def weighted_median_ms(commit: Commit, validators: ValidatorSet) -> int:
    """The smallest timestamp t such that signers stamping ≤ t hold more than half of
    the commit's power. Signers outside `validators` weigh nothing."""
    entries = sorted((s.timestamp_ms, s.validator) for s in commit.signatures)
    total = sum(validators.power_of(pk) for _, pk in entries)
    if total == 0:
        raise ValueError("no signer of the commit is in the validator set")
    acc = 0
    for ts, pk in entries:
        acc += validators.power_of(pk)
        if 2 * acc > total:
            return ts
    raise AssertionError("unreachable: the cumulative power reaches the total")


def block_time_ms(
    last_commit: Commit | None, last_validators: ValidatorSet | None, prev_block_time_ms: int
) -> int:
    """The only valid header time of a block with `last_commit`. At height 1 (no
    last commit) `prev_block_time_ms` is the genesis time and is the block's time."""
    if last_commit is None:
        return prev_block_time_ms
    if last_validators is None:
        raise ValueError("a last commit needs the validator set that signed it")
    return max(weighted_median_ms(last_commit, last_validators), prev_block_time_ms + 1)


def vote_time_ms(now_ms: int, block: Block | None) -> int:
    """A vote's timestamp: the local clock, but later than the block voted for, so that
    the next block's median time exceeds this block's."""
    return now_ms if block is None else max(now_ms, block.header.time_ms + 1)
