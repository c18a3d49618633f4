"""Duplicate-vote evidence: the offender's power is cut from H+2."""

from __future__ import annotations

from gov_helpers import CHAIN, VALIDATORS, Chain, events_of, genesis, kp

from protocol.crypto import Keypair
from protocol.governance import validators_for
from protocol.types import DuplicateVoteEvidence, Vote, VoteType


def evidence(key: Keypair, height: int, chain_id: str = CHAIN) -> DuplicateVoteEvidence:
    a = Vote.create(key, chain_id, VoteType.PRECOMMIT, height, 0, b"\x01" * 32, 1)
    b = Vote.create(key, chain_id, VoteType.PRECOMMIT, height, 0, b"\x02" * 32, 1)
    return DuplicateVoteEvidence.of(a, b)


def test_offender_is_removed_from_h_plus_2() -> None:
    c = Chain()
    c.until(3)
    res = c.block(evidence=(evidence(VALIDATORS[1], 2),))
    h = res.height
    assert [e.get("effective") for e in events_of(res, "evidence.punished")] == [str(h + 2)]
    assert VALIDATORS[1].public_key in validators_for(c.state, h + 1)
    assert VALIDATORS[1].public_key not in validators_for(c.state, h + 2)
    assert len(validators_for(c.state, h + 2)) == 3


def test_penalty_can_reduce_power_instead() -> None:
    c = Chain(genesis(params={"evidence_penalty": "1/10"}))
    c.block()
    res = c.block(evidence=(evidence(VALIDATORS[2], 1),))
    assert validators_for(c.state, res.height + 2).power_of(VALIDATORS[2].public_key) == 9
    res = c.block(evidence=(evidence(VALIDATORS[2], 2),))  # a second offence at another height
    assert validators_for(c.state, res.height + 2).power_of(VALIDATORS[2].public_key) == 8


def reasons(res: object) -> list[str | None]:
    return [e.get("reason") for e in events_of(res, "evidence.ignored")]  # type: ignore[arg-type]


def test_invalid_evidence_is_ignored() -> None:
    c = Chain(genesis(params={"max_evidence_age": 3}))
    c.until(6)
    good = evidence(VALIDATORS[0], 5)
    forged = DuplicateVoteEvidence(good.vote_a, Vote(*[*good.vote_b.to_wire()[:-1], bytes(64)]))  # type: ignore[arg-type]
    res = c.block(evidence=(
        evidence(VALIDATORS[0], 1),  # too old
        evidence(VALIDATORS[0], 9),  # from the future
        evidence(kp(31), 5),  # not a validator
        evidence(VALIDATORS[0], 5, chain_id="other"),  # signed for another chain
        forged,
    ))
    r = reasons(res)
    assert len(r) == 5 and all(x is not None for x in r)
    assert "older" in r[0] and "not below" in r[1] and "did not sign" in r[2]  # type: ignore[operator]
    assert "verify" in r[3] and "verify" in r[4]  # type: ignore[operator]
    assert len(validators_for(c.state, res.height + 2)) == 4


def test_the_same_offence_is_punished_once() -> None:
    c = Chain(genesis(params={"evidence_penalty": "1/2"}))
    c.until(2)
    ev = evidence(VALIDATORS[3], 1)
    res = c.block(evidence=(ev, ev))
    assert len(events_of(res, "evidence.punished")) == 1 and "already" in reasons(res)[0]  # type: ignore[operator]
    res = c.block(evidence=(ev,))
    assert validators_for(c.state, res.height + 2).power_of(VALIDATORS[3].public_key) == 5


def test_the_last_validator_is_never_removed() -> None:
    c = Chain(genesis(validators=[{"pubkey": VALIDATORS[0].public_key.hex(), "power": 10}]))
    c.until(2)
    res = c.block(evidence=(evidence(VALIDATORS[0], 1),))
    assert events_of(res, "evidence.recorded")[0].get("applied") == "would empty the set"
    assert len(validators_for(c.state, res.height + 2)) == 1
