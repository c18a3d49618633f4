"""Governance parameters: the fee, the tracks proposals run on, and penalties.

Every fraction is a `Ratio` of two integers, compared by cross-multiplication, so
2/3 is exactly two thirds (no parts-per-million rounding) and no float exists.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated

from protocol.wire import BOOL, U64, Enum, Int, Nested, Struct, struct_list

MAX_DEN = 2**32
MAX_PERIOD = 10_000_000  # heights; bounds every delay, period and timelock


class Track(enum.IntEnum):
    CONSTITUTIONAL = 1
    LAW = 2
    PARAMETER = 3
    TREASURY = 4
    REGISTRAR = 5
    ISSUER = 6
    VALIDATOR = 7
    RULING = 8  # decisions about one record: a residency, a union


class Electorate(enum.IntEnum):
    RESIDENTS = 1  # one active resident, one vote
    TOKENS = 2  # weight = the voter's balance, locked until the proposal ends


@dataclass(frozen=True, slots=True)
class Ratio(Struct):
    num: Annotated[int, Int(0, MAX_DEN)]
    den: Annotated[int, Int(1, MAX_DEN)]

    def __post_init__(self) -> None:
        if self.num > self.den:
            raise ValueError(f"ratio {self.num}/{self.den} exceeds 1")

    def __str__(self) -> str:
        return f"{self.num}/{self.den}"

    @staticmethod
    def parse(text: str) -> Ratio:
        """'2/3' -> Ratio(2, 3); raises ValueError otherwise."""
        parts = text.split("/")
        if len(parts) != 2 or not all(p.isdigit() and p.isascii() for p in parts):
            raise ValueError(f"{text!r} is not a fraction like '2/3'")
        return Ratio(int(parts[0]), int(parts[1]))

    def of(self, amount: int) -> int:
        """floor(amount * num / den)."""
        return amount * self.num // self.den


@dataclass(frozen=True, slots=True)
class TrackParams(Struct):
    track: Annotated[Track, Enum(Track)]
    min_deposit: Annotated[int, U64]
    voting_delay: Annotated[int, Int(0, MAX_PERIOD)]
    voting_period: Annotated[int, Int(1, MAX_PERIOD)]
    quorum: Annotated[Ratio, Nested(Ratio)]
    threshold: Annotated[Ratio, Nested(Ratio)]
    veto: Annotated[Ratio, Nested(Ratio)]
    timelock: Annotated[int, Int(0, MAX_PERIOD)]
    electorate: Annotated[Electorate, Enum(Electorate)]
    allow_vote_change: Annotated[bool, BOOL]

    def problem(self) -> str | None:
        # Below one half, a proposal and its negation could both pass.
        if 2 * self.threshold.num < self.threshold.den:
            return f"{self.track.name.lower()}: threshold {self.threshold} is below 1/2"
        if self.veto.num == 0:
            return f"{self.track.name.lower()}: a veto threshold of 0 vetoes every proposal with a vote"
        return None


@dataclass(frozen=True, slots=True)
class Params(Struct):
    fee: Annotated[int, U64]  # flat per tx, paid to the treasury
    cancel_burn: Annotated[Ratio, Nested(Ratio)]  # share of a cancelled proposal's deposit burned
    min_notice_period: Annotated[int, Int(0, MAX_PERIOD)]  # unilateral dissolution notice
    max_evidence_age: Annotated[int, Int(0, MAX_PERIOD)]  # heights
    evidence_penalty: Annotated[Ratio, Nested(Ratio)]  # share of power removed per offence
    tracks: Annotated[tuple[TrackParams, ...], struct_list(TrackParams, len(Track))]

    def __post_init__(self) -> None:
        if [t.track for t in self.tracks] != list(Track):
            raise ValueError("params must hold exactly one entry per track, in track order")

    def track(self, track: Track) -> TrackParams:
        return self.tracks[track - 1]

    def problem(self) -> str | None:
        for t in self.tracks:
            reason = t.problem()
            if reason is not None:
                return reason
        if self.evidence_penalty.num == 0:
            return "evidence_penalty must remove some power"
        return None


def _track(
    track: Track,
    deposit: int,
    quorum: tuple[int, int],
    threshold: tuple[int, int],
    timelock: int,
    electorate: Electorate,
    *,
    delay: int = 50,
    period: int = 500,
    change: bool = True,
) -> TrackParams:
    return TrackParams(
        track, deposit, delay, period, Ratio(*quorum), Ratio(*threshold), Ratio(1, 3), timelock, electorate, change
    )


R, T = Electorate.RESIDENTS, Electorate.TOKENS
DEFAULT_TRACKS = (
    _track(Track.CONSTITUTIONAL, 10_000, (2, 5), (2, 3), 200, R, delay=100, period=1_000, change=False),
    _track(Track.LAW, 1_000, (1, 4), (1, 2), 50, R),
    _track(Track.PARAMETER, 5_000, (1, 3), (1, 2), 100, T),
    _track(Track.TREASURY, 1_000, (1, 3), (1, 2), 100, T),
    _track(Track.REGISTRAR, 1_000, (1, 4), (1, 2), 50, R),
    _track(Track.ISSUER, 1_000, (1, 4), (1, 2), 50, R),
    _track(Track.VALIDATOR, 5_000, (1, 3), (2, 3), 100, T),
    _track(Track.RULING, 1_000, (1, 4), (1, 2), 50, R),
)
DEFAULT_PARAMS = Params(
    fee=0,
    cancel_burn=Ratio(1, 2),
    min_notice_period=100,
    max_evidence_age=10_000,
    evidence_penalty=Ratio(1, 1),
    tracks=DEFAULT_TRACKS,
)
