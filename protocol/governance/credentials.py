"""Credentials (education and others) issued by accredited issuers.

Issuers are identities accredited by genesis or by the ISSUER track. An issuer that
loses accreditation keeps its record (accredited = False), and every credential it
issued then reports ISSUER_REVOKED; re-accreditation restores them. The issuer may
revoke its own credentials at any time, accredited or not.

Status precedence: REVOKED, then ISSUER_REVOKED, then EXPIRED (past the expiry
height, which is the last valid height), then VALID.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Annotated

from protocol.governance import keys
from protocol.governance.codes import Code, TxFailed
from protocol.governance.context import Ctx, load, need, save
from protocol.governance.counters import Counter, next_id
from protocol.governance.identity import Identity, get_identity, sender_identity
from protocol.kv import KVReader, Overlay
from protocol.wire import BOOL, HASH, U64, Optional, Str, Struct

MAX_SCHEMA = 64


class CredentialStatus(enum.IntEnum):
    VALID = 1
    EXPIRED = 2
    REVOKED = 3
    ISSUER_REVOKED = 4


@dataclass(frozen=True, slots=True)
class Issuer(Struct):
    name: Annotated[str, Str(128)]
    accredited: Annotated[bool, BOOL]
    changed_height: Annotated[int, U64]
    proposal_id: Annotated[int | None, Optional(U64)]  # the decision behind the last change


@dataclass(frozen=True, slots=True)
class Credential(Struct):
    id: Annotated[int, U64]
    issuer: Annotated[bytes, HASH]
    subject: Annotated[bytes, HASH]
    schema: Annotated[str, Str(MAX_SCHEMA)]
    claims_hash: Annotated[bytes, HASH]
    issued_height: Annotated[int, U64]
    expires_at: Annotated[int | None, Optional(U64)]
    revoked_height: Annotated[int | None, Optional(U64)]
    revoke_reason: Annotated[str, Str(256)]


@dataclass(frozen=True, slots=True)
class IssueCredential(Struct):
    subject: Annotated[bytes, HASH]
    schema: Annotated[str, Str(MAX_SCHEMA)]
    claims_hash: Annotated[bytes, HASH]
    expires_at: Annotated[int | None, Optional(U64)]


@dataclass(frozen=True, slots=True)
class RevokeCredential(Struct):
    credential_id: Annotated[int, U64]
    reason: Annotated[str, Str(256)]


def get_issuer(kv: KVReader, identity_id: bytes) -> Issuer | None:
    return load(kv, keys.issuer(identity_id), Issuer)


def set_issuer(kv: Overlay, identity_id: bytes, issuer: Issuer) -> None:
    save(kv, keys.issuer(identity_id), issuer)


def get_credential(kv: KVReader, credential_id: int) -> Credential | None:
    return load(kv, keys.credential(credential_id), Credential)


def status(kv: KVReader, cred: Credential, height: int) -> CredentialStatus:
    if cred.revoked_height is not None:
        return CredentialStatus.REVOKED
    issuer = get_issuer(kv, cred.issuer)
    if issuer is None or not issuer.accredited:
        return CredentialStatus.ISSUER_REVOKED
    if cred.expires_at is not None and height > cred.expires_at:
        return CredentialStatus.EXPIRED
    return CredentialStatus.VALID


def of_subject(kv: KVReader, subject: bytes) -> list[Credential]:
    prefix = keys.CREDENTIAL_SUBJECT + subject
    return [need(kv, keys.credential(keys.read_u64(k[len(prefix) :])), Credential) for k, _ in kv.scan(prefix)]


def of_issuer(kv: KVReader, issuer_id: bytes) -> list[Credential]:
    prefix = keys.CREDENTIAL_ISSUER + issuer_id
    return [need(kv, keys.credential(keys.read_u64(k[len(prefix) :])), Credential) for k, _ in kv.scan(prefix)]


# Each tx's `check_*` holds every check its handler makes before it first writes (see
# identity.py); mempool admission runs it too (app.check_tx).


def check_issue(c: Ctx, body: IssueCredential) -> Identity:
    """The issuer's identity."""
    me = sender_identity(c)
    issuer = get_issuer(c.kv, me.id)
    if issuer is None or not issuer.accredited:
        raise TxFailed(Code.NOT_ISSUER, "the sender is not an accredited issuer")
    if get_identity(c.kv, body.subject) is None:
        raise TxFailed(Code.NOT_FOUND, "the subject is not an identity")
    if not body.schema:
        raise TxFailed(Code.INVALID, "a credential needs a schema name")
    if body.expires_at is not None and body.expires_at < c.height:
        raise TxFailed(Code.INVALID, f"expiry height {body.expires_at} is already past")
    return me


def issue(c: Ctx, body: IssueCredential) -> None:
    me = check_issue(c, body)
    cid = next_id(c.kv, Counter.CREDENTIAL)
    cred = Credential(cid, me.id, body.subject, body.schema, body.claims_hash, c.height, body.expires_at, None, "")
    save(c.kv, keys.credential(cid), cred)
    c.kv.put(keys.credential_subject(body.subject, cid), b"")
    c.kv.put(keys.credential_issuer(me.id, cid), b"")
    c.emit("credential.issued", credential=cid, issuer=me.id.hex(), subject=body.subject.hex())


def check_revoke(c: Ctx, body: RevokeCredential) -> Credential:
    cred = get_credential(c.kv, body.credential_id)
    if cred is None:
        raise TxFailed(Code.NOT_FOUND, f"no credential {body.credential_id}")
    if sender_identity(c).id != cred.issuer:
        raise TxFailed(Code.UNAUTHORIZED, "only the issuer can revoke a credential")
    if cred.revoked_height is not None:
        raise TxFailed(Code.WRONG_STATUS, "the credential is already revoked")
    return cred


def revoke(c: Ctx, body: RevokeCredential) -> None:
    cred = check_revoke(c, body)
    save(c.kv, keys.credential(cred.id), replace(cred, revoked_height=c.height, revoke_reason=body.reason))
    c.emit("credential.revoked", credential=cred.id)
