"""Validator sets, voting-power thresholds and commit verification.

Thresholds are integer comparisons: "+2/3" means strictly more than two thirds,
``3 * power > 2 * total``; "+1/3" means ``3 * power > total``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated

from protocol import crypto
from protocol.limits import MAX_VALIDATORS
from protocol.types import Commit
from protocol.wire import PUBKEY, Int, Struct, struct_list

MAX_POWER = 2**40  # keeps total power * 3 far below 2**63 for any set size


@dataclass(frozen=True, slots=True)
class Validator(Struct):
    pubkey: Annotated[bytes, PUBKEY]
    power: Annotated[int, Int(1, MAX_POWER)]


@dataclass(frozen=True, slots=True)
class ValidatorSet(Struct):
    """Validators sorted by public key, each once, each with power ≥ 1."""

    validators: Annotated[tuple[Validator, ...], struct_list(Validator, MAX_VALIDATORS)]
    _power: dict[bytes, int] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _total: list[int] = field(init=False, repr=False, compare=False, hash=False, default_factory=list)

    def __post_init__(self) -> None:
        keys = [v.pubkey for v in self.validators]
        if not keys:
            raise ValueError("a validator set cannot be empty")
        if keys != sorted(set(keys)):
            raise ValueError("validators must be sorted by public key with no repeats")
        self._power.update((v.pubkey, v.power) for v in self.validators)
        self._total.append(sum(self._power.values()))  # thresholds are checked per vote: O(1)

    @staticmethod
    def of(pairs: Iterable[tuple[bytes, int]]) -> ValidatorSet:
        validators = sorted((Validator(pk, p) for pk, p in pairs), key=lambda v: v.pubkey)
        return ValidatorSet(tuple(validators))

    @property
    def total_power(self) -> int:
        return self._total[0]

    def power_of(self, pubkey: bytes) -> int:
        return self._power.get(pubkey, 0)

    def __contains__(self, pubkey: object) -> bool:
        return pubkey in self._power

    def __len__(self) -> int:
        return len(self.validators)

    @property
    def hash(self) -> bytes:
        return self.digest()

    def has_two_thirds(self, power: int) -> bool:
        return 3 * power > 2 * self.total_power

    def has_one_third(self, power: int) -> bool:
        return 3 * power > self.total_power

    def power_of_set(self, pubkeys: Iterable[bytes]) -> int:
        return sum(self._power.get(pk, 0) for pk in set(pubkeys))


def verify_commit(
    commit: Commit,
    chain_id: str,
    validators: ValidatorSet,
    block_hash: bytes,
    height: int,
    cache: crypto.VerifyCache | None = None,
) -> str | None:
    """Check that `commit` proves `block_hash` at `height`: every signature is a valid
    precommit of a member of `validators`, and together they hold +2/3 of the power.
    Returns a reason on failure, None on success."""
    if commit.height != height:
        return f"commit is for height {commit.height}, expected {height}"
    if commit.block_hash != block_hash:
        return "commit is for another block"
    power = 0
    for vote in commit.votes():
        if vote.validator not in validators:
            return f"commit signed by non-validator {vote.validator.hex()[:16]}"
        if not vote.verify(chain_id, cache):
            return f"bad commit signature from {vote.validator.hex()[:16]}"
        power += validators.power_of(vote.validator)
    if not validators.has_two_thirds(power):
        return f"commit holds {power} of {validators.total_power} power, not +2/3"
    return None
