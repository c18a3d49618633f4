"""apply_block, check_tx and the per-tx pipeline.

A tx in a block goes through, in order:
  chain id → signatures → sender key not retired → nonce == next → fee affordable
Failing any of these is an *admission* failure: a result, no state change, nonce
not consumed. Then the nonce is consumed and the fee paid to the treasury, and the
kind's handler runs in a nested overlay that is merged only if it succeeds.

After the txs: evidence (in block order), then the end-of-block queue, then the
block's height and time, then the app hash (see apphash.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import crypto
from protocol.crypto import VerifyCache
from protocol.errors import DecodeError, ValidationError
from protocol.governance import apphash, evidence, identity, keys, proposals, unions
from protocol.governance.accounts import Account, get_account, put_account, to_treasury
from protocol.governance.codes import Code, TxFailed, clip
from protocol.governance.context import Ctx, Event, load_u64, need
from protocol.governance.genesis import ChainInfo
from protocol.governance.kinds import KINDS, Kind
from protocol.governance.params import Params
from protocol.governance.queue import QKind, Worker, run_due
from protocol.kv import KVReader, Overlay, WriteSet
from protocol.types import Block, Tx
from protocol.wire import Struct

WORKERS: dict[QKind, Worker] = {
    QKind.PROPOSAL: proposals.due,
    QKind.RESIDENCY: identity.expire,
    QKind.UNION: unions.notice_elapsed,
}


@dataclass(frozen=True, slots=True)
class TxResult:
    code: int
    reason: str = ""
    events: tuple[Event, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == Code.OK

    @property
    def info(self) -> str:
        """What the node stores with the tx (at most 512 bytes)."""
        return self.reason


OK = TxResult(Code.OK)


@dataclass(frozen=True, slots=True)
class BlockResult:
    height: int
    write_set: WriteSet  # sorted; includes m/height, m/time and m/app_hash
    tx_results: tuple[TxResult, ...]
    events: tuple[Event, ...]  # evidence and end-of-block work
    app_hash: bytes


def _fail(code: Code, reason: str) -> TxResult:
    return TxResult(code, clip(reason))


def _admit(
    kv: KVReader, tx: Tx, address: bytes, chain_id: str, params: Params, cache: VerifyCache | None
) -> TxResult | Account:
    """The checks shared by check_tx and block execution (nonce excepted)."""
    if tx.chain_id != chain_id:
        return _fail(Code.WRONG_CHAIN, f"tx is for chain {tx.chain_id!r}, this is {chain_id!r}")
    if not tx.verify_signatures(cache):
        return _fail(Code.BAD_SIGNATURE, "a signature does not verify")
    acct = get_account(kv, address)
    if acct.retired_to is not None:
        return _fail(Code.KEY_RETIRED, "the sender key was rotated out of its identity")
    if acct.spendable < params.fee:
        return _fail(Code.FEE_UNPAID, f"the fee is {params.fee}, the sender can spend {acct.spendable}")
    return acct


def _decode_body(tx: Tx) -> TxResult | tuple[Kind, Struct]:
    kind = KINDS.get(tx.kind)
    if kind is None:
        return _fail(Code.UNKNOWN_KIND, f"unknown tx kind {tx.kind!r}")
    if tx.cosignatures and not kind.cosigned:
        return _fail(Code.BAD_BODY, f"{tx.kind} takes no co-signatures")
    try:
        return kind, kind.body.decode(tx.body)
    except DecodeError as exc:
        return _fail(Code.BAD_BODY, f"bad {tx.kind} body: {exc.reason}")


def _apply_tx(kv: Overlay, block: Block, index: int, tx: Tx, params: Params, cache: VerifyCache | None) -> TxResult:
    h = block.header
    sender_address = crypto.address(tx.sender)
    acct = _admit(kv, tx, sender_address, h.chain_id, params, cache)
    if isinstance(acct, TxResult):
        return acct
    if tx.nonce != acct.nonce:
        return _fail(Code.BAD_NONCE, f"nonce {tx.nonce} is not the next one ({acct.nonce})")
    put_account(kv, sender_address, Account(acct.balance - params.fee, acct.locked, acct.nonce + 1, None))
    to_treasury(kv, params.fee)
    decoded = _decode_body(tx)
    if isinstance(decoded, TxResult):
        return decoded
    kind, body = decoded
    work = Overlay(kv)
    c = Ctx(
        work,
        height=h.height,
        time_ms=h.time_ms,
        chain_id=h.chain_id,
        params=params,
        cache=cache,
        tx=tx,
        tx_index=index,
        tx_sender_address=sender_address,
    )
    try:
        kind.handler(c, body)
    except TxFailed as exc:
        return _fail(exc.code, exc.reason)
    work.merge_into_parent()
    return TxResult(Code.OK, "", tuple(c.events)) if c.events else OK


def apply_block(state: KVReader, block: Block, *, cache: VerifyCache | None = None) -> BlockResult:
    """Execute `block` on the committed `state` (which is only read). Raises
    ValidationError if the block cannot follow the state (wrong chain, height or a
    time before the last block's); a failing tx is a result, never an exception."""
    kv = Overlay(state)
    info = need(kv, keys.META_CHAIN, ChainInfo)
    h = block.header
    last = load_u64(kv, keys.META_HEIGHT)
    if h.chain_id != info.chain_id:
        raise ValidationError(f"block is for chain {h.chain_id!r}, the state is {info.chain_id!r}")
    if h.height != last + 1:
        raise ValidationError(f"block height {h.height} does not follow the state's height {last}")
    if h.time_ms < load_u64(kv, keys.META_TIME):
        raise ValidationError("block time is before the previous block's")
    params = need(kv, keys.META_PARAMS, Params)
    results = tuple(_apply_tx(kv, block, i, tx, params, cache) for i, tx in enumerate(block.txs))
    c = Ctx(kv, height=h.height, time_ms=h.time_ms, chain_id=h.chain_id, params=params, cache=cache)
    for ev in block.evidence:
        evidence.process(c, ev)
    run_due(c, WORKERS)
    kv.put(keys.META_HEIGHT, keys.u64(h.height))
    kv.put(keys.META_TIME, keys.u64(h.time_ms))
    new_hash = apphash.chain(apphash.app_hash(kv), h.height, kv.write_set())
    kv.put(keys.META_APP_HASH, new_hash)
    return BlockResult(h.height, kv.write_set(), results, tuple(c.events), new_hash)


def check_tx(state: KVReader, tx: Tx, cache: VerifyCache | None = None) -> TxResult:
    """Mempool admission against committed state: chain id, kind and body, signatures,
    retired key, nonce not already used (later nonces pass: the mempool orders
    them), fee affordable now. OK means the tx may be included, not that it will
    succeed."""
    info = need(state, keys.META_CHAIN, ChainInfo)
    if tx.chain_id != info.chain_id:
        return _fail(Code.WRONG_CHAIN, f"tx is for chain {tx.chain_id!r}, this is {info.chain_id!r}")
    decoded = _decode_body(tx)
    if isinstance(decoded, TxResult):
        return decoded
    params = need(state, keys.META_PARAMS, Params)
    acct = _admit(state, tx, crypto.address(tx.sender), info.chain_id, params, cache)
    if isinstance(acct, TxResult):
        return acct
    if tx.nonce < acct.nonce:
        return _fail(Code.BAD_NONCE, f"nonce {tx.nonce} was already used (next is {acct.nonce})")
    return OK
