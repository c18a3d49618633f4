"""Vote sets: the votes of one (height, round, type), summed by block hash.

A validator normally votes once per (height, round, type). A second vote for a
different block (nil included) is equivocation: it is kept, counted for its block
as the paper's message log would, and reported as `DuplicateVoteEvidence`. A third
distinct vote adds nothing an honest node needs, so it is refused, which bounds a
set at two votes per validator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.errors import InvariantViolation
from protocol.types import DuplicateVoteEvidence, Vote
from protocol.validators import ValidatorSet

MAX_VOTES_PER_VALIDATOR = 2


class AddOutcome(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"  # same block as a vote already held (maybe another timestamp)
    CONFLICT = "conflict"  # a second block: added, with evidence
    EXCESS = "excess"  # a third block: refused


@dataclass(frozen=True, slots=True)
class AddResult:
    outcome: AddOutcome
    evidence: DuplicateVoteEvidence | None = None


class VoteSet:
    """Votes of one (height, round, type); callers key sets by those three."""

    __slots__ = ("_any_power", "_power", "_validators", "_votes")

    def __init__(self, validators: ValidatorSet) -> None:
        self._validators = validators
        self._votes: dict[bytes, list[Vote]] = {}
        self._power: dict[bytes | None, int] = {}
        self._any_power = 0  # each voter once, whatever it voted for

    def __len__(self) -> int:
        return len(self._votes)

    def holds(self, vote: Vote) -> bool:
        return vote in self._votes.get(vote.validator, ())

    def add(self, vote: Vote) -> AddResult:
        power = self._validators.power_of(vote.validator)
        if power == 0:
            raise InvariantViolation("only validators' votes reach a vote set")
        held = self._votes.get(vote.validator)
        if held is None:
            self._votes[vote.validator] = [vote]
            self._power[vote.block_hash] = self._power.get(vote.block_hash, 0) + power
            self._any_power += power
            return AddResult(AddOutcome.ADDED)
        if any(v.block_hash == vote.block_hash for v in held):
            return AddResult(AddOutcome.DUPLICATE)
        if len(held) >= MAX_VOTES_PER_VALIDATOR:
            return AddResult(AddOutcome.EXCESS)
        held.append(vote)
        self._power[vote.block_hash] = self._power.get(vote.block_hash, 0) + power
        return AddResult(AddOutcome.CONFLICT, DuplicateVoteEvidence.of(held[0], vote))

    def remove(self, validator: bytes) -> None:
        held = self._votes.pop(validator, None)
        if held is None:
            return
        power = self._validators.power_of(validator)
        self._any_power -= power
        for v in held:
            self._power[v.block_hash] -= power

    def power_for(self, block_hash: bytes | None) -> int:
        return self._power.get(block_hash, 0)

    @property
    def any_power(self) -> int:
        return self._any_power

    def has_two_thirds_any(self) -> bool:
        return self._validators.has_two_thirds(self._any_power)

    def has_two_thirds_for(self, block_hash: bytes | None) -> bool:
        return self._validators.has_two_thirds(self.power_for(block_hash))

    def blocks_with_two_thirds(self) -> list[bytes]:
        """Non-nil block hashes holding +2/3, sorted (more than one only when more
        than 1/3 of the power equivocated)."""
        return sorted(
            h for h, p in self._power.items() if h is not None and self._validators.has_two_thirds(p)
        )

    def votes_for(self, block_hash: bytes | None) -> tuple[Vote, ...]:
        """One vote per validator for `block_hash`, sorted by validator."""
        out = [v for pk in sorted(self._votes) for v in self._votes[pk] if v.block_hash == block_hash]
        return tuple(out)

    def all_votes(self) -> tuple[Vote, ...]:
        return tuple(v for pk in sorted(self._votes) for v in self._votes[pk])
