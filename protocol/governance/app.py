"""apply_block, check_tx and the per-tx pipeline.

A tx in a block goes through, in order:
  chain id → signatures → sender key not retired → nonce == next → fee affordable
Failing any of these is an *admission* failure: a result, no state change, nonce
not consumed. Then the nonce is consumed and the fee paid to the treasury, and the
kind's handler runs in a nested overlay that is merged only if it succeeds.

After the txs: evidence (in block order), then the end-of-block queue, then the
block's height and time, then the app hash (see apphash.py).

check_tx (mempool admission) runs the same admission checks against committed state
and then the kind's own check (kinds.py): what its handler would verify before its
first write, with the fee charged, at the next height. See `check_tx`.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import crypto
from protocol.crypto import VerifyCache
from protocol.errors import DecodeError, ValidationError
from protocol.governance import apphash, evidence, identity, keys, proposals, unions
from protocol.governance.accounts import Account, get_account, put_account, to_treasury
from protocol.governance.codes import Code, TxFailed, clip
from protocol.governance.context import Ctx, Event, decode, load_u64, need, remember
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


def _charge(kv: Overlay, address: bytes, acct: Account, fee: int) -> None:
    """Consume the nonce and pay the fee to the treasury (`acct` is admitted)."""
    put_account(kv, address, Account(acct.balance - fee, acct.locked, acct.nonce + 1, None))
    to_treasury(kv, fee)


def _decode_body(tx: Tx) -> TxResult | tuple[Kind, Struct]:
    kind = KINDS.get(tx.kind)
    if kind is None:
        return _fail(Code.UNKNOWN_KIND, f"unknown tx kind {tx.kind!r}")
    if tx.cosignatures and not kind.cosigned:
        return _fail(Code.BAD_BODY, f"{tx.kind} takes no co-signatures")
    try:
        # Memoised: a body decoded at admission is decoded again in its block.
        return kind, decode(kind.body, tx.body)
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
    _charge(kv, sender_address, acct, params.fee)
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
    for rec in kv.records():  # the next block reads these back from the store's bytes
        remember(rec.encode(), rec)
    return BlockResult(h.height, kv.write_set(), results, tuple(c.events), new_hash)


# check_tx refusals from a kind's check start with one of these (node/metrics.py maps
# them onto bounded labels); the rest of the reason is the one execution would give.
_NOT_PERMITTED = frozenset(
    {
        Code.NOT_IDENTITY,
        Code.NOT_RESIDENT,
        Code.NOT_REGISTRAR,
        Code.NOT_ISSUER,
        Code.NOT_ELIGIBLE,
        Code.UNAUTHORIZED,
        Code.KEY_REUSED,
        Code.NEXT_KEY_MISMATCH,
        Code.PARTIES_MISMATCH,
    }
)


def _refusal(kind: str, exc: TxFailed) -> TxResult:
    if exc.code == Code.INSUFFICIENT_FUNDS:
        prefix = "insufficient funds"
    elif exc.code == Code.BAD_BODY:
        prefix = f"bad {kind} body"
    elif exc.code in _NOT_PERMITTED:
        prefix = "not permitted"
    else:
        prefix = "would fail"
    return _fail(exc.code, f"{prefix}: {exc.reason}")


def check_tx(state: KVReader, tx: Tx, cache: VerifyCache | None = None, *, standing: bool = True) -> TxResult:
    """Mempool admission against committed state, as CometBFT's CheckTx: chain id,
    kind and body, signatures, retired key, nonce not already used (later nonces
    pass: the mempool orders them), fee affordable now; then the kind's check
    (kinds.py): every check its handler makes before its first write — funds for a
    transfer or a deposit, the sender's standing (identity, residency, registrar,
    issuer, proposer, party), the records it names — run on the committed state with
    the fee charged, at the next height. A refusal there carries the code and reason
    execution would give if the tx were the next block's first (reason prefixed
    "insufficient funds: ", "not permitted: ", "would fail: " or "bad <kind> body: ").

    Never stricter than execution on the committed state: but the sender's own
    pending txs (and others' in the same block) are not applied first, so a tx that
    depends on one of them (spends tokens it receives, votes as the identity it
    registers) is refused until that one is committed. OK means the tx may be
    included, not that it will succeed (an earlier tx may spend the same tokens).

    standing=False checks the envelope only (everything before the kind's check): a
    tx a node acknowledged before a restart is owed a block even if it would now
    fail, and is committed as a failure that tells its client why."""
    info = need(state, keys.META_CHAIN, ChainInfo)
    if tx.chain_id != info.chain_id:
        return _fail(Code.WRONG_CHAIN, f"tx is for chain {tx.chain_id!r}, this is {info.chain_id!r}")
    decoded = _decode_body(tx)
    if isinstance(decoded, TxResult):
        return decoded
    kind, body = decoded
    params = need(state, keys.META_PARAMS, Params)
    address = crypto.address(tx.sender)
    acct = _admit(state, tx, address, info.chain_id, params, cache)
    if isinstance(acct, TxResult):
        return acct
    if tx.nonce < acct.nonce:
        return _fail(Code.BAD_NONCE, f"nonce {tx.nonce} was already used (next is {acct.nonce})")
    if kind.check is None or not standing:
        return OK
    kv = Overlay(state)  # dropped: nothing check_tx does is kept
    _charge(kv, address, acct, params.fee)
    c = Ctx(
        kv,
        height=load_u64(state, keys.META_HEIGHT) + 1,
        time_ms=load_u64(state, keys.META_TIME),
        chain_id=info.chain_id,
        params=params,
        cache=cache,
        tx=tx,
        tx_sender_address=address,
    )
    try:
        kind.check(c, body)
    except TxFailed as exc:
        return _refusal(tx.kind, exc)
    return OK
