"""check_tx refuses what execution would refuse (issue #9): funds, standing, the
records a tx names — judged on the committed state, never stricter than execution."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from gov_helpers import BALANCE, CHAIN, OUTSIDER, PEOPLE, VALIDATORS, Chain, genesis, kp, ok, open_voting, person
from gov_workload import Workload

from protocol.governance import Code, app_hash, apply_block, check_tx, queries
from protocol.governance.accounts import Transfer
from protocol.governance.actions import ActionType, EnactLaw, TreasurySpend
from protocol.governance.app import TxResult
from protocol.governance.credentials import IssueCredential
from protocol.governance.identity import GrantResidency, RegisterIdentity, ResidencyAction, key_digest
from protocol.governance.notary import Notarise
from protocol.governance.proposals import CastVote, Choice, ProposalRef, SubmitProposal
from protocol.governance.unions import CreateUnion, UnionKind
from protocol.types import Tx, make_block
from protocol.wire import Struct

A, B = PEOPLE[0], PEOPLE[1]  # A: registrar, B: issuer
NOBODY = kp(31337)  # holds nothing, no identity
LAW = EnactLaw("Plant trees.").encode()


def check(c: Chain, key: Any, kind: str, body: Struct | bytes, **kw: Any) -> TxResult:
    """check_tx on a tx with the sender's committed next nonce (the tx is not kept)."""
    nonce = queries.account_nonce(c.state, key.public_key)
    return check_tx(c.state, c.tx(key, kind, body, nonce=nonce, **kw), c.cache)


def refused(r: TxResult, code: Code, prefix: str) -> None:
    assert r.code == code and r.reason.startswith(prefix), (r.code, r.reason)


def law(deposit: int) -> SubmitProposal:
    return SubmitProposal("Trees", "", deposit, ActionType.ENACT_LAW, LAW)


# ---------------------------------------------------------------- funds


@pytest.mark.parametrize("fee", [0, 5])
def test_a_transfer_of_exactly_what_the_sender_can_spend_after_the_fee_is_admitted(fee: int) -> None:
    c = Chain(genesis(params={"fee": fee}))
    assert check(c, OUTSIDER.key, "transfer", Transfer(A.address, BALANCE - fee, "")).ok
    r = check(c, OUTSIDER.key, "transfer", Transfer(A.address, BALANCE - fee + 1, ""))
    refused(r, Code.INSUFFICIENT_FUNDS, "insufficient funds: ")
    # the refusal is execution's own verdict on the same state
    executed = c.run(OUTSIDER.key, "transfer", Transfer(A.address, BALANCE - fee + 1, ""))
    assert executed.code == Code.INSUFFICIENT_FUNDS and r.reason == "insufficient funds: " + executed.reason
    ok(c.run(OUTSIDER.key, "transfer", Transfer(A.address, BALANCE - 2 * fee, "")))  # the nonce moved on
    assert queries.account(c.state, OUTSIDER.address).balance == 0


def test_a_sender_that_holds_nothing_is_refused() -> None:
    c = Chain()  # fee 0: the fee check lets it through, the transfer's check does not
    assert queries.account(c.state, NOBODY.address).balance == 0
    refused(check(c, NOBODY, "transfer", Transfer(A.address, 1, "")), Code.INSUFFICIENT_FUNDS,
            "insufficient funds: needs 1 spendable tokens, has 0")
    with_fee = Chain(genesis(params={"fee": 1}))
    assert check(with_fee, NOBODY, "transfer", Transfer(A.address, 1, "")).code == Code.FEE_UNPAID
    assert check(with_fee, NOBODY, "notary.notarise", Notarise(bytes(32), "")).code == Code.FEE_UNPAID


def test_a_zero_transfer_is_refused() -> None:
    refused(check(Chain(), NOBODY, "transfer", Transfer(A.address, 0, "")), Code.INVALID,
            "would fail: transfer amount must be positive")


def test_locked_tokens_do_not_count() -> None:
    c = Chain()
    treasury = TreasurySpend(A.address, 1, "x").encode()
    ok(c.run(A.key, "proposal.submit", SubmitProposal("t", "", 100, ActionType.TREASURY_SPEND, treasury)))
    pid = max(p.id for p in queries.proposals(c.state))
    open_voting(c, pid)
    ok(c.run(OUTSIDER.key, "proposal.vote", CastVote(pid, Choice.YES)))  # token track: locks the whole balance
    refused(check(c, OUTSIDER.key, "transfer", Transfer(A.address, 1, "")), Code.INSUFFICIENT_FUNDS,
            f"insufficient funds: needs 1 spendable tokens, has 0 ({BALANCE} locked)")


