"""Tally boundaries: strict rules (veto, pass) fail exactly at their threshold; the
quorum rule (>=) is met exactly at it. Integer arithmetic only."""

from __future__ import annotations

import ast
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.governance.params import Ratio
from protocol.governance.tally import Counts, Outcome, tally

Q, T, V = Ratio(2, 5), Ratio(2, 3), Ratio(1, 3)


def run(yes: int, no: int, abstain: int, veto: int, eligible: int) -> Outcome:
    return tally(Counts(yes, no, abstain, veto), eligible, Q, T, V)


@pytest.mark.parametrize(
    ("yes", "no", "abstain", "veto", "eligible", "expected", "why"),
    [
        (0, 0, 0, 0, 0, Outcome.REJECTED, "no electorate"),
        (1, 0, 0, 0, 0, Outcome.REJECTED, "no electorate even with a vote"),
        (1, 0, 0, 0, 100, Outcome.NO_QUORUM, "one vote is not a quorum"),
        (39, 0, 0, 0, 100, Outcome.NO_QUORUM, "39% < 40%"),
        (40, 0, 0, 0, 100, Outcome.PASSED, "exactly 40% meets the quorum"),
        (2, 0, 0, 0, 5, Outcome.PASSED, "2/5 exactly"),
        (1, 0, 0, 0, 3, Outcome.NO_QUORUM, "1/3 < 2/5"),
        (0, 0, 40, 0, 100, Outcome.REJECTED, "everyone abstained"),
        (40, 20, 0, 0, 100, Outcome.REJECTED, "yes exactly 2/3: strict rule fails"),
        (41, 20, 0, 0, 100, Outcome.PASSED, "just over 2/3"),
        (200_000_001, 100_000_000, 0, 0, 1_000_000_000, Outcome.NO_QUORUM, "30% participation"),
        (266_666_667, 133_333_333, 0, 0, 1_000_000_000, Outcome.PASSED, "2/3 + 1/1.2e9 at exactly 40%"),
        (266_666_666, 133_333_334, 0, 0, 1_000_000_000, Outcome.REJECTED, "2/3 - tiny at exactly 40%"),
        (266_666_666, 133_333_333, 0, 0, 1_000_000_000, Outcome.NO_QUORUM, "one vote short of 40%"),
        (40, 0, 0, 20, 100, Outcome.REJECTED, "veto exactly 1/3 is not a veto; yes 2/3 is not a pass"),
        (39, 0, 0, 21, 100, Outcome.VETOED, "veto just over 1/3"),
        (30, 0, 15, 15, 100, Outcome.REJECTED, "veto 15/60 = 1/4: not vetoed; yes 30/45 = 2/3 fails"),
        (31, 0, 15, 15, 100, Outcome.PASSED, "yes 31/46 > 2/3"),
        (10, 0, 20, 11, 100, Outcome.REJECTED, "veto 11/41 < 1/3; yes 10/21"),
        (40, 0, 0, 21, 100, Outcome.VETOED, "veto 21/61 > 1/3 beats a 2/3 yes"),
        (0, 0, 20, 21, 100, Outcome.VETOED, "veto 21/41 with no yes"),
        (0, 0, 43, 21, 100, Outcome.REJECTED, "abstentions dilute a veto: 21/64 < 1/3"),
    ],
)
def test_boundary_table(yes: int, no: int, abstain: int, veto: int, eligible: int, expected: Outcome, why: str) -> None:
    assert run(yes, no, abstain, veto, eligible) == expected, why


def test_participation_includes_abstain() -> None:
    assert run(1, 0, 39, 0, 100) == Outcome.PASSED  # 40% with abstentions, 1/1 yes
    assert run(1, 0, 38, 0, 100) == Outcome.NO_QUORUM


def test_half_threshold_is_strict() -> None:
    half = Ratio(1, 2)
    assert tally(Counts(5, 5), 10, Ratio(0, 1), half, V) == Outcome.REJECTED
    assert tally(Counts(6, 5), 11, Ratio(0, 1), half, V) == Outcome.PASSED


def test_zero_quorum_still_needs_a_decisive_vote() -> None:
    assert tally(Counts(), 10, Ratio(0, 1), T, V) == Outcome.REJECTED
    assert tally(Counts(1), 10, Ratio(0, 1), T, V) == Outcome.PASSED


def test_full_quorum_needs_everyone() -> None:
    assert tally(Counts(9), 10, Ratio(1, 1), T, V) == Outcome.NO_QUORUM
    assert tally(Counts(9, 0, 1), 10, Ratio(1, 1), T, V) == Outcome.PASSED


counts = st.integers(0, 10**12)


@given(counts, counts, counts, counts, st.integers(0, 10**13))
def test_tally_matches_an_exact_rational_reference(yes: int, no: int, abstain: int, veto: int, eligible: int) -> None:
    from fractions import Fraction

    cast = yes + no + abstain + veto
    if eligible == 0:
        ref = Outcome.REJECTED
    elif Fraction(cast, eligible) < Fraction(Q.num, Q.den):
        ref = Outcome.NO_QUORUM
    elif yes + no + veto == 0:
        ref = Outcome.REJECTED
    elif Fraction(veto, cast) > Fraction(V.num, V.den):
        ref = Outcome.VETOED
    elif Fraction(yes, yes + no + veto) > Fraction(T.num, T.den):
        ref = Outcome.PASSED
    else:
        ref = Outcome.REJECTED
    assert run(yes, no, abstain, veto, eligible) == ref


def test_no_float_anywhere_in_the_governance_package() -> None:
    root = pathlib.Path(__file__).resolve().parents[2] / "protocol" / "governance"
    offenders = []
    for f in sorted(root.glob("*.py")):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                offenders.append(f"{f.name}:{node.lineno} float literal")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                offenders.append(f"{f.name}:{node.lineno} true division")
            if isinstance(node, ast.Name) and node.id == "float":
                offenders.append(f"{f.name}:{node.lineno} float()")
    assert offenders == []
