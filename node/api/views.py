"""JSON shapes of the API's responses, built from protocol types and query views.

Conventions (docs/api.md): bytes are lowercase hex, integers are JSON integers
(never floats, never strings), enums are their lowercase names ("voting"), ratios
are "num/den" strings as in genesis.json, absent optional values are null. Every
key of a shape is always present.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from protocol import crypto, merkle
from protocol.errors import DecodeError
from protocol.governance import actions
from protocol.governance import notary as _notary
from protocol.governance.accounts import Account, Supply
from protocol.governance.codes import Code
from protocol.governance.constitution import Article, ConstitutionVersion
from protocol.governance.credentials import Issuer
from protocol.governance.genesis import ChainInfo
from protocol.governance.identity import Identity, Registrar
from protocol.governance.kinds import KINDS
from protocol.governance.notary import NotaryRecord
from protocol.governance.params import Params, Ratio, TrackParams
from protocol.governance.proposals import VoteRecord
from protocol.governance.queries import ConstitutionView, CredentialView, ProposalView
from protocol.governance.unions import Union, UnionEvent
from protocol.types import Block, Commit, DuplicateVoteEvidence, Tx
from protocol.wire import Struct

from .contract import NodeEvent, TxStatus

JSON = dict[str, Any]


def to_json(value: Any) -> Any:
    """A generic rendering: structs as objects of their wire fields (in order)."""
    if isinstance(value, Ratio):
        return str(value)
    if isinstance(value, Struct):
        return {name: to_json(getattr(value, name)) for name, _ in value.wire_fields()}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, float):
        return value  # only ever from the runtime's status()
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def iso_time(time_ms: int) -> str | None:
    """RFC 3339 UTC with milliseconds, or None for a time datetime cannot hold."""
    try:
        dt = datetime.fromtimestamp(time_ms // 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{time_ms % 1000:03d}Z"


def code_name(code: int | None) -> str | None:
    if code is None:
        return None
    try:
        return Code(code).name.lower()
    except ValueError:
        return None


# ---------------------------------------------------------------- transactions


def tx_status_json(st: TxStatus) -> JSON:
    return {
        "hash": st.hash.hex(),
        "status": st.status,
        "reason": st.reason,
        "height": st.height,
        "index": st.index,
        "code": int(st.code) if st.code is not None else None,
        "code_name": code_name(st.code),
        "info": st.info,
    }


def decoded_body(tx: Tx) -> Any:
    kind = KINDS.get(tx.kind)
    if kind is None:
        return None
    try:
        return to_json(kind.body.decode(tx.body))
    except DecodeError:
        return None


def tx_json(tx: Tx) -> JSON:
    return {
        "hash": tx.hash.hex(),
        "chain_id": tx.chain_id,
        "sender": tx.sender.hex(),
        "sender_address": crypto.address(tx.sender).hex(),
        "nonce": tx.nonce,
        "kind": tx.kind,
        "body": tx.body.hex(),
        "body_decoded": decoded_body(tx),
        "cosignatures": [{"signer": c.signer.hex(), "signature": c.signature.hex()} for c in tx.cosignatures],
        "signature": tx.signature.hex(),
    }


# ---------------------------------------------------------------- blocks


def commit_json(commit: Commit) -> JSON:
    return {
        "height": commit.height,
        "round": commit.round,
        "block_hash": commit.block_hash.hex(),
        "signatures": [
            {
                "validator": s.validator.hex(),
                "address": crypto.address(s.validator).hex(),
                "timestamp_ms": s.timestamp_ms,
                "signature": s.signature.hex(),
            }
            for s in commit.signatures
        ],
    }


def evidence_json(ev: DuplicateVoteEvidence) -> JSON:
    return {
        "validator": ev.validator.hex(),
        "height": ev.height,
        "round": ev.vote_a.round,
        "type": ev.vote_a.type.name.lower(),
        "block_hash_a": ev.vote_a.block_hash.hex() if ev.vote_a.block_hash else None,
        "block_hash_b": ev.vote_b.block_hash.hex() if ev.vote_b.block_hash else None,
    }


def block_json(block: Block, commit: Commit) -> JSON:
    h = block.header
    return {
        "height": h.height,
        "hash": block.hash.hex(),
        "chain_id": h.chain_id,
        "time_ms": h.time_ms,
        "time": iso_time(h.time_ms),
        "proposer": h.proposer.hex(),
        "proposer_address": crypto.address(h.proposer).hex(),
        "prev_hash": h.prev_hash.hex(),
        "app_hash": h.app_hash.hex(),
        "tx_root": h.tx_root.hex(),
        "validators_hash": h.validators_hash.hex(),
        "evidence_hash": h.evidence_hash.hex(),
        "last_commit_hash": h.last_commit_hash.hex(),
        "num_txs": len(block.txs),
        "txs": [tx.hash.hex() for tx in block.txs],
        "evidence": [evidence_json(e) for e in block.evidence],
        "signers": [s.validator.hex() for s in commit.signatures],
        "commit": commit_json(commit),
        "last_commit": commit_json(block.last_commit) if block.last_commit is not None else None,
    }


# ---------------------------------------------------------------- state


def account_json(address: bytes, acct: Account, locks: list[tuple[int, int]]) -> JSON:
    return {
        "address": address.hex(),
        "balance": acct.balance,
        "locked": acct.locked,
        "spendable": acct.spendable,
        "nonce": acct.nonce,
        "retired_to": acct.retired_to.hex() if acct.retired_to is not None else None,
        "locks": [{"proposal_id": pid, "amount": amount} for pid, amount in locks],
    }


def supply_json(s: Supply) -> JSON:
    return to_json(s)  # type: ignore[no-any-return]


def chain_json(info: ChainInfo, height: int, time_ms: int, residents: int) -> JSON:
    return {
        "chain_id": info.chain_id,
        "genesis_time_ms": info.genesis_time_ms,
        "genesis_hash": info.genesis_hash.hex(),
        "height": height,
        "time_ms": time_ms,
        "residents": residents,
    }


def identity_json(ident: Identity, registrar: Registrar | None, issuer: Issuer | None) -> JSON:
    out: JSON = to_json(ident)
    out["address"] = crypto.address(ident.key).hex()
    out["registrar"] = to_json(registrar)
    out["issuer"] = to_json(issuer)
    return out


def registrar_json(identity_id: bytes, r: Registrar) -> JSON:
    return {"identity": identity_id.hex(), **to_json(r)}


def issuer_json(identity_id: bytes, i: Issuer) -> JSON:
    return {"identity": identity_id.hex(), **to_json(i)}


def proposal_json(view: ProposalView) -> JSON:
    p = view.proposal
    out: JSON = to_json(p)
    try:
        out["action_decoded"] = to_json(actions.decode(p.action_type, p.action))
    except DecodeError:
        out["action_decoded"] = None
    cast, eligible = view.participation
    counts = view.counts
    out["tally"] = {
        "yes": counts.yes,
        "no": counts.no,
        "abstain": counts.abstain,
        "veto": counts.veto,
        "cast": cast,
        "eligible": eligible,
        "outcome": view.outcome.name.lower() if view.outcome is not None else None,
        "final": view.outcome is not None and p.decided_height is not None,
    }
    return out


def vote_json(voter: bytes, v: VoteRecord) -> JSON:
    return {
        "voter": voter.hex(),
        "voter_kind": "identity" if len(voter) == 32 else "address",
        "choice": v.choice.name.lower(),
        "weight": v.weight,
        "height": v.height,
    }


def article_json(a: Article) -> JSON:
    return {"number": a.number, "text": a.text}


def constitution_json(c: ConstitutionView) -> JSON:
    return {"version": c.version, "hash": c.hash.hex(), "articles": [article_json(a) for a in c.articles]}


def constitution_version_json(v: ConstitutionVersion) -> JSON:
    return to_json(v)  # type: ignore[no-any-return]


def proof_json(proof: _notary.NotaryProof, tx_root: bytes) -> JSON:
    inc: merkle.InclusionProof = proof.inclusion
    return {
        "height": proof.height,
        "block_hash": proof.block_hash.hex(),
        "tx_hash": proof.tx_hash.hex(),
        "tx_root": tx_root.hex(),
        "inclusion": {"index": inc.index, "tree_size": inc.tree_size, "path": [p.hex() for p in inc.path]},
    }


def notary_record_json(rec: NotaryRecord, block: Block | None) -> JSON:
    out: JSON = to_json(rec)
    out["time"] = iso_time(rec.time_ms)
    proof: JSON | None = None
    if block is not None:
        try:
            proof = proof_json(_notary.prove(block, rec), block.header.tx_root)
        except ValueError:
            proof = None
    out["proof"] = proof
    return out


def union_json(u: Union, history: list[UnionEvent]) -> JSON:
    out: JSON = to_json(u)
    out["history"] = [to_json(e) for e in history]
    return out


def credential_json(view: CredentialView) -> JSON:
    out: JSON = to_json(view.credential)
    out["status"] = view.status.name.lower()
    return out


def track_params_json(t: TrackParams) -> JSON:
    out: JSON = to_json(t)
    del out["track"]
    return out


def params_json(p: Params) -> JSON:
    return {
        "fee": p.fee,
        "cancel_burn": str(p.cancel_burn),
        "min_notice_period": p.min_notice_period,
        "max_evidence_age": p.max_evidence_age,
        "evidence_penalty": str(p.evidence_penalty),
        "tracks": {t.track.name.lower(): track_params_json(t) for t in p.tracks},
    }


def validators_json(height: int, vals: list[tuple[bytes, int]]) -> JSON:
    return {
        "height": height,
        "total_power": sum(p for _, p in vals),
        "validators": [{"pubkey": pk.hex(), "address": crypto.address(pk).hex(), "power": p} for pk, p in vals],
    }


def plain_json(value: Any) -> Any:
    """A runtime-supplied value (status, event data): like `to_json`, except that an
    integer enum (a result code) stays its integer."""
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return to_json(value)


def event_json(ev: NodeEvent) -> Any:
    data = plain_json(ev.data)
    if ev.kind == "tx" and isinstance(data, dict) and "code" in data:
        data["code_name"] = code_name(data["code"])
    return data