def test_kinds_that_need_nothing_are_admitted_from_an_empty_account() -> None:
    c = Chain()
    assert check(c, NOBODY, "notary.notarise", Notarise(bytes(32), "")).ok
    assert check(c, NOBODY, "identity.register", RegisterIdentity(key_digest(kp(31338).public_key))).ok
    # with no minimum deposit a proposal needs no tokens either
    free = Chain(genesis(params={"tracks": {"law": {"min_deposit": 0}}}))
    assert check(free, NOBODY, "proposal.submit", law(0)).ok


def test_a_deposit_is_checked_against_the_track_minimum_and_the_funds() -> None:
    c = Chain(genesis(params={"fee": 3}))
    refused(check(c, NOBODY, "proposal.submit", law(100)), Code.FEE_UNPAID, "the fee is 3")
    refused(check(c, OUTSIDER.key, "proposal.submit", law(99)), Code.DEPOSIT_TOO_LOW,
            "would fail: the law track needs a deposit of at least 100")
    assert check(c, OUTSIDER.key, "proposal.submit", law(BALANCE - 3)).ok
    refused(check(c, OUTSIDER.key, "proposal.submit", law(BALANCE - 2)), Code.INSUFFICIENT_FUNDS,
            "insufficient funds: ")
    # a treasury spend is paid by the treasury, but its deposit by the proposer
    spend = SubmitProposal("t", "", 100, ActionType.TREASURY_SPEND, TreasurySpend(A.address, 5, "x").encode())
    unfunded = Chain(genesis(params={"fee": 0}))
    refused(check(unfunded, NOBODY, "proposal.submit", spend), Code.INSUFFICIENT_FUNDS, "insufficient funds: ")
    refused(check(c, OUTSIDER.key, "proposal.submit", SubmitProposal("t", "", 100, ActionType.ENACT_LAW, b"\xc1")),
            Code.BAD_BODY, "bad proposal.submit body: the action is not a valid ENACT_LAW")


def test_a_token_vote_needs_tokens_left_after_the_fee() -> None:
    fee = 7
    g = genesis(params={"fee": fee}, accounts=[
        {"pubkey": p.pub.hex(), "balance": BALANCE} for p in [*PEOPLE, OUTSIDER]
    ] + [{"pubkey": NOBODY.public_key.hex(), "balance": fee}])
    c = Chain(g)
    treasury = TreasurySpend(A.address, 1, "x").encode()
    ok(c.run(A.key, "proposal.submit", SubmitProposal("t", "", 100, ActionType.TREASURY_SPEND, treasury)))
    pid = max(p.id for p in queries.proposals(c.state))
    open_voting(c, pid)
    refused(check(c, NOBODY, "proposal.vote", CastVote(pid, Choice.YES)), Code.NOT_ELIGIBLE,
            "not permitted: an account without tokens has no vote on this track")
    assert check(c, OUTSIDER.key, "proposal.vote", CastVote(pid, Choice.YES)).ok


# ---------------------------------------------------------------- standing and named records


def test_standing_is_checked() -> None:
    c = Chain()
    grant = GrantResidency(OUTSIDER.id, 1_000)
    refused(check(c, OUTSIDER.key, "residency.grant", grant), Code.NOT_IDENTITY, "not permitted: ")
    refused(check(c, PEOPLE[3].key, "residency.grant", grant), Code.NOT_REGISTRAR, "not permitted: ")
    refused(check(c, A.key, "residency.grant", grant), Code.NOT_FOUND, "would fail: no such identity")
    refused(check(c, A.key, "residency.reinstate", ResidencyAction(PEOPLE[3].id, "")), Code.WRONG_STATUS,
            "would fail: a active residency cannot become active")
    assert check(c, A.key, "residency.suspend", ResidencyAction(PEOPLE[3].id, "")).ok
    cred = IssueCredential(A.id, "degree/v1", bytes(32), None)
    refused(check(c, PEOPLE[3].key, "credential.issue", cred), Code.NOT_ISSUER, "not permitted: ")
    assert check(c, B.key, "credential.issue", cred).ok
    marriage = CreateUnion(UnionKind.MARRIAGE, "m", bytes(32), 10)
    refused(check(c, OUTSIDER.key, "union.create", marriage, cosigners=(A.key,)), Code.NOT_IDENTITY,
            "not permitted: ")
    assert check(c, PEOPLE[2].key, "union.create", marriage, cosigners=(PEOPLE[3].key,)).ok
    refused(check(c, A.key, "proposal.vote", CastVote(99, Choice.YES)), Code.NOT_FOUND, "would fail: no proposal 99")
    refused(check(c, A.key, "proposal.cancel", ProposalRef(99)), Code.NOT_FOUND, "would fail: ")
    refused(check(c, A.key, "identity.register", RegisterIdentity(bytes(32))), Code.KEY_REUSED, "not permitted: ")


