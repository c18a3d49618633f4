"""BFT time: the weighted median of the last commit, strictly increasing."""

from __future__ import annotations

import random

import pytest

from protocol.consensus import block_time_ms, vote_time_ms, weighted_median_ms
from protocol.types import Commit, CommitSig
from protocol.validators import ValidatorSet

from .harness import keypair

KEYS = [keypair(i).public_key for i in range(10)]


def commit(stamps: dict[int, int]) -> Commit:
    sigs = sorted((CommitSig(KEYS[i], ts, bytes(64)) for i, ts in stamps.items()), key=lambda s: s.validator)
    return Commit(1, 0, bytes(32), tuple(sigs))


def test_median_of_equal_powers() -> None:
    vs = ValidatorSet.of([(k, 1) for k in KEYS[:4]])
    assert weighted_median_ms(commit({0: 10, 1: 40, 2: 20}), vs) == 20
    assert weighted_median_ms(commit({0: 10, 1: 40, 2: 20, 3: 30}), vs) == 30  # first past half


def test_median_is_weighted_by_power() -> None:
    vs = ValidatorSet.of([(KEYS[0], 23), (KEYS[1], 27), (KEYS[2], 10), (KEYS[3], 10)])
    assert weighted_median_ms(commit({0: 100, 1: 200, 2: 300, 3: 400}), vs) == 200
    # sorted: 200 (27), 300 (10) → 37 of 70 is past half
    assert weighted_median_ms(commit({0: 500, 1: 200, 2: 300, 3: 400}), vs) == 300
    heavy = ValidatorSet.of([(KEYS[0], 10), (KEYS[1], 1), (KEYS[2], 1)])
    assert weighted_median_ms(commit({0: 7, 1: 1, 2: 1_000_000}), heavy) == 7


def test_signers_outside_the_set_weigh_nothing() -> None:
    vs = ValidatorSet.of([(k, 1) for k in KEYS[:3]])
    assert weighted_median_ms(commit({0: 10, 1: 20, 2: 30, 9: 1}), vs) == 20
    with pytest.raises(ValueError):
        weighted_median_ms(commit({9: 1}), vs)


def test_faulty_minority_cannot_move_time_outside_honest_stamps() -> None:
    """Faulty validators (< 1/3 of the power) inside a +2/3 commit cannot push the
    median below the earliest or above the latest correct timestamp."""
    rng = random.Random(5)
    for _ in range(300):
        n = rng.randint(4, 10)
        powers = [rng.randint(1, 20) for _ in range(n)]
        vs = ValidatorSet.of(list(zip(KEYS, powers, strict=False)))
        order = list(range(n))
        rng.shuffle(order)
        faulty, power = [], 0
        for i in order:
            if 3 * (power + powers[i]) < vs.total_power:
                faulty.append(i)
                power += powers[i]
        honest = [i for i in order if i not in faulty]
        rng.shuffle(honest)
        signers, have = list(faulty), power
        for i in honest:
            if vs.has_two_thirds(have):
                break
            signers.append(i)
            have += powers[i]
        if not vs.has_two_thirds(have):
            continue
        stamps = {i: rng.randint(1000, 2000) for i in signers if i not in faulty}
        if not stamps:
            continue
        stamps.update({i: rng.choice([0, 10**9]) for i in faulty})
        median = weighted_median_ms(commit(stamps), vs)
        correct = [ts for i, ts in stamps.items() if i not in faulty]
        assert min(correct) <= median <= max(correct)


def test_block_time_rule() -> None:
    vs = ValidatorSet.of([(k, 1) for k in KEYS[:3]])
    assert block_time_ms(None, None, 5_000) == 5_000  # height 1: the genesis time
    assert block_time_ms(commit({0: 7_000, 1: 8_000, 2: 9_000}), vs, 5_000) == 8_000
    assert block_time_ms(commit({0: 1, 1: 2, 2: 3}), vs, 5_000) == 5_001  # never back in time
    with pytest.raises(ValueError):
        block_time_ms(commit({0: 1}), None, 5_000)


def test_vote_time_is_after_the_block() -> None:
    assert vote_time_ms(100, None) == 100
