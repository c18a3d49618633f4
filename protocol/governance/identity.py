"""Identities (KERI-style pre-rotation), residency and registrars.

An identity is created by its inception key and commits to the digest of its next
key. Its id is derived from both, so it never changes. A rotation is signed by the
*next* key (revealed by the rotation) and commits to a new next key: whoever steals
the current key cannot rotate, and whoever loses the current key can still rotate.
The rotated-out key's account is retired: it can no longer send, and its tokens
follow the identity's new key.

Residency: NONE (registered only) → ACTIVE, granted by a registrar with an expiry
height (the last height at which it is active; genesis residents may have none).
ACTIVE ⇄ SUSPENDED is reversible; REVOKED is final; EXPIRED may be granted again.
Registrars act only while they are active residents themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Annotated

from protocol import codec, crypto
from protocol.governance import accounts, keys
from protocol.governance.codes import Code, TxFailed
from protocol.governance.context import Ctx, load, load_u64, need, save
from protocol.governance.queue import QKind, schedule, unschedule
from protocol.kv import KVReader, Overlay
from protocol.wire import HASH, PUBKEY, U64, Enum, Optional, Str, Struct

ID_DOMAIN = "ekklesia/identity/v1"
NEXT_KEY_DOMAIN = "ekklesia/next-key/v1"


class Residency(enum.IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3
    EXPIRED = 4


def key_digest(pubkey: bytes) -> bytes:
    """The commitment to a next key that an identity record holds."""
    return crypto.sha256(codec.pack([NEXT_KEY_DOMAIN, pubkey]))


def derive_id(inception_key: bytes, next_key_digest: bytes) -> bytes:
    return crypto.sha256(codec.pack([ID_DOMAIN, inception_key, next_key_digest]))


@dataclass(frozen=True, slots=True)
class Identity(Struct):
    id: Annotated[bytes, HASH]
    key: Annotated[bytes, PUBKEY]  # current signing key
    next_key_digest: Annotated[bytes, HASH]
    key_seq: Annotated[int, U64]  # rotations so far
    created_height: Annotated[int, U64]
    residency: Annotated[Residency, Enum(Residency)]
    expires_at: Annotated[int | None, Optional(U64)]  # last active height; None = no expiry
    active_since: Annotated[int, U64]  # start of the current unbroken ACTIVE period
    residency_changed: Annotated[int, U64]  # height of the last residency change
    granted_by: Annotated[bytes | None, Optional(HASH)]  # registrar of the last grant


@dataclass(frozen=True, slots=True)
class Registrar(Struct):
    appointed_height: Annotated[int, U64]
    proposal_id: Annotated[int | None, Optional(U64)]  # None: named in genesis


# ---------------------------------------------------------------- tx bodies


@dataclass(frozen=True, slots=True)
class RegisterIdentity(Struct):
    next_key_digest: Annotated[bytes, HASH]


@dataclass(frozen=True, slots=True)
class RotateKey(Struct):
    identity_id: Annotated[bytes, HASH]
    next_key_digest: Annotated[bytes, HASH]


@dataclass(frozen=True, slots=True)
class GrantResidency(Struct):
    identity_id: Annotated[bytes, HASH]
    expires_at: Annotated[int, U64]


@dataclass(frozen=True, slots=True)
class ResidencyAction(Struct):
    """Body of residency.suspend / residency.reinstate / residency.revoke."""

    identity_id: Annotated[bytes, HASH]
    reason: Annotated[str, Str(256)]


# ---------------------------------------------------------------- reads


def get_identity(kv: KVReader, identity_id: bytes) -> Identity | None:
    return load(kv, keys.identity(identity_id), Identity)


def identity_of_key(kv: KVReader, pubkey: bytes) -> Identity | None:
    iid = kv.get(keys.key(pubkey))
    return None if iid is None else need(kv, keys.identity(iid), Identity)


def sender_identity(c: Ctx) -> Identity:
    ident = identity_of_key(c.kv, c.sender)
    if ident is None:
        raise TxFailed(Code.NOT_IDENTITY, "the sender's key is not the current key of any identity")
    return ident


def require_resident(ident: Identity, who: str = "the sender") -> None:
    if ident.residency != Residency.ACTIVE:
        raise TxFailed(Code.NOT_RESIDENT, f"{who} is not an active resident ({ident.residency.name.lower()})")


def is_registrar(kv: KVReader, identity_id: bytes) -> bool:
    return kv.get(keys.registrar(identity_id)) is not None


def require_registrar(c: Ctx) -> Identity:
    ident = sender_identity(c)
    if not is_registrar(c.kv, ident.id):
        raise TxFailed(Code.NOT_REGISTRAR, "the sender is not a registrar")
    if ident.residency != Residency.ACTIVE:
        raise TxFailed(Code.NOT_REGISTRAR, "a registrar must be an active resident to act")
    return ident


def residents(kv: KVReader) -> int:
    return load_u64(kv, keys.META_RESIDENTS)


def _count(kv: Overlay, delta: int) -> None:
    kv.put(keys.META_RESIDENTS, keys.u64(residents(kv) + delta))


# ---------------------------------------------------------------- writes


def bind_new_identity(kv: Overlay, pubkey: bytes, next_key_digest: bytes, height: int) -> Identity:
    ident = Identity(
        id=derive_id(pubkey, next_key_digest),
        key=pubkey,
        next_key_digest=next_key_digest,
        key_seq=0,
        created_height=height,
        residency=Residency.NONE,
        expires_at=None,
        active_since=0,
        residency_changed=height,
        granted_by=None,
    )
    save(kv, keys.identity(ident.id), ident)
    kv.put(keys.key(pubkey), ident.id)
    kv.put(keys.key_used(pubkey), ident.id)
    return ident


def _check_grantable(ident: Identity) -> None:
    if ident.residency in (Residency.SUSPENDED, Residency.REVOKED):
        raise TxFailed(Code.WRONG_STATUS, f"cannot grant residency to a {ident.residency.name.lower()} identity")
    if ident.residency == Residency.ACTIVE and ident.expires_at is None:
        raise TxFailed(Code.WRONG_STATUS, "this residency has no expiry to renew")


def grant(kv: Overlay, ident: Identity, expires_at: int | None, height: int, by: bytes | None) -> Identity:
    _check_grantable(ident)
    if ident.residency == Residency.ACTIVE:
        assert ident.expires_at is not None  # _check_grantable
        unschedule(kv, ident.expires_at, QKind.RESIDENCY, ident.id)
        since = ident.active_since
    else:
        _count(kv, +1)
        since = height
    if expires_at is not None:
        schedule(kv, expires_at, QKind.RESIDENCY, ident.id)
    new = replace(
        ident,
        residency=Residency.ACTIVE,
        expires_at=expires_at,
        active_since=since,
        residency_changed=height,
        granted_by=by,
    )
    save(kv, keys.identity(ident.id), new)
    return new


_CHANGES_FROM = {
    Residency.SUSPENDED: (Residency.ACTIVE,),
    Residency.ACTIVE: (Residency.SUSPENDED,),
    Residency.REVOKED: (Residency.ACTIVE, Residency.SUSPENDED, Residency.EXPIRED),
}


def _check_change(ident: Identity, to: Residency) -> None:
    if ident.residency not in _CHANGES_FROM[to]:
        raise TxFailed(
            Code.WRONG_STATUS, f"a {ident.residency.name.lower()} residency cannot become {to.name.lower()}"
        )


def change_residency(kv: Overlay, ident: Identity, to: Residency, height: int) -> Identity:
    """Suspend, reinstate or revoke (by a registrar or a governance ruling)."""
    _check_change(ident, to)
    if ident.residency == Residency.ACTIVE:
        _count(kv, -1)
    if to == Residency.ACTIVE:
        _count(kv, +1)
    if to == Residency.REVOKED and ident.residency != Residency.EXPIRED and ident.expires_at is not None:
        unschedule(kv, ident.expires_at, QKind.RESIDENCY, ident.id)
    since = height if to == Residency.ACTIVE else ident.active_since
    new = replace(ident, residency=to, active_since=since, residency_changed=height)
    save(kv, keys.identity(ident.id), new)
    return new


def expire(c: Ctx, due: int, identity_id: bytes) -> None:
    """Queue worker: the residency's last active height has ended."""
    ident = need(c.kv, keys.identity(identity_id), Identity)
    if ident.residency == Residency.ACTIVE:
        _count(c.kv, -1)
    save(c.kv, keys.identity(ident.id), replace(ident, residency=Residency.EXPIRED, residency_changed=c.height))
    c.emit("residency.expired", identity=identity_id.hex())


