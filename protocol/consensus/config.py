"""Consensus timing and resource bounds."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.consensus.step import Step
from protocol.limits import MAX_VALIDATORS


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    """Every duration is in milliseconds of the host's clock.

    A step's timeout in round r is ``base + delta * r``: rounds only fail when the
    network is slower than assumed, so each retry waits longer until messages
    arrive in time (the paper's partial-synchrony argument, section 4).
    """

    timeout_propose_ms: int = 3000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 1000
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 1000
    timeout_precommit_delta_ms: int = 500

    # Round 0 of a height starts no earlier than this long after the previous height
    # was decided: the new block's time (median precommit time), or this node's own
    # decision if earlier. Deciding itself never waits.
    min_block_interval_ms: int = 1000
    # False: after an empty block, wait for TxsAvailable (or the interval below)
    # before starting the next height's round 0, so empty blocks never come back to back.
    create_empty_blocks: bool = True
    # With create_empty_blocks False: start anyway this long after the previous
    # decision (0: wait for transactions indefinitely).
    create_empty_blocks_interval_ms: int = 0

    # Bounds on what a peer can make the engine hold.
    max_buffered_votes: int = 4 * MAX_VALIDATORS  # next-height votes held until it starts
    max_buffered_proposals: int = 4  # next-height proposals held until it starts
    future_rounds_per_validator: int = 2  # rounds above round+1 kept per validator
    max_proposals_per_round: int = 2  # an equivocating proposer's extra proposals kept

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if type(value) is int and value < 0:
                raise ValueError(f"{name} must not be negative")
        if self.future_rounds_per_validator < 1 or self.max_proposals_per_round < 1:
            raise ValueError("the per-validator and per-round bounds must be at least 1")

    def timeout_ms(self, step: Step, round: int) -> int:
        if step == Step.PROPOSE:
            return self.timeout_propose_ms + self.timeout_propose_delta_ms * round
        if step == Step.PREVOTE:
            return self.timeout_prevote_ms + self.timeout_prevote_delta_ms * round
        if step == Step.PRECOMMIT:
            return self.timeout_precommit_ms + self.timeout_precommit_delta_ms * round
        raise ValueError(f"no round timeout for step {step.name}")
