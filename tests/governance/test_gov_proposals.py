"""Proposals: every terminal state, the deposit table, votes and locks, every action."""

from __future__ import annotations

from typing import Any

import pytest
from gov_helpers import (
    BALANCE,
    OUTSIDER,
    PEOPLE,
    TREASURY,
    VALIDATORS,
    Chain,
    decide,
    events_of,
    execute,
    genesis,
    kp,
    new,
    ok,
    open_voting,
    passed,
    person,
    prop,
    submit,
    vote,
)

from protocol import codec
from protocol.governance import Code, invariants, queries, validators_for
from protocol.governance.accounts import Transfer
from protocol.governance.actions import (
    AccreditIssuer,
    ActionType,
    AmendConstitution,
    ChangeParams,
    ChangeValidators,
    EnactLaw,
    IdentityRef,
    ResidencyRuling,
    TreasurySpend,
    ValidatorUpdate,
)
from protocol.governance.constitution import ArticleChange
from protocol.governance.identity import GrantResidency, RegisterIdentity, Residency, ResidencyAction, key_digest
from protocol.governance.params import Ratio, Track
from protocol.governance.proposals import CastVote, Choice, ProposalRef, Status
from protocol.governance.tally import Counts
from protocol.wire import Struct

YES, NO, ABSTAIN, VETO = Choice.YES, Choice.NO, Choice.ABSTAIN, Choice.VETO
LAW = EnactLaw("Bicycles have right of way.")


def counts(c: Chain, pid: int) -> Counts:
    view = queries.proposal(c.state, pid)
    assert view is not None
    return view.counts


# ---------------------------------------------------------------- lifecycle and deposits


def test_passed_and_executed() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    p = prop(c, pid)
    assert (p.status, p.track, p.submitted_height, p.voting_start, p.voting_end) == (Status.PENDING, Track.LAW, 1, 3, 8)
    assert queries.supply(c.state).escrow == 100
    assert queries.account(c.state, PEOPLE[2].address).balance == BALANCE - 100
    open_voting(c, pid)
    assert prop(c, pid).eligible == len(PEOPLE)
    vote(c, pid, (PEOPLE[0], YES), (PEOPLE[1], YES), (PEOPLE[3], NO))
    view = queries.proposal(c.state, pid)
    assert view is not None and view.participation == (3, 6) and view.outcome is not None
    assert decide(c, pid) == Status.QUEUED
    assert queries.account(c.state, PEOPLE[2].address).balance == BALANCE  # refunded at the tally
    p = prop(c, pid)
    assert p.execute_at == p.voting_end + 2 and p.decided_height == p.voting_end
    c.until(p.execute_at - 1)
    assert prop(c, pid).status == Status.QUEUED
    res = c.block()
    assert prop(c, pid).status == Status.EXECUTED
    assert [e.get("proposal") for e in events_of(res, "law.enacted")] == [str(pid)]
    invariants.check(c.state, c.genesis.total_supply)


def test_rejected_refunds() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    open_voting(c, pid)
    vote(c, pid, (PEOPLE[0], YES), (PEOPLE[1], NO), (PEOPLE[3], NO))
    assert decide(c, pid) == Status.REJECTED
    assert queries.account(c.state, PEOPLE[2].address).balance == BALANCE
    assert queries.supply(c.state).burned == 0
    invariants.check(c.state, c.genesis.total_supply)


def test_vetoed_burns_the_deposit() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW, deposit=500)
    open_voting(c, pid)
    vote(c, pid, (PEOPLE[0], YES), (PEOPLE[1], VETO), (PEOPLE[3], VETO))
    assert decide(c, pid) == Status.VETOED
    s = queries.supply(c.state)
    assert queries.account(c.state, PEOPLE[2].address).balance == BALANCE - 500
    assert (s.burned, s.total) == (500, c.genesis.total_supply - 500)
    invariants.check(c.state, c.genesis.total_supply)


def test_no_quorum_refunds() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    open_voting(c, pid)
    vote(c, pid, (PEOPLE[0], YES))  # 1/6 < 1/4: one vote never passes a proposal
    assert decide(c, pid) == Status.NO_QUORUM
    assert queries.account(c.state, PEOPLE[2].address).balance == BALANCE