# ---------------------------------------------------------------- txs


# Each tx's `check_*` holds every check its handler makes before it first writes; the
# handler runs it first, and mempool admission runs it too (app.check_tx).


def check_register(c: Ctx, body: RegisterIdentity) -> None:
    if c.kv.get(keys.key_used(c.sender)) is not None:
        raise TxFailed(Code.KEY_REUSED, "this key is, or was, bound to an identity")
    if body.next_key_digest == key_digest(c.sender):
        raise TxFailed(Code.INVALID, "the next key must differ from the current key")


def register(c: Ctx, body: RegisterIdentity) -> None:
    check_register(c, body)
    ident = bind_new_identity(c.kv, c.sender, body.next_key_digest, c.height)
    c.emit("identity.registered", identity=ident.id.hex())


def check_rotate(c: Ctx, body: RotateKey) -> Identity:
    ident = get_identity(c.kv, body.identity_id)
    if ident is None:
        raise TxFailed(Code.NOT_FOUND, "no such identity")
    if key_digest(c.sender) != ident.next_key_digest:
        raise TxFailed(Code.NEXT_KEY_MISMATCH, "the sender's key is not the identity's committed next key")
    if c.kv.get(keys.key_used(c.sender)) is not None:
        raise TxFailed(Code.KEY_REUSED, "this key is, or was, bound to an identity")
    if body.next_key_digest == key_digest(c.sender):
        raise TxFailed(Code.INVALID, "the new next key must differ from the key being revealed")
    return ident


