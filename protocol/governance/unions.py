"""Marriages and contracts: multi-party records co-signed by every party.

Parties are identities: the sender and every co-signer of the creating tx, each
signing with its identity's current key, each an active resident. A marriage has
exactly two parties, a contract two to 17. A union ends by

* mutual dissolution, co-signed by exactly its parties (residency not required);
* notice by one party, taking effect `notice_period` heights later (end-of-block);
* a governance ruling (the RULING track).

Every change appends to the union's history (`uh/` keys).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Annotated

from protocol.governance import keys
from protocol.governance.codes import Code, TxFailed
from protocol.governance.context import Ctx, load, need, save
from protocol.governance.counters import Counter, next_id
from protocol.governance.identity import Identity, identity_of_key, require_resident, sender_identity
from protocol.governance.queue import QKind, schedule, unschedule
from protocol.kv import KVReader, Overlay
from protocol.limits import MAX_COSIGNATURES
from protocol.wire import HASH, U32, U64, Enum, Int, Optional, Seq, Str, Struct

MAX_PARTIES = MAX_COSIGNATURES + 1
MAX_NOTICE = 10_000_000


class UnionKind(enum.IntEnum):
    MARRIAGE = 1
    CONTRACT = 2


class UnionStatus(enum.IntEnum):
    ACTIVE = 1
    NOTICE = 2  # a party gave notice; dissolves at notice_due
    DISSOLVED = 3


class UnionAction(enum.IntEnum):
    CREATED = 1
    NOTICE_GIVEN = 2
    DISSOLVED_BY_PARTIES = 3
    DISSOLVED_BY_NOTICE = 4
    DISSOLVED_BY_GOVERNANCE = 5


@dataclass(frozen=True, slots=True)
class Union(Struct):
    id: Annotated[int, U64]
    kind: Annotated[UnionKind, Enum(UnionKind)]
    parties: Annotated[tuple[bytes, ...], Seq(HASH, MAX_PARTIES)]  # identity ids, sorted
    title: Annotated[str, Str(128)]
    terms_hash: Annotated[bytes, HASH]
    notice_period: Annotated[int, U64]
    status: Annotated[UnionStatus, Enum(UnionStatus)]
    created_height: Annotated[int, U64]
    notice_due: Annotated[int | None, Optional(U64)]
    ended_height: Annotated[int | None, Optional(U64)]
    events: Annotated[int, U32]  # history length


@dataclass(frozen=True, slots=True)
class UnionEvent(Struct):
    height: Annotated[int, U64]
    action: Annotated[UnionAction, Enum(UnionAction)]
    by: Annotated[tuple[bytes, ...], Seq(HASH, MAX_PARTIES)]  # identities; empty for governance/queue
    proposal_id: Annotated[int | None, Optional(U64)]
    tx_hash: Annotated[bytes | None, Optional(HASH)]


# ---------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class CreateUnion(Struct):
    kind: Annotated[UnionKind, Enum(UnionKind)]
    title: Annotated[str, Str(128)]
    terms_hash: Annotated[bytes, HASH]
    notice_period: Annotated[int, Int(0, MAX_NOTICE)]


@dataclass(frozen=True, slots=True)
class UnionRef(Struct):
    """Body of union.dissolve and union.notice."""

    union_id: Annotated[int, U64]


# ---------------------------------------------------------------- helpers


def get_union(kv: KVReader, union_id: int) -> Union | None:
    return load(kv, keys.union(union_id), Union)


def history(kv: KVReader, union_id: int) -> list[UnionEvent]:
    return [UnionEvent.decode(v) for _, v in kv.scan(keys.UNION_EVENT + keys.u64(union_id))]


def unions_of(kv: KVReader, identity_id: bytes) -> list[Union]:
    prefix = keys.UNION_PARTY + identity_id
    return [need(kv, keys.union(keys.read_u64(k[len(prefix) :])), Union) for k, _ in kv.scan(prefix)]


def _log(kv: Overlay, u: Union, event: UnionEvent) -> Union:
    save(kv, keys.union_event(u.id, u.events), event)
    new = replace(u, events=u.events + 1)
    save(kv, keys.union(u.id), new)
    return new


def _signer_identities(c: Ctx) -> list[bytes]:
    """Identity ids of the sender and every co-signer; each must be one's current key."""
    assert c.tx is not None
    ids = [sender_identity(c).id]
    for cs in c.tx.cosignatures:
        ident = identity_of_key(c.kv, cs.signer)
        if ident is None:
            raise TxFailed(Code.NOT_IDENTITY, f"co-signer {cs.signer.hex()[:16]} is not an identity's current key")
        ids.append(ident.id)
    return sorted(ids)


