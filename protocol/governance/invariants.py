"""A full scan of the state checking what the state machine promises. Costs O(state):
for tests, simulations and `ekklesia check`-style tools, not for every block."""

from __future__ import annotations

from protocol.errors import InvariantViolation
from protocol.governance import constitution, keys
from protocol.governance.accounts import Account, get_supply
from protocol.governance.identity import Identity, Residency
from protocol.governance.params import Electorate
from protocol.governance.proposals import TERMINAL, Choice, Proposal, Status, VoteRecord, get_counts
from protocol.governance.queue import QKind
from protocol.governance.tally import Counts
from protocol.governance.unions import Union, UnionStatus
from protocol.kv import KVReader


def problems(state: KVReader, genesis_supply: int | None = None) -> list[str]:
    out: list[str] = []
    s = get_supply(state)
    balances = 0
    account_locks: dict[bytes, int] = {}
    for k, v in state.scan(keys.ACCOUNT):
        a = Account.decode(v)
        balances += a.balance
        if a.locked > a.balance:
            out.append(f"account {k[2:].hex()} locks {a.locked} of {a.balance}")
        account_locks[k[2:]] = a.locked
    if balances + s.treasury + s.escrow != s.total:
        out.append(f"balances {balances} + treasury {s.treasury} + escrow {s.escrow} != total {s.total}")
    if genesis_supply is not None and s.total + s.burned != genesis_supply:
        out.append(f"total {s.total} + burned {s.burned} != genesis supply {genesis_supply}")

    props = {p.id: p for p in (Proposal.decode(v) for _, v in state.scan(keys.PROPOSAL))}
    max_lock: dict[bytes, int] = {}
    for k, v in state.scan(keys.LOCK):
        addr, pid, amount = k[2:22], keys.read_u64(k[22:30]), keys.read_u64(v)
        max_lock[addr] = max(max_lock.get(addr, 0), amount)
        p = props.get(pid)
        if p is None or p.status != Status.VOTING or p.rules.electorate != Electorate.TOKENS:
            out.append(f"lock of {addr.hex()} on proposal {pid} outlived its vote")
        vote_raw = state.get(keys.vote(pid, addr))
        if vote_raw is None or VoteRecord.decode(vote_raw).weight != amount:
            out.append(f"lock of {addr.hex()} on proposal {pid} does not match its vote")
    for addr in sorted(set(max_lock) | set(account_locks)):
        if account_locks.get(addr, 0) != max_lock.get(addr, 0):
            have, want = account_locks.get(addr, 0), max_lock.get(addr, 0)
            out.append(f"account {addr.hex()} locked {have}, its locks say {want}")

    queued = {}
    for k, _ in state.scan(keys.QUEUE):
        queued[(k[10], k[11:])] = keys.read_u64(k[2:10])
    escrow = 0
    for pid, p in sorted(props.items()):
        if p.status in (Status.PENDING, Status.VOTING):
            escrow += p.deposit
        due = queued.get((QKind.PROPOSAL, keys.u64(pid)))
        expected = {Status.PENDING: p.voting_start, Status.VOTING: p.voting_end, Status.QUEUED: p.execute_at}
        if p.status in TERMINAL and due is not None:
            out.append(f"proposal {pid} is {p.status.name} but still queued")
        if p.status not in TERMINAL and due != expected[p.status]:
            out.append(f"proposal {pid} is {p.status.name} but queued at {due}, not {expected[p.status]}")
        sums = dict.fromkeys(Choice, 0)
        for _, v in state.scan(keys.votes(pid)):
            rec = VoteRecord.decode(v)
            sums[rec.choice] += rec.weight
        counted = Counts(sums[Choice.YES], sums[Choice.NO], sums[Choice.ABSTAIN], sums[Choice.VETO])
        if counted != get_counts(state, pid):
            out.append(f"proposal {pid}'s tally differs from its votes")
    if escrow != s.escrow:
        out.append(f"escrow {s.escrow} != deposits of open proposals {escrow}")

    active = 0
    for _, v in state.scan(keys.IDENTITY):
        ident = Identity.decode(v)
        active += ident.residency == Residency.ACTIVE
        if state.get(keys.key(ident.key)) != ident.id:
            out.append(f"identity {ident.id.hex()}'s key is not indexed")
        scheduled = queued.get((QKind.RESIDENCY, ident.id))
        live = ident.residency in (Residency.ACTIVE, Residency.SUSPENDED)
        if scheduled != (ident.expires_at if live else None):
            out.append(f"identity {ident.id.hex()}'s expiry is scheduled at {scheduled}, expected {ident.expires_at}")
    if active != keys.read_u64(state.get(keys.META_RESIDENTS) or bytes(8)):
        out.append(f"resident count differs from the {active} active residencies")
    for _, v in state.scan(keys.UNION):
        u = Union.decode(v)
        scheduled = queued.get((QKind.UNION, keys.u64(u.id)))
        if scheduled != (u.notice_due if u.status == UnionStatus.NOTICE else None):
            out.append(f"union {u.id} is {u.status.name} with its notice queued at {scheduled}")
    if not constitution.verify_chain(state):
        out.append("the constitution's version chain does not verify")
    return out


def check(state: KVReader, genesis_supply: int | None = None) -> None:
    found = problems(state, genesis_supply)
    if found:
        raise InvariantViolation("; ".join(found))
