"""Proposals on tracks: submission, cancellation, votes, and their end-of-block lifecycle.

Heights for a proposal submitted in block S on a track with delay d, period p and
timelock t:

    S            submitted; deposit moves to escrow; status PENDING (cancellable)
    S+d          end of block: activation — the electorate is measured, status VOTING
    S+d+1 … S+d+p  votes are accepted
    S+d+p        end of block: tally; deposit refunded or burned (see below);
                 passed → QUEUED, else REJECTED / VETOED / NO_QUORUM
    S+d+p+t      end of block: the action runs → EXECUTED or EXECUTION_FAILED

Deposit at the outcome: passed (executed or not), rejected, no-quorum → refunded;
vetoed → burned; cancelled → `cancel_burn` of it burned, the rest refunded.

The track's parameters are copied into the proposal at submission: a parameter
change decided meanwhile does not move the goalposts of a running vote.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Annotated

from protocol.errors import DecodeError, InvariantViolation
from protocol.governance import accounts, actions, keys
from protocol.governance.actions import ActionType
from protocol.governance.codes import Code, TxFailed, clip
from protocol.governance.context import Ctx, load, need, remember, save
from protocol.governance.counters import Counter, next_id
from protocol.governance.identity import Residency, residents, sender_identity
from protocol.governance.params import Electorate, Track, TrackParams
from protocol.governance.queue import QKind, schedule, unschedule
from protocol.governance.tally import Counts, Outcome, tally
from protocol.kv import KVReader, Overlay
from protocol.limits import MAX_TX_BODY
from protocol.wire import PUBKEY, U64, Bytes, Enum, Nested, Optional, Str, Struct

MAX_TITLE = 200
MAX_SUMMARY = 2000


class Status(enum.IntEnum):
    PENDING = 1
    VOTING = 2
    QUEUED = 3  # passed, waiting out the timelock
    EXECUTED = 4
    EXECUTION_FAILED = 5
    REJECTED = 6
    VETOED = 7
    NO_QUORUM = 8
    CANCELLED = 9


TERMINAL = frozenset(
    {Status.EXECUTED, Status.EXECUTION_FAILED, Status.REJECTED, Status.VETOED, Status.NO_QUORUM, Status.CANCELLED}
)
_FROM_OUTCOME = {Outcome.REJECTED: Status.REJECTED, Outcome.VETOED: Status.VETOED, Outcome.NO_QUORUM: Status.NO_QUORUM}


class Choice(enum.IntEnum):
    YES = 1
    NO = 2
    ABSTAIN = 3
    VETO = 4


@dataclass(frozen=True, slots=True)
class Proposal(Struct):
    MAX_BYTES = 2 * MAX_TX_BODY

    id: Annotated[int, U64]
    track: Annotated[Track, Enum(Track)]
    rules: Annotated[TrackParams, Nested(TrackParams)]  # the track's parameters at submission
    action_type: Annotated[ActionType, Enum(ActionType)]
    action: Annotated[bytes, Bytes(max=MAX_TX_BODY)]
    title: Annotated[str, Str(MAX_TITLE)]
    summary: Annotated[str, Str(MAX_SUMMARY)]
    proposer: Annotated[bytes, PUBKEY]
    refund_to: Annotated[bytes, accounts.ADDRESS]
    deposit: Annotated[int, U64]
    submitted_height: Annotated[int, U64]
    voting_start: Annotated[int, U64]
    voting_end: Annotated[int, U64]
    execute_at: Annotated[int | None, Optional(U64)]
    status: Annotated[Status, Enum(Status)]
    eligible: Annotated[int, U64]  # electorate size measured at activation
    decided_height: Annotated[int | None, Optional(U64)]
    note: Annotated[str, Str(512)]  # why execution failed, if it did

    def outcome(self, counts: Counts) -> Outcome:
        r = self.rules
        return tally(counts, self.eligible, r.quorum, r.threshold, r.veto)


@dataclass(frozen=True, slots=True)
class VoteRecord(Struct):
    choice: Annotated[Choice, Enum(Choice)]
    weight: Annotated[int, U64]
    height: Annotated[int, U64]


# ---------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class SubmitProposal(Struct):
    title: Annotated[str, Str(MAX_TITLE)]
    summary: Annotated[str, Str(MAX_SUMMARY)]
    deposit: Annotated[int, U64]
    action_type: Annotated[ActionType, Enum(ActionType)]
    action: Annotated[bytes, Bytes(max=MAX_TX_BODY)]  # canonical encoding of the action's struct


@dataclass(frozen=True, slots=True)
class ProposalRef(Struct):
    proposal_id: Annotated[int, U64]


@dataclass(frozen=True, slots=True)
class CastVote(Struct):
    proposal_id: Annotated[int, U64]
    choice: Annotated[Choice, Enum(Choice)]


# ---------------------------------------------------------------- reads


def get_proposal(kv: KVReader, proposal_id: int) -> Proposal | None:
    return load(kv, keys.proposal(proposal_id), Proposal)


def votes(kv: KVReader, proposal_id: int) -> list[tuple[bytes, VoteRecord]]:
    """(voter, vote) in voter order; a voter is an identity id (32 bytes) on resident
    tracks and an address (20 bytes) on token tracks."""
    prefix = keys.votes(proposal_id)
    return [(k[len(prefix) :], VoteRecord.decode(v)) for k, v in kv.scan(prefix)]


def _open(c: Ctx, proposal_id: int) -> Proposal:
    p = get_proposal(c.kv, proposal_id)
    if p is None:
        raise TxFailed(Code.NOT_FOUND, f"no proposal {proposal_id}")
    return p


# ---------------------------------------------------------------- txs


# Each tx's `check_*` holds every check its handler makes before it first writes (see
# identity.py); mempool admission runs it too (app.check_tx).


def _check_submission(c: Ctx, body: SubmitProposal) -> tuple[Track, TrackParams]:
    try:
        action = actions.decode(body.action_type, body.action)
    except DecodeError as exc:
        raise TxFailed(Code.BAD_BODY, f"the action is not a valid {body.action_type.name}: {exc.reason}") from None
    if not body.title:
        raise TxFailed(Code.INVALID, "a proposal needs a title")
    reason = actions.problem(c.kv, c.params, action)
    if reason is not None:
        raise TxFailed(Code.INVALID, reason)
    track = actions.track_of(body.action_type, action)
    rules = c.params.track(track)
    if body.deposit < rules.min_deposit:
        raise TxFailed(
            Code.DEPOSIT_TOO_LOW, f"the {track.name.lower()} track needs a deposit of at least {rules.min_deposit}"
        )
    return track, rules


def check_submit(c: Ctx, body: SubmitProposal) -> None:
    _check_submission(c, body)
    accounts.require_spendable(c.kv, c.tx_sender_address, body.deposit)  # what into_escrow checks


def submit(c: Ctx, body: SubmitProposal) -> None:
    track, rules = _check_submission(c, body)
    accounts.into_escrow(c.kv, c.tx_sender_address, body.deposit)
    pid = next_id(c.kv, Counter.PROPOSAL)
    start = c.height + rules.voting_delay
    p = Proposal(
        id=pid,
        track=track,
        rules=rules,
        action_type=body.action_type,
        action=body.action,
        title=body.title,
        summary=body.summary,
        proposer=c.sender,
        refund_to=c.tx_sender_address,
        deposit=body.deposit,
        submitted_height=c.height,
        voting_start=start,
        voting_end=start + rules.voting_period,
        execute_at=None,
        status=Status.PENDING,
        eligible=0,
        decided_height=None,
        note="",
    )
    save(c.kv, keys.proposal(pid), p)
    schedule(c.kv, start, QKind.PROPOSAL, keys.u64(pid))
    c.emit("proposal.submitted", proposal=pid, track=track.name.lower(), voting_start=start)


def check_cancel(c: Ctx, body: ProposalRef) -> Proposal:
    p = _open(c, body.proposal_id)
    if p.proposer != c.sender:
        raise TxFailed(Code.UNAUTHORIZED, "only the proposer can cancel a proposal")
    if p.status != Status.PENDING:
        raise TxFailed(Code.WRONG_STATUS, "a proposal can be cancelled only before voting starts")
    return p


def cancel(c: Ctx, body: ProposalRef) -> None:
    p = check_cancel(c, body)
    unschedule(c.kv, p.voting_start, QKind.PROPOSAL, keys.u64(p.id))
    burn = c.params.cancel_burn.of(p.deposit)
    accounts.release_escrow(c.kv, p.refund_to, p.deposit - burn, burn)
    save(c.kv, keys.proposal(p.id), replace(p, status=Status.CANCELLED, decided_height=c.height))
    c.emit("proposal.cancelled", proposal=p.id, burned=burn)


def get_counts(kv: KVReader, proposal_id: int) -> Counts:
    """The running tally (all zero before the first vote)."""
    return load(kv, keys.tally(proposal_id), Counts) or Counts()


def _add(t: list[int], choice: Choice, weight: int) -> None:
    t[choice - 1] += weight


def check_vote(c: Ctx, body: CastVote) -> tuple[Proposal, bytes, int, VoteRecord | None]:
    """(proposal, voter, weight, the vote it replaces); the voter is an identity id on
    resident tracks and an address on token tracks."""
    p = _open(c, body.proposal_id)
    if p.status != Status.VOTING:
        raise TxFailed(Code.WRONG_STATUS, f"proposal {p.id} is not open for votes ({p.status.name.lower()})")
    if p.rules.electorate == Electorate.RESIDENTS:
        ident = sender_identity(c)
        if ident.residency != Residency.ACTIVE:
            raise TxFailed(Code.NOT_RESIDENT, "only active residents vote on this track")
        if ident.active_since > p.voting_start:
            raise TxFailed(Code.NOT_ELIGIBLE, "the residency began after the electorate was measured")
        voter, weight = ident.id, 1
    else:
        voter, weight = c.tx_sender_address, accounts.get_account(c.kv, c.tx_sender_address).balance
        if weight == 0:
            raise TxFailed(Code.NOT_ELIGIBLE, "an account without tokens has no vote on this track")
    old = load(c.kv, keys.vote(p.id, voter), VoteRecord)
    if old is not None and not p.rules.allow_vote_change:
        raise TxFailed(Code.VOTE_CHANGE_NOT_ALLOWED, "votes on this track cannot be changed")
    return p, voter, weight, old


def vote(c: Ctx, body: CastVote) -> None:
    p, voter, weight, old = check_vote(c, body)
    k = keys.vote(p.id, voter)
    t = list(get_counts(c.kv, p.id).to_wire())
    if old is not None:
        _add(t, old.choice, -old.weight)
    _add(t, body.choice, weight)
    save(c.kv, k, VoteRecord(body.choice, weight, c.height))
    if p.rules.electorate == Electorate.TOKENS:
        accounts.add_lock(c.kv, voter, p.id, weight)
    counts = Counts(*t)
    raw = counts.encode()
    remember(raw, counts)  # ints only
    c.kv.put(keys.tally(p.id), raw)
    c.emit("proposal.vote", proposal=p.id, choice=body.choice.name.lower(), weight=weight, changed=old is not None)


# ---------------------------------------------------------------- end of block


def _eligible(kv: KVReader, electorate: Electorate) -> int:
    if electorate == Electorate.RESIDENTS:
        return residents(kv)
    s = accounts.get_supply(kv)
    return s.total - s.treasury - s.escrow


def _activate(c: Ctx, p: Proposal) -> None:
    p = replace(p, status=Status.VOTING, eligible=_eligible(c.kv, p.rules.electorate))
    save(c.kv, keys.proposal(p.id), p)
    schedule(c.kv, p.voting_end, QKind.PROPOSAL, keys.u64(p.id))
    c.emit("proposal.voting", proposal=p.id, eligible=p.eligible, voting_end=p.voting_end)


def _release_locks(kv: Overlay, p: Proposal) -> None:
    if p.rules.electorate == Electorate.TOKENS:
        for voter, _ in votes(kv, p.id):
            accounts.release_lock(kv, voter, p.id)


def _decide(c: Ctx, p: Proposal) -> None:
    outcome = p.outcome(get_counts(c.kv, p.id))
    _release_locks(c.kv, p)
    burn = p.deposit if outcome == Outcome.VETOED else 0
    accounts.release_escrow(c.kv, p.refund_to, p.deposit - burn, burn)
    if outcome == Outcome.PASSED:
        due = c.height + p.rules.timelock
        p = replace(p, status=Status.QUEUED, execute_at=due, decided_height=c.height)
        schedule(c.kv, due, QKind.PROPOSAL, keys.u64(p.id))
    else:
        p = replace(p, status=_FROM_OUTCOME[outcome], decided_height=c.height)
    save(c.kv, keys.proposal(p.id), p)
    c.emit("proposal.decided", proposal=p.id, outcome=outcome.name.lower(), burned=burn)


def _execute(c: Ctx, p: Proposal) -> None:
    work = Overlay(c.kv)
    sub = c.child(work)
    try:
        actions.execute(sub, p.id, p.action_type, actions.decode(p.action_type, p.action))
    except TxFailed as exc:
        p = replace(p, status=Status.EXECUTION_FAILED, note=clip(exc.reason))
        c.emit("proposal.execution_failed", proposal=p.id, reason=exc.reason)
    else:
        work.merge_into_parent()
        c.events.extend(sub.events)
        c.params = sub.params
        p = replace(p, status=Status.EXECUTED)
        c.emit("proposal.executed", proposal=p.id)
    save(c.kv, keys.proposal(p.id), p)


def due(c: Ctx, due_height: int, item: bytes) -> None:
    """Queue worker: the next lifecycle step of a proposal."""
    p = need(c.kv, keys.proposal(keys.read_u64(item)), Proposal)
    if p.status == Status.PENDING:
        _activate(c, p)
    elif p.status == Status.VOTING:
        _decide(c, p)
    elif p.status == Status.QUEUED:
        _execute(c, p)
    else:
        raise InvariantViolation(f"proposal {p.id} is queued in status {p.status.name}")
