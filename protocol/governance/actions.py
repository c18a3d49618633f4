"""What a proposal does if it passes: one action, its track, its checks, its execution.

The track is a function of the action, never the proposer's choice: a parameter
change that touches the constitutional track's parameters runs on the
constitutional track, so the strictest rules cannot be loosened by a weaker vote.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Annotated

from protocol.errors import DecodeError
from protocol.governance import accounts, constitution, credentials, identity, keys, unions
from protocol.governance.codes import Code, TxFailed
from protocol.governance.context import Ctx, save
from protocol.governance.params import Params, Ratio, Track, TrackParams
from protocol.governance.validator_set import schedule_change
from protocol.kv import KVReader
from protocol.limits import MAX_VALIDATORS
from protocol.validators import MAX_POWER
from protocol.wire import HASH, PUBKEY, U32, U64, Enum, Int, Nested, Optional, Str, Struct, struct_list

MAX_LAW_TEXT = 32 * 1024


class ActionType(enum.IntEnum):
    AMEND_CONSTITUTION = 1
    ENACT_LAW = 2
    CHANGE_PARAMS = 3
    TREASURY_SPEND = 4
    APPOINT_REGISTRAR = 5
    REMOVE_REGISTRAR = 6
    ACCREDIT_ISSUER = 7
    REVOKE_ISSUER = 8
    CHANGE_VALIDATORS = 9
    RESIDENCY_RULING = 10
    DISSOLVE_UNION = 11


@dataclass(frozen=True, slots=True)
class AmendConstitution(Struct):
    base_version: Annotated[int, U32]  # fails at execution if the constitution moved on
    changes: Annotated[
        tuple[constitution.ArticleChange, ...], struct_list(constitution.ArticleChange, constitution.MAX_CHANGES)
    ]


@dataclass(frozen=True, slots=True)
class EnactLaw(Struct):
    text: Annotated[str, Str(MAX_LAW_TEXT)]


@dataclass(frozen=True, slots=True)
class ChangeParams(Struct):
    """Fields left None keep their value; `tracks` replaces the named tracks."""

    fee: Annotated[int | None, Optional(U64)]
    cancel_burn: Annotated[Ratio | None, Optional(Nested(Ratio))]
    min_notice_period: Annotated[int | None, Optional(U64)]
    max_evidence_age: Annotated[int | None, Optional(U64)]
    evidence_penalty: Annotated[Ratio | None, Optional(Nested(Ratio))]
    tracks: Annotated[tuple[TrackParams, ...], struct_list(TrackParams, len(Track))]


@dataclass(frozen=True, slots=True)
class TreasurySpend(Struct):
    recipient: Annotated[bytes, accounts.ADDRESS]
    amount: Annotated[int, U64]
    purpose: Annotated[str, Str(256)]


@dataclass(frozen=True, slots=True)
class IdentityRef(Struct):
    """Action of APPOINT_REGISTRAR, REMOVE_REGISTRAR and REVOKE_ISSUER."""

    identity_id: Annotated[bytes, HASH]


@dataclass(frozen=True, slots=True)
class AccreditIssuer(Struct):
    identity_id: Annotated[bytes, HASH]
    name: Annotated[str, Str(128)]


@dataclass(frozen=True, slots=True)
class ValidatorUpdate(Struct):
    pubkey: Annotated[bytes, PUBKEY]
    power: Annotated[int, Int(0, MAX_POWER)]  # 0 removes


@dataclass(frozen=True, slots=True)
class ChangeValidators(Struct):
    updates: Annotated[tuple[ValidatorUpdate, ...], struct_list(ValidatorUpdate, MAX_VALIDATORS)]


@dataclass(frozen=True, slots=True)
class ResidencyRuling(Struct):
    identity_id: Annotated[bytes, HASH]
    to: Annotated[identity.Residency, Enum(identity.Residency)]  # SUSPENDED, ACTIVE (reinstate) or REVOKED
    reason: Annotated[str, Str(256)]


@dataclass(frozen=True, slots=True)
class DissolveUnion(Struct):
    union_id: Annotated[int, U64]
    reason: Annotated[str, Str(256)]


ACTION_STRUCTS: dict[ActionType, type[Struct]] = {
    ActionType.AMEND_CONSTITUTION: AmendConstitution,
    ActionType.ENACT_LAW: EnactLaw,
    ActionType.CHANGE_PARAMS: ChangeParams,
    ActionType.TREASURY_SPEND: TreasurySpend,
    ActionType.APPOINT_REGISTRAR: IdentityRef,
    ActionType.REMOVE_REGISTRAR: IdentityRef,
    ActionType.ACCREDIT_ISSUER: AccreditIssuer,
    ActionType.REVOKE_ISSUER: IdentityRef,
    ActionType.CHANGE_VALIDATORS: ChangeValidators,
    ActionType.RESIDENCY_RULING: ResidencyRuling,
    ActionType.DISSOLVE_UNION: DissolveUnion,
}

_TRACKS = {
    ActionType.AMEND_CONSTITUTION: Track.CONSTITUTIONAL,
    ActionType.ENACT_LAW: Track.LAW,
    ActionType.CHANGE_PARAMS: Track.PARAMETER,
    ActionType.TREASURY_SPEND: Track.TREASURY,
    ActionType.APPOINT_REGISTRAR: Track.REGISTRAR,
    ActionType.REMOVE_REGISTRAR: Track.REGISTRAR,
    ActionType.ACCREDIT_ISSUER: Track.ISSUER,
    ActionType.REVOKE_ISSUER: Track.ISSUER,
    ActionType.CHANGE_VALIDATORS: Track.VALIDATOR,
    ActionType.RESIDENCY_RULING: Track.RULING,
    ActionType.DISSOLVE_UNION: Track.RULING,
}


def decode(action_type: ActionType, raw: bytes) -> Struct:
    """Raises DecodeError."""
    return ACTION_STRUCTS[action_type].decode(raw)


def track_of(action_type: ActionType, action: Struct) -> Track:
    if isinstance(action, ChangeParams) and any(t.track == Track.CONSTITUTIONAL for t in action.tracks):
        return Track.CONSTITUTIONAL
    return _TRACKS[action_type]


def changed_params(params: Params, ch: ChangeParams) -> Params:
    tracks = {t.track: t for t in params.tracks}
    tracks.update({t.track: t for t in ch.tracks})
    return Params(
        fee=params.fee if ch.fee is None else ch.fee,
        cancel_burn=params.cancel_burn if ch.cancel_burn is None else ch.cancel_burn,
        min_notice_period=params.min_notice_period if ch.min_notice_period is None else ch.min_notice_period,
        max_evidence_age=params.max_evidence_age if ch.max_evidence_age is None else ch.max_evidence_age,
        evidence_penalty=params.evidence_penalty if ch.evidence_penalty is None else ch.evidence_penalty,
        tracks=tuple(tracks[t] for t in Track),
    )


def problem(kv: KVReader, params: Params, action: Struct) -> str | None:
    """Why the action could never execute, judged at submission (None: it may)."""
    if isinstance(action, AmendConstitution):
        return constitution.check_changes(action.changes)
    if isinstance(action, EnactLaw):
        return None if action.text else "a law needs text"
    if isinstance(action, ChangeParams):
        numbers = [t.track for t in action.tracks]
        if numbers != sorted(set(numbers)):
            return "track updates must be sorted by track with no repeats"
        try:
            new = changed_params(params, action)
            Params.decode(new.encode())  # enforces every field's wire bounds
        except (ValueError, DecodeError) as exc:
            return f"the changed parameters are invalid: {exc}"
        return new.problem()
    if isinstance(action, TreasurySpend):
        return None if action.amount > 0 else "a treasury spend must be positive"
    if isinstance(action, IdentityRef | AccreditIssuer | ResidencyRuling):
        if identity.get_identity(kv, action.identity_id) is None:
            return "no such identity"
        if isinstance(action, ResidencyRuling) and action.to not in (
            identity.Residency.SUSPENDED,
            identity.Residency.ACTIVE,
            identity.Residency.REVOKED,
        ):
            return "a ruling can suspend, reinstate or revoke a residency"
        return None
    if isinstance(action, ChangeValidators):
        pks = [u.pubkey for u in action.updates]
        if not pks:
            return "no validator updates"
        return None if pks == sorted(set(pks)) else "validator updates must be sorted by key with no repeats"
    if isinstance(action, DissolveUnion):
        return None if unions.get_union(kv, action.union_id) is not None else "no such union"
    return None


def execute(c: Ctx, proposal_id: int, action_type: ActionType, action: Struct) -> None:
    """Raises TxFailed when the action cannot be carried out (EXECUTION_FAILED)."""
    kv = c.kv
    if isinstance(action, AmendConstitution):
        rec = constitution.amend(kv, action.base_version, action.changes, c.height, proposal_id)
        c.emit("constitution.amended", version=rec.version, hash=rec.hash.hex())
    elif isinstance(action, EnactLaw):
        c.emit("law.enacted", proposal=proposal_id)
    elif isinstance(action, ChangeParams):
        new = changed_params(c.params, action)
        if new.problem() is not None:
            raise TxFailed(Code.INVALID, f"the changed parameters are invalid: {new.problem()}")
        save(kv, keys.META_PARAMS, new)
        c.params = new
        c.emit("params.changed", proposal=proposal_id)
    elif isinstance(action, TreasurySpend):
        accounts.from_treasury(kv, action.amount)
        to = accounts.credit(kv, action.recipient, action.amount)
        c.emit("treasury.spent", to=to.hex(), amount=action.amount)
    elif isinstance(action, IdentityRef) and action_type == ActionType.APPOINT_REGISTRAR:
        if identity.is_registrar(kv, action.identity_id):
            raise TxFailed(Code.WRONG_STATUS, "already a registrar")
        save(kv, keys.registrar(action.identity_id), identity.Registrar(c.height, proposal_id))
        c.emit("registrar.appointed", identity=action.identity_id.hex())
    elif isinstance(action, IdentityRef) and action_type == ActionType.REMOVE_REGISTRAR:
        if not identity.is_registrar(kv, action.identity_id):
            raise TxFailed(Code.NOT_FOUND, "not a registrar")
        kv.delete(keys.registrar(action.identity_id))
        c.emit("registrar.removed", identity=action.identity_id.hex())
    elif isinstance(action, AccreditIssuer):
        credentials.set_issuer(kv, action.identity_id, credentials.Issuer(action.name, True, c.height, proposal_id))
        c.emit("issuer.accredited", identity=action.identity_id.hex())
    elif isinstance(action, IdentityRef) and action_type == ActionType.REVOKE_ISSUER:
        cur = credentials.get_issuer(kv, action.identity_id)
        if cur is None or not cur.accredited:
            raise TxFailed(Code.NOT_FOUND, "not an accredited issuer")
        credentials.set_issuer(
            kv, action.identity_id, replace(cur, accredited=False, changed_height=c.height, proposal_id=proposal_id)
        )
        c.emit("issuer.revoked", identity=action.identity_id.hex())
    elif isinstance(action, ChangeValidators):
        new_set = schedule_change(kv, c.height, {u.pubkey: u.power for u in action.updates})
        if new_set is None:
            raise TxFailed(Code.INVALID, "the change would leave no validator")
        c.emit("validators.changed", effective=c.height + 2, size=len(new_set))
    elif isinstance(action, ResidencyRuling):
        ident = identity.get_identity(kv, action.identity_id)
        if ident is None:
            raise TxFailed(Code.NOT_FOUND, "no such identity")
        identity.change_residency(kv, ident, action.to, c.height)
        c.emit("residency.ruling", identity=action.identity_id.hex(), to=action.to.name.lower())
    elif isinstance(action, DissolveUnion):
        unions.dissolve_by_ruling(c, action.union_id, proposal_id)
    else:
        raise TxFailed(Code.INVALID, f"no executor for {type(action).__name__}")