def test_nobody_votes() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    assert decide(c, pid) == Status.NO_QUORUM


def test_cancel_before_voting_burns_half() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW, deposit=301)
    assert c.run(PEOPLE[3].key, "proposal.cancel", ProposalRef(pid)).code == Code.UNAUTHORIZED
    ok(c.run(PEOPLE[2].key, "proposal.cancel", ProposalRef(pid)))
    p = prop(c, pid)
    assert p.status == Status.CANCELLED
    assert queries.account(c.state, PEOPLE[2].address).balance == BALANCE - 150  # floor(301/2) burned
    assert queries.supply(c.state).burned == 150
    c.until(p.voting_end + 1)
    assert prop(c, pid).status == Status.CANCELLED  # the activation was unscheduled
    assert c.run(PEOPLE[2].key, "proposal.cancel", ProposalRef(pid)).code == Code.WRONG_STATUS
    invariants.check(c.state, c.genesis.total_supply)


def test_cannot_cancel_once_voting_started() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    open_voting(c, pid)
    assert c.run(PEOPLE[2].key, "proposal.cancel", ProposalRef(pid)).code == Code.WRONG_STATUS
    assert c.run(PEOPLE[2].key, "proposal.cancel", ProposalRef(999)).code == Code.NOT_FOUND


def test_execution_failed_still_refunds() -> None:
    c = Chain()
    pid = new(c, ActionType.TREASURY_SPEND, TreasurySpend(OUTSIDER.address, TREASURY + 1, "too much"))
    open_voting(c, pid)
    vote(c, pid, *((p, YES) for p in PEOPLE[:4]))
    assert decide(c, pid) == Status.QUEUED
    assert execute(c, pid) == Status.EXECUTION_FAILED
    p = prop(c, pid)
    assert "treasury holds" in p.note
    assert queries.supply(c.state).treasury == TREASURY
    assert queries.account(c.state, PEOPLE[2].address).balance == BALANCE
    invariants.check(c.state, c.genesis.total_supply)


def test_zero_timelock_executes_in_the_tally_block() -> None:
    c = Chain(genesis(params={"tracks": {"law": {"voting_delay": 0, "voting_period": 2, "timelock": 0}}}))
    pid = new(c, ActionType.ENACT_LAW, LAW)
    assert prop(c, pid).status == Status.VOTING  # delay 0: activated at the end of the submitting block
    vote(c, pid, *((p, YES) for p in PEOPLE[:3]))
    c.until(prop(c, pid).voting_end)
    p = prop(c, pid)
    assert p.status == Status.EXECUTED and p.execute_at == p.voting_end


# ---------------------------------------------------------------- submission rules


@pytest.mark.parametrize(
    ("action_type", "action", "deposit", "title", "code"),
    [
        (ActionType.ENACT_LAW, LAW.encode(), 99, "t", Code.DEPOSIT_TOO_LOW),
        (ActionType.ENACT_LAW, LAW.encode(), BALANCE + 1, "t", Code.INSUFFICIENT_FUNDS),
        (ActionType.ENACT_LAW, codec.pack([1]), 100, "t", Code.BAD_BODY),
        (ActionType.ENACT_LAW, LAW.encode(), 100, "", Code.INVALID),
        (ActionType.ENACT_LAW, EnactLaw("").encode(), 100, "t", Code.INVALID),
        (ActionType.TREASURY_SPEND, TreasurySpend(OUTSIDER.address, 0, "").encode(), 100, "t", Code.INVALID),
        (ActionType.AMEND_CONSTITUTION, AmendConstitution(1, ()).encode(), 100, "t", Code.INVALID),
        (
            ActionType.AMEND_CONSTITUTION,
            AmendConstitution(1, (ArticleChange(2, "b"), ArticleChange(1, "a"))).encode(),
            100,
            "t",
            Code.INVALID,
        ),
        (ActionType.APPOINT_REGISTRAR, IdentityRef(bytes(32)).encode(), 100, "t", Code.INVALID),
        (ActionType.CHANGE_VALIDATORS, ChangeValidators(()).encode(), 100, "t", Code.INVALID),
        (
            ActionType.RESIDENCY_RULING,
            ResidencyRuling(PEOPLE[4].id, Residency.EXPIRED, "").encode(),
            100,
            "t",
            Code.INVALID,
        ),
        (ActionType.DISSOLVE_UNION, codec.pack([7, ""]), 100, "t", Code.INVALID),
    ],
)
def test_submission_rejections(action_type: ActionType, action: bytes, deposit: int, title: str, code: Code) -> None:
    c = Chain()
    r = submit(c, action_type, action, deposit=deposit, title=title)
    assert r.code == code, r.reason
    assert queries.proposals(c.state) == []
    assert queries.supply(c.state).escrow == 0


