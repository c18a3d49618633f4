"""Proposer selection: a deterministic weighted round robin that every node computes
from the validator set, the height and the round alone.

Give each validator (sorted by public key) a slice of the unit interval as long
as its share of the voting power. The proposer of (height, round) owns the point ::

    x(k) = frac(k / φ),   k = height + round

where φ is the golden ratio. This is the golden-ratio (Weyl) sequence, the most
evenly spread sequence of points there is: by the three-gap theorem the waits
between two turns of a validator take at most three values, all within a small
constant factor of the ideal 1/share, and over any N consecutive k a validator's
number of turns differs from N × share by O(log N). So every validator proposes
in proportion to its power, and its turns are spread out rather than bunched.

Everything is integer arithmetic: 1/φ is held as a 256-bit fixed-point fraction,
x(k) is ``k * INV_PHI mod 2^256`` and the owner of x is found by comparing
``x * total_power`` against the cumulative powers shifted by 256 bits. It is a
definition, not an approximation every node must get equally wrong: all nodes
evaluate the same integer formula.

Why not CometBFT's proposer priorities: those are state carried from height to
height, so a node that restarts or joins late must replay history (or trust a
stored copy) to know the proposer. This schedule is a pure function of
(validator set, height, round), costs O(log n) per query, and gives the same
long-run shares.
"""

from __future__ import annotations

import bisect
import math

from protocol.validators import ValidatorSet

FRACTION_BITS = 256
ONE = 1 << FRACTION_BITS
# ⌊2^256 × (√5 − 1)/2⌋ = ⌊2^256 / φ⌋
INV_PHI = (math.isqrt(5 * ONE * ONE) - ONE) // 2


def golden_point(k: int) -> int:
    """frac(k / φ) as a 256-bit fixed-point fraction."""
    return k * INV_PHI % ONE


class ProposerSchedule:
    """The proposer of every (height, round) for one validator set."""

    __slots__ = ("_ends", "_keys", "_total")

    def __init__(self, validators: ValidatorSet) -> None:
        self._keys = [v.pubkey for v in validators.validators]
        self._ends: list[int] = []
        acc = 0
        for v in validators.validators:
            acc += v.power
            self._ends.append(acc << FRACTION_BITS)
        self._total = acc

    def proposer(self, height: int, round: int) -> bytes:
        if height < 0 or round < 0:
            raise ValueError("height and round are not negative")
        # The validator whose slice [start, end) of [0, total) holds x × total.
        scaled = golden_point(height + round) * self._total
        return self._keys[bisect.bisect_right(self._ends, scaled)]


def proposer(validators: ValidatorSet, height: int, round: int) -> bytes:
    """The public key of the proposer of (height, round) under `validators`."""
    return ProposerSchedule(validators).proposer(height, round)