def _open(c: Ctx, union_id: int) -> Union:
    u = get_union(c.kv, union_id)
    if u is None:
        raise TxFailed(Code.NOT_FOUND, f"no union {union_id}")
    if u.status == UnionStatus.DISSOLVED:
        raise TxFailed(Code.WRONG_STATUS, f"union {union_id} is already dissolved")
    return u


def _dissolve(c: Ctx, u: Union, action: UnionAction, by: tuple[bytes, ...], proposal_id: int | None) -> None:
    if u.status == UnionStatus.NOTICE and action != UnionAction.DISSOLVED_BY_NOTICE:
        assert u.notice_due is not None
        unschedule(c.kv, u.notice_due, QKind.UNION, keys.u64(u.id))
    u = replace(u, status=UnionStatus.DISSOLVED, ended_height=c.height)
    _log(c.kv, u, UnionEvent(c.height, action, by, proposal_id, c.tx_hash or None))
    c.emit("union.dissolved", union=u.id, how=action.name.lower())


# ---------------------------------------------------------------- txs


# Each tx's `check_*` holds every check its handler makes before it first writes (see
# identity.py); mempool admission runs it too (app.check_tx).


def check_create(c: Ctx, body: CreateUnion) -> list[bytes]:
    """The parties (identity ids, sorted)."""
    parties = _signer_identities(c)
    if body.kind == UnionKind.MARRIAGE and len(parties) != 2:
        raise TxFailed(Code.PARTIES_MISMATCH, f"a marriage has exactly two parties, not {len(parties)}")
    if len(parties) < 2:
        raise TxFailed(Code.PARTIES_MISMATCH, "a contract needs at least two parties")
    for pid in parties:
        ident = need(c.kv, keys.identity(pid), Identity)
        require_resident(ident, f"party {pid.hex()[:16]}")
    if body.notice_period < c.params.min_notice_period:
        raise TxFailed(
            Code.INVALID, f"notice period {body.notice_period} is below the minimum {c.params.min_notice_period}"
        )
    return parties


def create(c: Ctx, body: CreateUnion) -> None:
    parties = check_create(c, body)
    union_id = next_id(c.kv, Counter.UNION)
    u = Union(
        id=union_id,
        kind=body.kind,
        parties=tuple(parties),
        title=body.title,
        terms_hash=body.terms_hash,
        notice_period=body.notice_period,
        status=UnionStatus.ACTIVE,
        created_height=c.height,
        notice_due=None,
        ended_height=None,
        events=0,
    )
    for pid in parties:
        c.kv.put(keys.union_party(pid, union_id), b"")
    _log(c.kv, u, UnionEvent(c.height, UnionAction.CREATED, tuple(parties), None, c.tx_hash))
    c.emit("union.created", union=union_id, kind=body.kind.name.lower(), parties=len(parties))


def check_dissolve(c: Ctx, body: UnionRef) -> Union:
    u = _open(c, body.union_id)
    signers = _signer_identities(c)
    if tuple(signers) != u.parties:
        raise TxFailed(Code.PARTIES_MISMATCH, "a mutual dissolution must be signed by exactly the union's parties")
    return u


def dissolve(c: Ctx, body: UnionRef) -> None:
    u = check_dissolve(c, body)
    _dissolve(c, u, UnionAction.DISSOLVED_BY_PARTIES, u.parties, None)


def check_notice(c: Ctx, body: UnionRef) -> tuple[Union, bytes]:
    """(the union, the sender's identity id)."""
    u = _open(c, body.union_id)
    me = sender_identity(c).id
    if me not in u.parties:
        raise TxFailed(Code.UNAUTHORIZED, "only a party can give notice")
    if u.status == UnionStatus.NOTICE:
        raise TxFailed(Code.WRONG_STATUS, "notice has already been given")
    return u, me


def give_notice(c: Ctx, body: UnionRef) -> None:
    u, me = check_notice(c, body)
    due = c.height + u.notice_period
    schedule(c.kv, due, QKind.UNION, keys.u64(u.id))
    u = replace(u, status=UnionStatus.NOTICE, notice_due=due)
    _log(c.kv, u, UnionEvent(c.height, UnionAction.NOTICE_GIVEN, (me,), None, c.tx_hash))
    c.emit("union.notice", union=u.id, due=due)


def notice_elapsed(c: Ctx, due: int, item: bytes) -> None:
    """Queue worker: a notice period ended."""
    u = need(c.kv, keys.union(keys.read_u64(item)), Union)
    _dissolve(c, u, UnionAction.DISSOLVED_BY_NOTICE, (), None)


def dissolve_by_ruling(c: Ctx, union_id: int, proposal_id: int) -> None:
    _dissolve(c, _open(c, union_id), UnionAction.DISSOLVED_BY_GOVERNANCE, (), proposal_id)