def test_param_change_below_majority_threshold_is_refused() -> None:
    c = Chain()
    t = c.genesis.params.track(Track.LAW)
    bad = ChangeParams(None, None, None, None, None, (t.__class__(**{**_fields(t), "threshold": Ratio(1, 3)}),))
    assert submit(c, ActionType.CHANGE_PARAMS, bad).code == Code.INVALID


def _fields(s: Struct) -> dict[str, Any]:
    return {name: getattr(s, name) for name, _ in s.wire_fields()}


def test_changing_the_constitutional_track_needs_the_constitutional_track() -> None:
    c = Chain()
    t = c.genesis.params.track(Track.CONSTITUTIONAL)
    weaker = t.__class__(**{**_fields(t), "quorum": Ratio(1, 100)})
    pid = new(c, ActionType.CHANGE_PARAMS, ChangeParams(None, None, None, None, None, (weaker,)))
    assert prop(c, pid).track == Track.CONSTITUTIONAL
    pid2 = new(c, ActionType.CHANGE_PARAMS, ChangeParams(1, None, None, None, None, ()))
    assert prop(c, pid2).track == Track.PARAMETER


# ---------------------------------------------------------------- votes


def test_vote_timing() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    assert vote(c, pid, (PEOPLE[0], YES))[0].code == Code.WRONG_STATUS  # still pending
    decide(c, pid)
    assert vote(c, pid, (PEOPLE[0], YES))[0].code == Code.WRONG_STATUS  # closed
    assert vote(c, 12345, (PEOPLE[0], YES))[0].code == Code.NOT_FOUND


def test_votes_in_the_last_block_count() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    c.until(prop(c, pid).voting_end - 1)
    for r in vote(c, pid, (PEOPLE[0], YES), (PEOPLE[1], YES)):
        ok(r)
    assert prop(c, pid).status == Status.QUEUED


def test_resident_electorate_rules() -> None:
    c = Chain()
    newbie = person(61)
    ok(c.run(newbie.key, "identity.register", RegisterIdentity(key_digest(newbie.next_key.public_key))))
    ok(c.run(PEOPLE[0].key, "residency.suspend", ResidencyAction(PEOPLE[5].id, "")))
    pid = new(c, ActionType.ENACT_LAW, LAW)
    open_voting(c, pid)
    assert prop(c, pid).eligible == 5
    ok(c.run(PEOPLE[0].key, "residency.grant", GrantResidency(newbie.id, 10**6)))
    r = vote(c, pid, (OUTSIDER, YES), (PEOPLE[5], YES), (newbie, YES))
    assert [x.code for x in r] == [Code.NOT_IDENTITY, Code.NOT_RESIDENT, Code.NOT_ELIGIBLE]


def test_vote_change_where_allowed() -> None:
    c = Chain()
    pid = new(c, ActionType.ENACT_LAW, LAW)
    open_voting(c, pid)
    vote(c, pid, (PEOPLE[0], YES), (PEOPLE[1], YES))
    ok(vote(c, pid, (PEOPLE[1], NO))[0])
    t = counts(c, pid)
    assert (t.yes, t.no) == (1, 1)
    assert len(queries.votes(c.state, pid)) == 2
    invariants.check(c.state)


def test_vote_change_refused_on_the_constitutional_track() -> None:
    c = Chain()
    pid = new(c, ActionType.AMEND_CONSTITUTION, AmendConstitution(1, (ArticleChange(4, "New."),)), deposit=100)
    open_voting(c, pid)
    ok(vote(c, pid, (PEOPLE[0], YES))[0])
    assert vote(c, pid, (PEOPLE[0], NO))[0].code == Code.VOTE_CHANGE_NOT_ALLOWED
    assert counts(c, pid).yes == 1


