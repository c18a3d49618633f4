"""Proposer selection: pure, weighted, evenly spread."""

from __future__ import annotations

import itertools
import random

import pytest

from protocol.consensus import ProposerSchedule, proposer
from protocol.consensus.proposer import INV_PHI, ONE, golden_point
from protocol.validators import ValidatorSet

from .harness import keypair

KEYS = [keypair(i).public_key for i in range(40)]


def vset(powers: list[int]) -> ValidatorSet:
    return ValidatorSet.of(list(zip(KEYS, powers, strict=False)))


def turns(vs: ValidatorSet, start: int, count: int) -> list[bytes]:
    s = ProposerSchedule(vs)
    return [s.proposer(h, 0) for h in range(start, start + count)]


def test_fixed_point_inverse_golden_ratio() -> None:
    # 1/φ = 0.6180339887498949...; φ⁻¹ satisfies x² + x = 1.
    assert INV_PHI * 10**16 // ONE == 6180339887498948
    assert abs(INV_PHI * INV_PHI + INV_PHI * ONE - ONE * ONE) < 2 * ONE
    assert golden_point(0) == 0 and golden_point(1) == INV_PHI


def test_is_a_pure_function_of_set_height_and_round() -> None:
    vs = vset([3, 1, 4, 1, 5])
    rebuilt = ValidatorSet.decode(vs.encode())
    for h, r in [(1, 0), (2, 0), (2, 7), (10**12, 3), (2**63, 2**31 - 1)]:
        assert proposer(vs, h, r) == proposer(rebuilt, h, r) == ProposerSchedule(vs).proposer(h, r)
        assert proposer(vs, h, r) in vs
    with pytest.raises(ValueError):
        proposer(vs, -1, 0)


def test_equal_powers_rotate_through_everyone() -> None:
    for n in (1, 2, 3, 4, 7, 10):
        vs = vset([1] * n)
        for start in (1, 100, 12345):
            window = turns(vs, start, 3 * n)
            assert set(window) == set(KEYS[:n])
            counts = [window.count(k) for k in KEYS[:n]]
            assert max(counts) - min(counts) <= 2


def test_shares_follow_voting_power() -> None:
    rng = random.Random(7)
    for _ in range(25):
        n = rng.randint(1, 30)
        powers = [rng.choice([1, 1, 2, 3, 5, 10, 100]) for _ in range(n)]
        vs = vset(powers)
        total = sum(powers)
        start = rng.randint(1, 10**9)
        seq = turns(vs, start, 3 * total)
        for v in vs.validators:
            ideal = 3 * total * v.power // total
            assert abs(seq.count(v.pubkey) - ideal) <= 3, (powers, v.power)


def test_turns_are_spread_out() -> None:
    """No validator waits more than twice its fair interval (total/power) for a turn."""
    rng = random.Random(3)
    for _ in range(25):
        n = rng.randint(2, 30)
        powers = [rng.choice([1, 1, 2, 3, 5, 10, 100]) for _ in range(n)]
        vs = vset(powers)
        total = sum(powers)
        seq = turns(vs, rng.randint(1, 10**6), 4 * total)
        for v in vs.validators:
            idx = [i for i, k in enumerate(seq) if k == v.pubkey]
            gaps = [b - a for a, b in itertools.pairwise(idx)]
            assert gaps and max(gaps) * v.power <= 2 * total, (powers, v.power, max(gaps))


def test_next_round_usually_changes_proposer() -> None:
    vs = vset([1] * 4)
    s = ProposerSchedule(vs)
    for h in range(1, 50):
        assert len({s.proposer(h, r) for r in range(4)}) >= 3
