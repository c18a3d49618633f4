"""The tally: integer arithmetic only, every ratio compared by cross-multiplication.

Order (Cosmos x/gov):
1. no eligible voters                                   → REJECTED
2. participation = cast / eligible < quorum             → NO_QUORUM   (exactly at quorum meets it)
3. everyone who voted abstained                         → REJECTED
4. veto / cast > veto threshold                         → VETOED      (strictly greater)
5. yes / (yes + no + veto) > pass threshold             → PASSED      (strictly greater)
6. otherwise                                            → REJECTED
where cast = yes + no + abstain + veto.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated

from protocol.governance.params import Ratio
from protocol.wire import U64, Struct


class Outcome(enum.IntEnum):
    PASSED = 1
    REJECTED = 2
    VETOED = 3
    NO_QUORUM = 4


@dataclass(frozen=True, slots=True)
class Counts(Struct):
    """Voting weight per choice (a resident's vote weighs 1, a token vote its balance)."""

    yes: Annotated[int, U64] = 0
    no: Annotated[int, U64] = 0
    abstain: Annotated[int, U64] = 0
    veto: Annotated[int, U64] = 0

    @property
    def cast(self) -> int:
        return self.yes + self.no + self.abstain + self.veto


def below(part: int, whole: int, ratio: Ratio) -> bool:
    """part / whole < ratio."""
    return part * ratio.den < ratio.num * whole


def above(part: int, whole: int, ratio: Ratio) -> bool:
    """part / whole > ratio."""
    return part * ratio.den > ratio.num * whole


def tally(counts: Counts, eligible: int, quorum: Ratio, threshold: Ratio, veto: Ratio) -> Outcome:
    if eligible == 0:
        return Outcome.REJECTED
    cast = counts.cast
    if below(cast, eligible, quorum):
        return Outcome.NO_QUORUM
    decisive = counts.yes + counts.no + counts.veto
    if decisive == 0:
        return Outcome.REJECTED
    if above(counts.veto, cast, veto):
        return Outcome.VETOED
    if above(counts.yes, decisive, threshold):
        return Outcome.PASSED
    return Outcome.REJECTED