def test_token_votes_lock_until_the_end_and_cannot_be_reused() -> None:
    c = Chain()
    pid = new(c, ActionType.CHANGE_PARAMS, ChangeParams(3, None, None, None, None, ()))
    open_voting(c, pid)
    p = prop(c, pid)
    assert p.eligible == c.genesis.total_supply - TREASURY - 100
    ok(vote(c, pid, (OUTSIDER, YES))[0])
    assert counts(c, pid).yes == BALANCE
    assert queries.account(c.state, OUTSIDER.address).locked == BALANCE
    # the tokens cannot move to a second voter while the vote runs
    r = c.run(OUTSIDER.key, "transfer", Transfer(PEOPLE[0].address, 1, ""))
    assert r.code == Code.INSUFFICIENT_FUNDS
    # receiving tokens is fine, and a changed vote locks the new balance
    ok(c.run(PEOPLE[0].key, "transfer", Transfer(OUTSIDER.address, 500, "")))
    ok(vote(c, pid, (OUTSIDER, NO))[0])
    t = counts(c, pid)
    assert (t.yes, t.no) == (0, BALANCE + 500)
    assert queries.locks(c.state, OUTSIDER.address) == [(pid, BALANCE + 500)]
    invariants.check(c.state, c.genesis.total_supply)
    decide(c, pid)
    assert queries.account(c.state, OUTSIDER.address).locked == 0
    assert queries.locks(c.state, OUTSIDER.address) == []
    ok(c.run(OUTSIDER.key, "transfer", Transfer(PEOPLE[0].address, 1, "")))
    invariants.check(c.state, c.genesis.total_supply)


def test_same_tokens_back_votes_on_two_proposals_and_lock_is_the_maximum() -> None:
    c = Chain()
    a = new(c, ActionType.CHANGE_PARAMS, ChangeParams(3, None, None, None, None, ()))
    b = new(c, ActionType.TREASURY_SPEND, TreasurySpend(OUTSIDER.address, 5, ""))
    open_voting(c, b)
    ok(vote(c, a, (OUTSIDER, YES))[0])
    ok(vote(c, b, (OUTSIDER, YES))[0])
    assert queries.account(c.state, OUTSIDER.address).locked == BALANCE
    decide(c, a)
    assert queries.account(c.state, OUTSIDER.address).locked == BALANCE  # still locked by b
    decide(c, b)
    invariants.check(c.state, c.genesis.total_supply)


def test_account_without_tokens_has_no_token_vote() -> None:
    c = Chain()
    pid = new(c, ActionType.CHANGE_PARAMS, ChangeParams(3, None, None, None, None, ()))
    open_voting(c, pid)
    assert c.run(kp(999_999), "proposal.vote", CastVote(pid, YES)).code == Code.NOT_ELIGIBLE


def test_rules_are_snapshotted_at_submission() -> None:
    c = Chain()
    slow = ChangeParams(None, None, None, None, None, (
        c.genesis.params.track(Track.LAW).__class__(**{**_fields(c.genesis.params.track(Track.LAW)),
                                                       "voting_period": 50}),))
    change = new(c, ActionType.CHANGE_PARAMS, slow)
    law = new(c, ActionType.ENACT_LAW, LAW)
    open_voting(c, change)
    vote(c, change, *((p, YES) for p in [*PEOPLE, OUTSIDER]))
    decide(c, change)
    assert execute(c, change) == Status.EXECUTED
    assert queries.params(c.state).track(Track.LAW).voting_period == 50
    assert prop(c, law).rules.voting_period == 5  # unchanged for the running proposal
    later = new(c, ActionType.ENACT_LAW, LAW)
    assert prop(c, later).rules.voting_period == 50


# ---------------------------------------------------------------- actions


def test_param_change_takes_effect() -> None:
    c = Chain()
    passed(c, ActionType.CHANGE_PARAMS, ChangeParams(5, Ratio(1, 4), None, None, None, ()), [*PEOPLE, OUTSIDER])
    prm = queries.params(c.state)
    assert (prm.fee, prm.cancel_burn) == (5, Ratio(1, 4))
    before = queries.supply(c.state).treasury
    ok(c.run(PEOPLE[0].key, "transfer", Transfer(PEOPLE[1].address, 1, "")))
    assert queries.supply(c.state).treasury == before + 5


