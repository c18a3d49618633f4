"""Offline checks of what a node's API returns: a notary record's proof, down to the
validators' signatures.

`verify_notary_record` takes the JSON of the API (docs/api.md) — the record with its
proof (`GET /v1/notary/{doc}`), the transaction (`GET /v1/txs/{hash}`), the block with
its commit (`GET /v1/blocks/{height}`) and the validator set of that height
(`GET /v1/validators?height=H`) — and recomputes everything it can from raw bytes:

1. record       the record is about the document asked for, and carries a proof;
2. transaction  the tx rebuilt from its fields has the record's hash, is a
                `notary.notarise` of this document with the record's metadata, was sent
                by the record's notariser, and its signatures verify;
3. inclusion    the RFC 6962 audit path leads from the tx hash to the header's tx root
                (`protocol.merkle.verify_inclusion`);
4. header       the header rebuilt from its fields hashes to the block hash the proof
                and the commit name, at the record's height and time;
5. validators   the validator set hashes to the header's `validators_hash`;
6. commit       the commit's precommits are valid signatures of members of that set,
                for this block, holding +2/3 of its power (`protocol.validators.verify_commit`).

What this does not establish: that the validator set is the chain's. The set comes
from the node (or from `trusted_validators`, e.g. a genesis file one trusts); a node
that forged a whole chain with its own keys would pass checks 1–6. Ask several
nodes, or anchor the set in a genesis you trust. The tx's execution result (that the
notarisation succeeded) is also the node's word: results are not in the header.
Checks that could not run are reported with ``ok=None`` and make the whole
verification fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol import crypto, merkle
from protocol.errors import DecodeError
from protocol.governance.notary import Notarise
from protocol.types import BlockHeader, Commit, CommitSig, CoSignature, Tx
from protocol.validators import ValidatorSet, verify_commit

JSON = dict[str, Any]


class ProofFormatError(ValueError):
    """The API's JSON lacks a field or holds a malformed value."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool | None  # None: could not be checked
    detail: str

    def to_json(self) -> JSON:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Verification:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Every check ran and passed."""
        return bool(self.checks) and all(c.ok is True for c in self.checks)

    def to_json(self) -> JSON:
        return {"verified": self.ok, "checks": [c.to_json() for c in self.checks]}


# ----------------------------------------------------------------------------- JSON → protocol types


def _hex(value: Any, size: int | None, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProofFormatError(f"{what}: expected hex, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise ProofFormatError(f"{what}: not hex") from None
    if size is not None and len(raw) != size:
        raise ProofFormatError(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofFormatError(f"{what}: expected a non-negative integer")
    return value


def _field(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ProofFormatError(f"{what}: missing {key!r}")
    return obj[key]


def header_from_json(block: JSON) -> BlockHeader:
    """The `BlockHeader` of a `GET /v1/blocks/{height}` answer (every field is there)."""
    f = lambda k: _field(block, k, "block")  # noqa: E731
    chain_id = f("chain_id")
    if not isinstance(chain_id, str):
        raise ProofFormatError("block: chain_id is not a string")
    try:
        return BlockHeader(
            chain_id=chain_id,
            height=_int(f("height"), "block height"),
            time_ms=_int(f("time_ms"), "block time_ms"),
            prev_hash=_hex(f("prev_hash"), 32, "prev_hash"),
            tx_root=_hex(f("tx_root"), 32, "tx_root"),
            app_hash=_hex(f("app_hash"), 32, "app_hash"),
            validators_hash=_hex(f("validators_hash"), 32, "validators_hash"),
            proposer=_hex(f("proposer"), 32, "proposer"),
            evidence_hash=_hex(f("evidence_hash"), 32, "evidence_hash"),
            last_commit_hash=_hex(f("last_commit_hash"), 32, "last_commit_hash"),
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ProofFormatError):
            raise
        raise ProofFormatError(f"block header: {exc}") from None


def commit_from_json(commit: JSON) -> Commit:
    sigs = _field(commit, "signatures", "commit")
    if not isinstance(sigs, list):
        raise ProofFormatError("commit: signatures is not a list")
    try:
        return Commit(
            height=_int(_field(commit, "height", "commit"), "commit height"),
            round=_int(_field(commit, "round", "commit"), "commit round"),
            block_hash=_hex(_field(commit, "block_hash", "commit"), 32, "commit block_hash"),
            signatures=tuple(
                CommitSig(
                    validator=_hex(_field(s, "validator", "commit signature"), 32, "commit validator"),
                    timestamp_ms=_int(_field(s, "timestamp_ms", "commit signature"), "commit timestamp_ms"),
                    signature=_hex(_field(s, "signature", "commit signature"), 64, "commit signature"),
                )
                for s in sigs
            ),
        )
    except ValueError as exc:
        if isinstance(exc, ProofFormatError):
            raise
        raise ProofFormatError(f"commit: {exc}") from None


def validator_set_from_json(vals: JSON) -> ValidatorSet:
    entries = _field(vals, "validators", "validator set")
    if not isinstance(entries, list):
        raise ProofFormatError("validator set: validators is not a list")
    try:
        return ValidatorSet.of(
            (_hex(_field(v, "pubkey", "validator"), 32, "validator pubkey"), _int(_field(v, "power", "validator"),
                                                                                   "validator power"))
            for v in entries
        )
    except ValueError as exc:
        if isinstance(exc, ProofFormatError):
            raise
        raise ProofFormatError(f"validator set: {exc}") from None


def tx_from_json(tx: JSON) -> Tx:
    """The `Tx` of the ``tx`` object of `GET /v1/txs/{hash}`."""
    f = lambda k: _field(tx, k, "tx")  # noqa: E731
    cosigs = f("cosignatures")
    if not isinstance(cosigs, list) or not isinstance(f("chain_id"), str) or not isinstance(f("kind"), str):
        raise ProofFormatError("tx: malformed chain_id, kind or cosignatures")
    try:
        return Tx(
            chain_id=f("chain_id"),
            sender=_hex(f("sender"), 32, "tx sender"),
            nonce=_int(f("nonce"), "tx nonce"),
            kind=f("kind"),
            body=_hex(f("body"), None, "tx body"),
            cosignatures=tuple(
                CoSignature(_hex(_field(c, "signer", "cosignature"), 32, "cosigner"),
                            _hex(_field(c, "signature", "cosignature"), 64, "cosignature"))
                for c in cosigs
            ),
            signature=_hex(f("signature"), 64, "tx signature"),
        )
    except ValueError as exc:
        if isinstance(exc, ProofFormatError):
            raise
        raise ProofFormatError(f"tx: {exc}") from None


# ----------------------------------------------------------------------------- verification


class _Checks:
    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(self, name: str, ok: bool | None, detail: str) -> bool:
        self.items.append(Check(name, ok, detail))
        return ok is True

    def result(self, names: tuple[str, ...]) -> Verification:
        """Every check in `names` that did not run is reported as not verified."""
        seen = {c.name for c in self.items}
        missing = [Check(n, None, "not checked (an earlier check failed)") for n in names if n not in seen]
        return Verification((*self.items, *missing))


CHECKS = ("record", "transaction", "inclusion", "header", "validators", "commit")


def verify_notary_record(
    doc_hash: bytes,
    record: JSON,
    *,
    tx: JSON | None,
    block: JSON | None,
    validators: JSON | None,
    trusted_validators: ValidatorSet | None = None,
    chain_id: str | None = None,
) -> Verification:
    """Check one record of `GET /v1/notary/{doc_hash}` (see the module docstring).

    `tx`: the ``tx`` object of `GET /v1/txs/{record.tx_hash}`; `block`: `GET
    /v1/blocks/{record.height}`; `validators`: `GET /v1/validators?height={height}`.
    `trusted_validators` replaces `validators` (a set the caller trusts, e.g. genesis's);
    `chain_id`, if given, must be the header's."""
    c = _Checks()
    try:
        _verify(c, doc_hash, record, tx, block, validators, trusted_validators, chain_id)
    except ProofFormatError as exc:
        c.add("format", False, f"malformed API answer: {exc}")
    return c.result(CHECKS)


def _verify(
    c: _Checks, doc_hash: bytes, record: JSON, tx_json: JSON | None, block: JSON | None,
    validators: JSON | None, trusted: ValidatorSet | None, chain_id: str | None,
) -> None:
    # 1. the record
    rec_doc = _hex(_field(record, "doc_hash", "record"), 32, "record doc_hash")
    tx_hash = _hex(_field(record, "tx_hash", "record"), 32, "record tx_hash")
    height = _int(_field(record, "height", "record"), "record height")
    tx_index = _int(_field(record, "tx_index", "record"), "record tx_index")
    proof = record.get("proof")
    if rec_doc != doc_hash:
        c.add("record", False, f"the record is about document {rec_doc.hex()}, not {doc_hash.hex()}")
        return
    if proof is None:
        c.add("record", None, "the node returned no proof (it no longer holds the block: pruned)")
        return
    c.add("record", True, f"record of block {height}, tx #{tx_index} ({tx_hash.hex()[:16]}…)")

    # 2. the transaction
    if tx_json is None:
        c.add("transaction", None, "the node did not return the transaction")
    else:
        _check_tx(c, tx_json, tx_hash, doc_hash, record)

    # 3. Merkle inclusion under the header's tx root
    if block is None:
        c.add("inclusion", None, f"the node returned no block at height {height}")
        return
    header = header_from_json(block)
    inc = _field(proof, "inclusion", "proof")
    path = _field(inc, "path", "inclusion")
    if not isinstance(path, list) or len(path) > merkle.MAX_PROOF_DEPTH:
        raise ProofFormatError("inclusion: path is not a list of at most 64 hashes")
    inclusion = merkle.InclusionProof(
        _int(_field(inc, "index", "inclusion"), "inclusion index"),
        _int(_field(inc, "tree_size", "inclusion"), "inclusion tree_size"),
        tuple(_hex(p, 32, "inclusion path") for p in path),
    )
    proof_tx = _hex(_field(proof, "tx_hash", "proof"), 32, "proof tx_hash")
    if proof_tx != tx_hash or _field(proof, "height", "proof") != height or inclusion.index != tx_index:
        c.add("inclusion", False, "the proof names another tx, height or index than the record")
    elif header.height != height:
        c.add("inclusion", False, f"the block is at height {header.height}, the record at {height}")
    elif not merkle.verify_inclusion(tx_hash, inclusion, header.tx_root):
        c.add("inclusion", False, f"the audit path does not lead to the header's tx root {header.tx_root.hex()[:16]}…")
    else:
        c.add("inclusion", True, f"tx #{inclusion.index} of {inclusion.tree_size} is under tx root "
                                 f"{header.tx_root.hex()[:16]}… ({len(inclusion.path)} path hashes)")

    # 4. the header
    block_hash = header.digest()
    claimed = [_hex(_field(block, "hash", "block"), 32, "block hash"),
               _hex(_field(proof, "block_hash", "proof"), 32, "proof block_hash")]
    record_time = record.get("time_ms")
    if any(h != block_hash for h in claimed):
        c.add("header", False, f"the header's fields hash to {block_hash.hex()[:16]}…, not to the block hash given")
    elif isinstance(record_time, int) and record_time != header.time_ms:
        c.add("header", False, f"the record's time {record_time} is not the block's {header.time_ms}")
    elif chain_id is not None and header.chain_id != chain_id:
        c.add("header", False, f"the block is of chain {header.chain_id!r}, not {chain_id!r}")
    else:
        c.add("header", True, f"block {height} of {header.chain_id} hashes to {block_hash.hex()}")

    # 5. the validator set of that height
    if trusted is not None:
        vset, source = trusted, "the trusted validator set"
    elif validators is None:
        c.add("validators", None, f"the node returned no validator set for height {height}")
        return
    else:
        vset, source = validator_set_from_json(validators), "the node's validator set"
    if vset.hash != header.validators_hash:
        hint = " (it may have changed since: validator-track proposals, evidence)" if trusted is not None else ""
        c.add("validators", False, f"{source} ({len(vset)} validators) does not hash to the header's "
                                   f"validators_hash {header.validators_hash.hex()[:16]}…{hint}")
        return
    c.add("validators", True, f"{source}: {len(vset)} validators, total power {vset.total_power}, "
                              "matches the header's validators_hash")

    # 6. +2/3 precommits for exactly this block
    commit = commit_from_json(_field(block, "commit", "block"))
    problem = verify_commit(commit, header.chain_id, vset, block_hash, height)
    if problem is not None:
        c.add("commit", False, problem)
        return
    power = vset.power_of_set(s.validator for s in commit.signatures)
    c.add("commit", True, f"{len(commit.signatures)} valid precommit signatures holding {power} of "
                          f"{vset.total_power} power (> 2/3)")


def _check_tx(c: _Checks, tx_json: JSON, tx_hash: bytes, doc_hash: bytes, record: JSON) -> None:
    tx = tx_from_json(tx_json)
    notariser = record.get("notariser")
    if tx.hash != tx_hash:
        c.add("transaction", False, f"the tx's fields hash to {tx.hash.hex()[:16]}…, not to the record's tx hash")
        return
    if tx.kind != "notary.notarise":
        c.add("transaction", False, f"the tx is a {tx.kind!r}, not a notary.notarise")
        return
    try:
        body = Notarise.decode(tx.body)
    except DecodeError as exc:
        c.add("transaction", False, f"the tx body does not decode: {exc}")
        return
    if body.doc_hash != doc_hash:
        c.add("transaction", False, f"the tx notarises {body.doc_hash.hex()}, not this document")
    elif body.metadata != record.get("metadata", body.metadata):
        c.add("transaction", False, "the tx's metadata differs from the record's")
    elif isinstance(notariser, str) and tx.sender.hex() != notariser.lower():
        c.add("transaction", False, "the tx was sent by another key than the record's notariser")
    elif not tx.verify_signatures():
        c.add("transaction", False, "the tx's signature does not verify")
    else:
        c.add("transaction", True, f"a notary.notarise of this document signed by {tx.sender.hex()[:16]}… "
                                   f"(address {crypto.address(tx.sender).hex()})")