def test_a_vote_is_checked_against_the_proposal_and_the_voter() -> None:
    c = Chain()
    ok(c.run(A.key, "proposal.submit", law(100)))
    pid = max(p.id for p in queries.proposals(c.state))
    refused(check(c, B.key, "proposal.vote", CastVote(pid, Choice.YES)), Code.WRONG_STATUS,
            f"would fail: proposal {pid} is not open for votes (pending)")
    refused(check(c, B.key, "proposal.cancel", ProposalRef(pid)), Code.UNAUTHORIZED, "not permitted: ")
    assert check(c, A.key, "proposal.cancel", ProposalRef(pid)).ok
    open_voting(c, pid)
    assert check(c, B.key, "proposal.vote", CastVote(pid, Choice.YES)).ok
    refused(check(c, OUTSIDER.key, "proposal.vote", CastVote(pid, Choice.YES)), Code.NOT_IDENTITY, "not permitted: ")


def test_a_tx_depending_on_a_pending_one_waits_for_its_commit() -> None:
    """The documented choice: committed state only, as CometBFT's CheckTx."""
    c = Chain()
    fresh = person(60)
    funding = c.tx(OUTSIDER.key, "transfer", Transfer(fresh.address, 50, ""))
    assert check_tx(c.state, funding, c.cache).ok
    spend = c.tx(fresh.key, "transfer", Transfer(A.address, 10, ""))
    refused(check_tx(c.state, spend, c.cache), Code.INSUFFICIENT_FUNDS, "insufficient funds: ")
    # both in one block would succeed: admission is stricter than that, never than execution alone
    ok(c.block(funding).tx_results[0])
    assert check_tx(c.state, spend, c.cache).ok


def test_check_tx_changes_nothing() -> None:
    c = Chain(genesis(params={"fee": 5}))
    before = list(c.state.scan(b""))
    check(c, OUTSIDER.key, "transfer", Transfer(A.address, 1, ""))
    check(c, OUTSIDER.key, "transfer", Transfer(A.address, 10 * BALANCE, ""))
    assert list(c.state.scan(b"")) == before


def test_refusal_reasons_map_onto_bounded_metric_labels() -> None:
    from node.metrics import MEMPOOL_REASONS, rejection_code

    c = Chain()
    cases = {
        "insufficient_funds": check(c, NOBODY, "transfer", Transfer(A.address, 1, "")),
        "not_permitted": check(c, PEOPLE[3].key, "residency.grant", GrantResidency(OUTSIDER.id, 1_000)),
        "would_fail": check(c, A.key, "proposal.vote", CastVote(99, Choice.YES)),
        "bad_body": check(c, A.key, "proposal.submit", SubmitProposal("t", "", 100, ActionType.ENACT_LAW, b"\xc1")),
    }
    for label, r in cases.items():
        assert not r.ok and label in MEMPOOL_REASONS
        assert rejection_code(r.reason) == label, r.reason


# ---------------------------------------------------------------- never stricter than execution


class _Compared(Chain):
    """Before each block, every tx that could be the next block's first (its nonce is
    the committed next one) is judged by check_tx and executed alone on the same
    state: admission must give exactly execution's verdict."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.seen: Counter[int] = Counter()

    def alone(self, tx: Tx) -> TxResult:
        blk = make_block(
            chain_id=CHAIN, height=self.height + 1, time_ms=self.time + 1, prev_hash=self.prev_hash,
            app_hash=app_hash(self.state), validators_hash=bytes(32), proposer=VALIDATORS[0].public_key,
            txs=(tx,), evidence=(),
        )
        return apply_block(self.state, blk, cache=self.cache).tx_results[0]

    def block(self, *txs: Tx, **kw: Any) -> Any:
        for tx in txs:
            if tx.nonce != queries.account_nonce(self.state, tx.sender):
                continue
            admitted, executed = check_tx(self.state, tx, self.cache), self.alone(tx)
            assert admitted.code == executed.code, (tx.kind, admitted, executed)
            if not admitted.ok:
                assert admitted.reason.endswith(executed.reason), (admitted.reason, executed.reason)
            self.seen[admitted.code] += 1
        return super().block(*txs, **kw)


@pytest.mark.parametrize("fee", [0, 7])
def test_admission_gives_execution_s_verdict_on_random_workloads(fee: int) -> None:
    seen: Counter[int] = Counter()
    for seed in range(4):
        rng = random.Random(seed * 100 + fee)
        c = _Compared(genesis(params={"fee": fee}))
        w = Workload(c, rng.randint)
        for _ in range(30):
            w.block(max_txs=10)
        seen += c.seen
    assert seen[Code.OK] > 50
    refusals = {Code(k) for k in seen if k >= 10}
    assert len(refusals) >= 6 and Code.INSUFFICIENT_FUNDS in refusals, refusals