def test_treasury_spend_funds_a_project() -> None:
    c = Chain()
    project = kp(8080).address
    passed(c, ActionType.TREASURY_SPEND, TreasurySpend(project, 250_000, "school"), [*PEOPLE, OUTSIDER])
    assert queries.account(c.state, project).balance == 250_000
    assert queries.supply(c.state).treasury == TREASURY - 250_000
    invariants.check(c.state, c.genesis.total_supply)


def test_constitutional_amendment_versions_and_history() -> None:
    c = Chain()
    original = queries.constitution(c.state)
    amend = AmendConstitution(1, (ArticleChange(2, "Every resident has one vote, secretly cast."),
                                  ArticleChange(3, None), ArticleChange(7, "Amendments need two thirds.")))
    pid = passed(c, ActionType.AMEND_CONSTITUTION, amend)
    now = queries.constitution(c.state)
    assert now.version == 2 and now.hash != original.hash
    assert [(a.number, a.text) for a in now.articles] == [
        (1, "Membership is voluntary."),
        (2, "Every resident has one vote, secretly cast."),
        (7, "Amendments need two thirds."),
    ]
    hist = queries.constitution_history(c.state)
    assert [h.version for h in hist] == [1, 2]
    assert hist[1].prev_hash == hist[0].hash == original.hash and hist[1].proposal_id == pid
    assert queries.constitution_at(c.state, 1) == list(original.articles)
    assert queries.constitution_at(c.state, 2) == list(now.articles)
    assert queries.constitution_at(c.state, 3) is None
    invariants.check(c.state)


def test_stale_amendment_fails_at_execution() -> None:
    c = Chain()
    first = new(c, ActionType.AMEND_CONSTITUTION, AmendConstitution(1, (ArticleChange(4, "Four."),)))
    second = new(c, ActionType.AMEND_CONSTITUTION, AmendConstitution(1, (ArticleChange(5, "Five."),)))
    open_voting(c, second)
    vote(c, first, *((p, YES) for p in PEOPLE))
    vote(c, second, *((p, YES) for p in PEOPLE))
    decide(c, second)
    c.until(prop(c, second).execute_at)
    assert prop(c, first).status == Status.EXECUTED
    assert prop(c, second).status == Status.EXECUTION_FAILED
    assert "version 1" in prop(c, second).note
    assert queries.constitution(c.state).version == 2


def test_repealing_a_missing_article_fails_at_execution() -> None:
    c = Chain()
    pid = new(c, ActionType.AMEND_CONSTITUTION, AmendConstitution(1, (ArticleChange(9, None),)))
    open_voting(c, pid)
    vote(c, pid, *((p, YES) for p in PEOPLE))
    decide(c, pid)
    assert execute(c, pid) == Status.EXECUTION_FAILED


def test_constitutional_track_is_strict() -> None:
    c = Chain()
    pid = new(c, ActionType.AMEND_CONSTITUTION, AmendConstitution(1, (ArticleChange(4, "Four."),)))
    open_voting(c, pid)
    vote(c, pid, (PEOPLE[0], YES), (PEOPLE[1], YES))  # 2/6 < 2/5 quorum
    assert decide(c, pid) == Status.NO_QUORUM
    pid = new(c, ActionType.AMEND_CONSTITUTION, AmendConstitution(1, (ArticleChange(4, "Four."),)))
    open_voting(c, pid)
    vote(c, pid, (PEOPLE[0], YES), (PEOPLE[1], YES), (PEOPLE[2], NO))  # 2/3 exactly is not enough
    assert decide(c, pid) == Status.REJECTED