def rotate(c: Ctx, body: RotateKey) -> None:
    ident = check_rotate(c, body)
    old_key, new_key = ident.key, c.sender
    c.kv.delete(keys.key(old_key))
    c.kv.put(keys.key(new_key), ident.id)
    c.kv.put(keys.key_used(new_key), ident.id)
    old_addr, new_addr = crypto.address(old_key), crypto.address(new_key)
    old = accounts.get_account(c.kv, old_addr)
    accounts.put_account(c.kv, old_addr, accounts.Account(old.balance, old.locked, old.nonce, new_addr))
    if old.spendable:
        accounts.debit(c.kv, old_addr, old.spendable)
        accounts.credit(c.kv, new_addr, old.spendable)
    save(
        c.kv,
        keys.identity(ident.id),
        replace(ident, key=new_key, next_key_digest=body.next_key_digest, key_seq=ident.key_seq + 1),
    )
    c.emit("identity.rotated", identity=ident.id.hex(), key_seq=ident.key_seq + 1, moved=old.spendable)


def _target(c: Ctx, identity_id: bytes) -> Identity:
    ident = get_identity(c.kv, identity_id)
    if ident is None:
        raise TxFailed(Code.NOT_FOUND, "no such identity")
    return ident


def check_grant(c: Ctx, body: GrantResidency) -> tuple[Identity, Identity]:
    """(registrar, target)."""
    registrar = require_registrar(c)
    if body.expires_at <= c.height:
        raise TxFailed(Code.INVALID, f"expiry height {body.expires_at} is not after the current height {c.height}")
    target = _target(c, body.identity_id)
    _check_grantable(target)
    return registrar, target


def grant_residency(c: Ctx, body: GrantResidency) -> None:
    registrar, target = check_grant(c, body)
    grant(c.kv, target, body.expires_at, c.height, registrar.id)
    c.emit("residency.granted", identity=body.identity_id.hex(), expires_at=body.expires_at)


def _check_by_registrar(c: Ctx, body: ResidencyAction, to: Residency) -> Identity:
    require_registrar(c)
    target = _target(c, body.identity_id)
    _check_change(target, to)
    return target


def check_suspend(c: Ctx, body: ResidencyAction) -> None:
    _check_by_registrar(c, body, Residency.SUSPENDED)


def check_reinstate(c: Ctx, body: ResidencyAction) -> None:
    _check_by_registrar(c, body, Residency.ACTIVE)


def check_revoke(c: Ctx, body: ResidencyAction) -> None:
    _check_by_registrar(c, body, Residency.REVOKED)


def _by_registrar(c: Ctx, body: ResidencyAction, to: Residency, event: str) -> None:
    target = _check_by_registrar(c, body, to)
    change_residency(c.kv, target, to, c.height)
    c.emit(event, identity=body.identity_id.hex(), reason=body.reason)


def suspend_residency(c: Ctx, body: ResidencyAction) -> None:
    _by_registrar(c, body, Residency.SUSPENDED, "residency.suspended")


def reinstate_residency(c: Ctx, body: ResidencyAction) -> None:
    _by_registrar(c, body, Residency.ACTIVE, "residency.reinstated")


def revoke_residency(c: Ctx, body: ResidencyAction) -> None:
    _by_registrar(c, body, Residency.REVOKED, "residency.revoked")
