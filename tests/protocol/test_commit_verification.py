"""verify_commit accepts exactly the commits holding strictly more than 2/3 of the
voting power in valid precommits of members, for the right block and height."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import budget, key

from protocol import crypto
from protocol.types import Commit, CommitSig, Vote, VoteType
from protocol.validators import ValidatorSet, verify_commit

CHAIN = "commit-test"
HEIGHT, ROUND = 12, 1
BLOCK = b"\xb1" * 32
KEYS = [key(100 + i) for i in range(8)]


def precommit(i: int, *, block: bytes | None = BLOCK, height: int = HEIGHT, round_: int = ROUND,
              type_: VoteType = VoteType.PRECOMMIT, chain: str = CHAIN) -> Vote:
    return Vote.create(KEYS[i], chain, type_, height, round_, block, 1_000 + i)


def commit_of(signers: list[int]) -> Commit:
    return Commit.from_votes([precommit(i) for i in signers])


def vset(powers: list[int]) -> ValidatorSet:
    return ValidatorSet.of((KEYS[i].public_key, p) for i, p in enumerate(powers))


def check(commit: Commit, validators: ValidatorSet, block: bytes = BLOCK,
          height: int = HEIGHT, cache: crypto.VerifyCache | None = None) -> str | None:
    return verify_commit(commit, CHAIN, validators, block, height, cache)


def test_exactly_two_thirds_fails_and_one_more_passes() -> None:
    validators = vset([200, 1, 99])  # total 300
    assert check(commit_of([0]), validators) == "commit holds 200 of 300 power, not +2/3"
    assert check(commit_of([0, 1]), validators) is None  # 201 > 200


def test_equal_powers_need_more_than_two_thirds_of_the_members() -> None:
    validators = vset([1] * 6)
    assert check(commit_of([0, 1, 2, 3]), validators) is not None  # 4 of 6 = 2/3
    assert check(commit_of([0, 1, 2, 3, 4]), validators) is None


@budget(60)
@given(
    powers=st.lists(st.integers(1, 1_000), min_size=1, max_size=len(KEYS)),
    data=st.data(),
)
def test_acceptance_is_exactly_more_than_two_thirds(powers: list[int], data: st.DataObject) -> None:
    signers = data.draw(
        st.lists(st.integers(0, len(powers) - 1), min_size=1, unique=True), label="signers"
    )
    signed = sum(powers[i] for i in signers)
    validators = vset(powers)
    result = check(commit_of(signers), validators)
    assert (result is None) == (Fraction(signed, sum(powers)) > Fraction(2, 3))
    assert validators.has_two_thirds(signed) == (result is None)


def test_empty_commit_fails() -> None:
    assert check(Commit(HEIGHT, ROUND, BLOCK, ()), vset([1])) is not None


def test_a_non_validator_signature_is_rejected_even_beside_a_quorum() -> None:
    validators = vset([1, 1, 1])
    commit = commit_of([0, 1, 2, 5])  # 5 holds a valid precommit but is not a member
    reason = check(commit, validators)
    assert reason is not None and reason.startswith("commit signed by non-validator")


def test_a_bad_signature_is_rejected_even_beside_a_quorum() -> None:
    commit = commit_of([0, 1, 2])
    sigs = list(commit.signatures)
    sigs[1] = dataclasses.replace(sigs[1], signature=bytes(64))
    reason = check(dataclasses.replace(commit, signatures=tuple(sigs)), vset([1, 1, 1]))
    assert reason is not None and reason.startswith("bad commit signature")


@pytest.mark.parametrize(
    "vote_kw",
    [
        {"round_": ROUND + 1},  # signed for another round
        {"height": HEIGHT + 1},  # signed for another height
        {"block": b"\xb2" * 32},  # signed for another block
        {"type_": VoteType.PREVOTE},  # a prevote, not a precommit
        {"chain": "other-chain"},  # signed for another chain
    ],
)
def test_a_signature_for_anything_but_this_precommit_is_bad(vote_kw: dict[str, object]) -> None:
    odd = precommit(1, **vote_kw)  # type: ignore[arg-type]
    sigs = sorted(
        [*commit_of([0, 2]).signatures, CommitSig(odd.validator, odd.timestamp_ms, odd.signature)],
        key=lambda s: s.validator,
    )
    reason = check(Commit(HEIGHT, ROUND, BLOCK, tuple(sigs)), vset([1, 1, 1]))
    assert reason is not None and reason.startswith("bad commit signature")


def test_a_commit_for_another_height_or_block_is_rejected() -> None:
    commit, validators = commit_of([0, 1, 2]), vset([1, 1, 1])
    assert check(commit, validators) is None
    assert check(commit, validators, height=HEIGHT + 1) == (
        f"commit is for height {HEIGHT}, expected {HEIGHT + 1}"
    )
    assert check(commit, validators, block=b"\xb2" * 32) == "commit is for another block"


def test_a_commit_verifies_against_its_validator_set_only() -> None:
    commit = commit_of([0, 1, 2])
    assert check(commit, vset([1, 1, 1])) is None
    assert check(commit, vset([1, 1, 1, 1, 1])) is not None  # 3 of 5 is not +2/3
    assert check(commit, vset([1, 1, 1, 10])) is not None


def test_verification_uses_the_cache() -> None:
    cache = crypto.VerifyCache()
    commit, validators = commit_of([0, 1, 2]), vset([1, 1, 1])
    assert check(commit, validators, cache=cache) is None
    assert check(commit, validators, cache=cache) is None
    assert (cache.misses, cache.hits) == (3, 3)


def test_thresholds_and_power_accounting() -> None:
    validators = vset([3, 3, 3])
    assert validators.total_power == 9
    assert not validators.has_two_thirds(6) and validators.has_two_thirds(7)
    assert not validators.has_one_third(3) and validators.has_one_third(4)
    members = [KEYS[0].public_key, KEYS[0].public_key, KEYS[1].public_key, KEYS[7].public_key]
    assert validators.power_of_set(members) == 6  # repeats and strangers count nothing
    assert validators.power_of(KEYS[7].public_key) == 0
    assert KEYS[0].public_key in validators and KEYS[7].public_key not in validators
    assert len(validators) == 3