def test_registrar_appointment_and_removal() -> None:
    c = Chain()
    newbie = person(62)
    ok(c.run(newbie.key, "identity.register", RegisterIdentity(key_digest(newbie.next_key.public_key))))
    passed(c, ActionType.APPOINT_REGISTRAR, IdentityRef(PEOPLE[3].id))
    assert PEOPLE[3].id in [r for r, _ in queries.registrars(c.state)]
    ok(c.run(PEOPLE[3].key, "residency.grant", GrantResidency(newbie.id, c.height + 100)))
    passed(c, ActionType.REMOVE_REGISTRAR, IdentityRef(PEOPLE[3].id))
    assert c.run(PEOPLE[3].key, "residency.grant", GrantResidency(newbie.id, c.height + 200)).code == Code.NOT_REGISTRAR
    pid = passed(c, ActionType.REMOVE_REGISTRAR, IdentityRef(PEOPLE[3].id))
    assert prop(c, pid).status == Status.EXECUTION_FAILED


def test_issuer_accreditation_and_revocation() -> None:
    c = Chain()
    passed(c, ActionType.ACCREDIT_ISSUER, AccreditIssuer(PEOPLE[4].id, "Guild of Carpenters"))
    assert dict(queries.issuers(c.state))[PEOPLE[4].id].accredited
    passed(c, ActionType.REVOKE_ISSUER, IdentityRef(PEOPLE[4].id))
    assert not dict(queries.issuers(c.state))[PEOPLE[4].id].accredited
    pid = passed(c, ActionType.REVOKE_ISSUER, IdentityRef(PEOPLE[4].id))
    assert prop(c, pid).status == Status.EXECUTION_FAILED


def test_validator_change_takes_effect_two_heights_later() -> None:
    c = Chain()
    newcomer = kp(4000).public_key
    updates = tuple(sorted([ValidatorUpdate(VALIDATORS[0].public_key, 0), ValidatorUpdate(newcomer, 25)],
                           key=lambda u: u.pubkey))
    pid = new(c, ActionType.CHANGE_VALIDATORS, ChangeValidators(updates))
    open_voting(c, pid)
    vote(c, pid, *((p, YES) for p in [*PEOPLE, OUTSIDER]))
    decide(c, pid)
    h = prop(c, pid).execute_at
    c.until(h)
    assert prop(c, pid).status == Status.EXECUTED
    before, after = validators_for(c.state, h + 1), validators_for(c.state, h + 2)
    assert VALIDATORS[0].public_key in before and newcomer not in before
    assert VALIDATORS[0].public_key not in after and after.power_of(newcomer) == 25
    assert validators_for(c.state, h + 100).hash == after.hash
    assert validators_for(c.state, 1).hash == before.hash


def test_validator_change_that_empties_the_set_fails() -> None:
    c = Chain()
    updates = tuple(sorted((ValidatorUpdate(v.public_key, 0) for v in VALIDATORS), key=lambda u: u.pubkey))
    pid = passed(c, ActionType.CHANGE_VALIDATORS, ChangeValidators(updates), [*PEOPLE, OUTSIDER])
    assert prop(c, pid).status == Status.EXECUTION_FAILED
    assert len(validators_for(c.state, c.height + 2)) == 4


def test_residency_ruling() -> None:
    c = Chain()
    passed(c, ActionType.RESIDENCY_RULING, ResidencyRuling(PEOPLE[5].id, Residency.SUSPENDED, "ruling 1"))
    assert queries.identity(c.state, PEOPLE[5].id).residency == Residency.SUSPENDED  # type: ignore[union-attr]
    passed(c, ActionType.RESIDENCY_RULING, ResidencyRuling(PEOPLE[5].id, Residency.ACTIVE, "ruling 2"), PEOPLE[:5])
    assert queries.identity(c.state, PEOPLE[5].id).residency == Residency.ACTIVE  # type: ignore[union-attr]
    passed(c, ActionType.RESIDENCY_RULING, ResidencyRuling(PEOPLE[5].id, Residency.REVOKED, "ruling 3"))
    assert queries.identity(c.state, PEOPLE[5].id).residency == Residency.REVOKED  # type: ignore[union-attr]
    invariants.check(c.state)


def test_appointing_an_existing_registrar_fails_at_execution() -> None:
    c = Chain()
    pid = passed(c, ActionType.APPOINT_REGISTRAR, IdentityRef(PEOPLE[0].id))
    p = prop(c, pid)
    assert p.status == Status.EXECUTION_FAILED and "already a registrar" in p.note
