"""`NodeStore`: blocks, commits, governance state, tx index, consensus sign-state and
WAL, the pending txs acked to this node's clients, and node metadata in one ordered
key-value store (layout in `layout.py`).

Write discipline, which is what makes crash recovery trivial:
- a committed block and everything it implies (block, commit, hash and tx indexes,
  state write set, app hash, new head, removal of the finished height's WAL) is ONE
  synced batch, so the store is always at a block boundary;
- sign-state writes are synced before returning, and the node sends the vote they
  protect only after that; WAL records are written unsynced (the engine's contract,
  protocol.consensus.messages: losing a tail of the WAL costs progress, never
  safety). LevelDB's log is sequential, so the next synced write — a sign-state
  before a vote, a committed block — makes every earlier record durable too;
- pending txs are written in one batch per submission and made durable before the
  node acks them — by that batch's own sync, or by a `flush` that serves every
  submission stored before it (group commit) — and forgotten in unsynced batches (a
  lost forget is redone after a restart);
- pruning is separate, unsynced, and each chunk moves the prune base in the same
  batch as its deletions, so an interrupted prune leaves a consistent store.

Threading: one writer for everything except `prune`, which may run in a worker
thread at the same time (it only touches heights far below the head).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from node.storage import check
from node.storage import layout as L
from node.storage.backend import Backend, LevelDBBackend, MemoryBackend, Ops
from node.storage.check import StateHasher
from node.storage.errors import CorruptStore, GenesisMismatch, StorageError
from node.storage.records import MAX_TX_INFO, ChainHead, StoreIdentity, TxLocation, TxOutcome
from node.storage.view import StateCache, StateView
from protocol.errors import DecodeError
from protocol.kv import WriteSet
from protocol.mempool import LOCAL_PENDING_MAX_BYTES, LOCAL_PENDING_MAX_TXS
from protocol.types import ZERO_HASH, Block, Commit, Tx
from protocol.wire import Struct

log = structlog.get_logger(__name__)

DEFAULT_PRUNE_CHUNK = 100  # heights per prune batch: bounded memory and batch size
# Decoded blocks kept after commit or a read: the head block is read for every status
# request and the newest blocks for every tx lookup and block fetch; decoding a full
# block (3,000 txs) costs ~10 ms.
RECENT_BLOCKS = 4


@dataclass(frozen=True, slots=True)
class StoreInfo:
    schema_version: int
    chain_id: str
    genesis_hash: bytes
    base_height: int  # lowest height whose block is still stored (1 if never pruned)
    last_height: int  # 0: only the genesis state
    last_block_hash: bytes  # ZERO_HASH at height 0
    app_hash: bytes  # after executing last_height


@dataclass(frozen=True, slots=True)
class PruneResult:
    pruned: int  # heights removed by this call
    base_height: int  # lowest retained height afterwards


@dataclass(frozen=True, slots=True)
class ConsensusRecovery:
    """What the consensus engine restarts from: the height in progress, the last
    persisted sign-state and that height's WAL records in append order."""

    height: int
    sign_state: bytes | None
    wal: list[bytes]


class NodeStore:
    """Use `NodeStore.open(...)`, `open_leveldb(...)` or `memory(...)`; they run the
    consistency check and refuse (raise a `StorageError`) on a bad store."""

    # Bounds of the pending-tx set; the replica refuses submissions before reaching them.
    max_pending_txs = LOCAL_PENDING_MAX_TXS
    max_pending_bytes = LOCAL_PENDING_MAX_BYTES

    def __init__(self, backend: Backend, loaded: check.Loaded) -> None:
        self._backend = backend
        self._identity = loaded.identity
        self._head = loaded.head
        self._base = loaded.base
        self._wal_next: dict[int, int] = {}
        self._state_cache = StateCache()
        self._recent: dict[int, Block] = {}
        # tx hash -> encoded size of every stored pending tx (keys only: a bounded scan)
        self._pending = {key[len(L.PENDING_TX) :]: len(raw) for key, raw in backend.iterate(L.PENDING_TX)}
        self._pending_bytes = sum(self._pending.values())

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        backend: Backend,
        *,
        chain_id: str | None = None,
        genesis_hash: bytes | None = None,
        verify_state: StateHasher | None = None,
        deep: bool = False,
    ) -> NodeStore:
        """Check the store and wrap it. `chain_id`/`genesis_hash`, when given, must match
        an initialised store. `verify_state` recomputes the app hash from the state
        (cost: one pass over the state). `deep` reads every record (cost: the whole
        store). On refusal the backend is closed and the error says why and what to do."""
        try:
            loaded = check.load_and_check(
                backend,
                chain_id=chain_id,
                genesis_hash=genesis_hash,
                verify_state=verify_state,
                deep=deep,
            )
        except StorageError as exc:
            backend.close()
            log.error(
                "store refused", reason=exc.reason, remedy=exc.remedy, error=type(exc).__name__
            )
            raise
        except BaseException:
            backend.close()
            raise
        store = cls(backend, loaded)
        log.info("store opened", last_height=store.last_height, base_height=store.base_height)
        return store

    @classmethod
    def open_leveldb(
        cls,
        path: str | Path,
        *,
        chain_id: str | None = None,
        genesis_hash: bytes | None = None,
        verify_state: StateHasher | None = None,
        deep: bool = False,
        backend_options: dict[str, Any] | None = None,
    ) -> NodeStore:
        """Open (creating if missing) the LevelDB store in directory `path`, as `open`.
        `backend_options` go to `LevelDBBackend` (cache and buffer sizes)."""
        backend = LevelDBBackend(path, **(backend_options or {}))
        return cls.open(
            backend,
            chain_id=chain_id,
            genesis_hash=genesis_hash,
            verify_state=verify_state,
            deep=deep,
        )

    @classmethod
    def memory(cls, *, chain_id: str | None = None, genesis_hash: bytes | None = None) -> NodeStore:
        """A new, empty in-memory store (for tests and simulations)."""
        return cls.open(MemoryBackend(), chain_id=chain_id, genesis_hash=genesis_hash)

    @property
    def backend(self) -> Backend:
        return self._backend

    def check_consistency(
        self, *, verify_state: StateHasher | None = None, deep: bool = False
    ) -> None:
        """Re-run the startup check (e.g. from an operator command); raises on damage."""
        ident = self._identity
        check.load_and_check(
            self._backend,
            chain_id=ident.chain_id if ident else None,
            genesis_hash=ident.genesis_hash if ident else None,
            verify_state=verify_state,
            deep=deep,
        )

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ metadata

    @property
    def initialized(self) -> bool:
        return self._head is not None

    @property
    def head(self) -> ChainHead | None:
        return self._head

    @property
    def last_height(self) -> int:
        """Last committed height; 0 with only the genesis state (or before genesis)."""
        return self._head.height if self._head else 0

    @property
    def last_block_hash(self) -> bytes:
        return self._head.block_hash if self._head else ZERO_HASH

    @property
    def app_hash(self) -> bytes | None:
        """App hash after the last committed height; None before genesis."""
        return self._head.app_hash if self._head else None

    @property
    def base_height(self) -> int:
        return self._base

    @property
    def chain_id(self) -> str | None:
        return self._identity.chain_id if self._identity else None

    @property
    def genesis_hash(self) -> bytes | None:
        return self._identity.genesis_hash if self._identity else None

    @property
    def info(self) -> StoreInfo | None:
        if self._identity is None or self._head is None:
            return None
        return StoreInfo(
            L.SCHEMA_VERSION,
            self._identity.chain_id,
            self._identity.genesis_hash,
            self._base,
            self._head.height,
            self._head.block_hash,
            self._head.app_hash,
        )

    # ------------------------------------------------------------ state

    def state_view(self) -> StateView:
        return StateView(self._backend, self._state_cache)

    def init_genesis(
        self, chain_id: str, genesis_hash: bytes, write_set: WriteSet, app_hash: bytes
    ) -> None:
        """Record the chain identity and the genesis state (height 0) in one synced batch.
        Only on a new store."""
        if self._identity is not None:
            if (self._identity.chain_id, self._identity.genesis_hash) != (chain_id, genesis_hash):
                raise GenesisMismatch(
                    f"the store is already initialised for chain {self._identity.chain_id!r}"
                )
            raise StorageError("the store is already initialised; genesis is applied once")
        identity = StoreIdentity(chain_id, genesis_hash)
        head = ChainHead(0, ZERO_HASH, app_hash)
        _checked(identity)
        _checked(head)
        ops: list[tuple[bytes, bytes | None]] = [
            (L.META_SCHEMA, L.u32(L.SCHEMA_VERSION)),
            (L.META_IDENTITY, identity.encode()),
            (L.META_HEAD, head.encode()),
            (L.app_hash_key(0), app_hash),
        ]
        ops += _state_ops(write_set)
        self._backend.write(ops, sync=True)
        self._state_cache.applied(write_set)
        self._identity, self._head = identity, head
        log.info("genesis stored", chain_id=chain_id, app_hash=app_hash.hex())

    # ------------------------------------------------------------ committing

    def commit_block(
        self,
        block: Block,
        commit: Commit,
        write_set: WriteSet,
        app_hash: bytes,
        tx_results: Sequence[TxOutcome],
        *,
        durable: bool = True,
    ) -> None:
        """Store the next block with its commit, the state writes of executing it, its
        transactions' results and the resulting app hash: one atomic batch, synced
        unless `durable` is false. Raises ValueError (writing nothing) if it is not the
        next block on the stored chain.

        Block sync passes durable=False: a crash may then lose the last few blocks
        (LevelDB recovers a prefix of its log, so the store stays at a block boundary)
        and the node fetches them again; the next synced write — a sign-state before
        any vote — makes every earlier one durable too, as the log is sequential."""
        ident, head = self._identity, self._head
        if ident is None or head is None:
            raise StorageError("commit_block before init_genesis")
        h = head.height + 1
        _check_next(block, commit, app_hash, tx_results, ident, head)
        block_hash = block.hash
        new_head = ChainHead(h, block_hash, app_hash)
        ops: list[tuple[bytes, bytes | None]] = [
            (L.block_key(h), block.encode()),
            (L.commit_key(h), commit.encode()),
            (L.hash_index_key(block_hash), L.u64(h)),
            (L.app_hash_key(h), app_hash),
        ]
        for i, (tx, result) in enumerate(zip(block.txs, tx_results, strict=True)):
            ops.append((L.tx_key(tx.hash), TxLocation(h, i, result.code, result.info).encode()))
        ops += _state_ops(write_set)
        ops.append((L.META_HEAD, new_head.encode()))
        ops += self._finished_wal(h)
        self._backend.write(ops, sync=durable)
        self._state_cache.applied(write_set)
        self._keep_recent(h, block)
        self._head = new_head
        for done in [k for k in self._wal_next if k <= h]:
            del self._wal_next[done]
        log.debug("block committed", height=h, txs=len(block.txs), writes=len(write_set))

    def _finished_wal(self, height: int) -> Ops:
        """Deletes of every WAL record at or below `height` (w/ keys sort by height)."""
        dels: list[tuple[bytes, bytes | None]] = []
        for key, _ in self._backend.iterate(L.WAL):
            if L.wal_height(key) > height:
                break
            dels.append((key, None))
        return dels

    # ------------------------------------------------------------ reading the chain

    def block(self, height: int) -> Block | None:
        """The block at `height`, or None if not committed yet or pruned."""
        if height < max(1, self._base):
            return None
        block = self._recent.get(height)
        if block is None:
            block = check.read_block(self._backend, height)
            if block is not None:
                self._keep_recent(height, block)
        return block

    def _keep_recent(self, height: int, block: Block) -> None:
        recent = self._recent
        recent[height] = block
        while len(recent) > RECENT_BLOCKS:
            del recent[min(recent)]

    def commit(self, height: int) -> Commit | None:
        """The commit this node stored for block `height` (its own +2/3 precommits)."""
        if height < 1:
            return None
        return check.read_commit(self._backend, height)

    def block_height(self, block_hash: bytes) -> int | None:
        raw = self._backend.get(L.hash_index_key(block_hash))
        if raw is None:
            return None
        return check.decode_height_value(raw, L.hash_index_key(block_hash), "hash index")

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        height = self.block_height(block_hash)
        if height is None:
            return None
        block = self.block(height)
        if block is not None and block.hash != block_hash:
            raise CorruptStore(
                f"the hash index points {block_hash.hex()} at height {height}, "
                "which holds another block"
            )
        return block

    def app_hash_at(self, height: int) -> bytes | None:
        """The app hash after executing `height` (0: genesis), while retained."""
        if height < 0:
            return None
        return self._backend.get(L.app_hash_key(height))

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        return check.decode_record(self._backend, L.tx_key(tx_hash), TxLocation, "tx index entry")

    # ------------------------------------------------------------ consensus durability

    def save_sign_state(self, sign_state: bytes) -> None:
        """Replace the sign-state; durable when this returns."""
        self.persist_consensus(sign_state=sign_state)

    def sign_state(self) -> bytes | None:
        return self._backend.get(L.SIGN_STATE)

    def wal_append(self, height: int, record: bytes) -> None:
        """Append a WAL record for `height`, unsynced: on disk with the next synced
        write or the OS's own flush. A validator receives eight or more consensus
        messages a height, a proposal among them with its whole block, and an fsync
        for each held the node's only thread ~16 ms a height at 2,000 tx/s."""
        self.persist_consensus(wal=[(height, record)], sync=False)

    def persist_consensus(
        self, *, sign_state: bytes | None = None, wal: Sequence[tuple[int, bytes]] = (), sync: bool = True
    ) -> None:
        """Sign-state and/or WAL records in one batch, synced unless `sync` is false
        (a sign-state is always synced: it is what safety rests on)."""
        ops: list[tuple[bytes, bytes | None]] = []
        if sign_state is not None:
            ops.append((L.SIGN_STATE, sign_state))
        seqs = dict(self._wal_next)
        for height, record in wal:
            seq = seqs[height] if height in seqs else self._wal_first_free(height)
            ops.append((L.wal_key(height, seq), record))
            seqs[height] = seq + 1
        if not ops:
            return
        self._backend.write(ops, sync=sync or sign_state is not None)
        self._wal_next = seqs  # only after the write, so a failed write reuses the numbers

    def _wal_first_free(self, height: int) -> int:
        last = -1
        for key, _ in self._backend.iterate(L.wal_prefix(height)):
            last = L.read_u32(key[-4:])
        return last + 1

    def wal_records(self, height: int) -> list[bytes]:
        """The WAL records of `height` in append order."""
        return [value for _, value in self._backend.iterate(L.wal_prefix(height))]

    def consensus_recovery(self) -> ConsensusRecovery:
        height = self.last_height + 1
        return ConsensusRecovery(height, self.sign_state(), self.wal_records(height))

    # ------------------------------------------------------------ pending local transactions

    @property
    def pending_tx_count(self) -> int:
        return len(self._pending)

    @property
    def pending_tx_bytes(self) -> int:
        return self._pending_bytes

    def save_pending_txs(self, txs: Sequence[Tx], *, sync: bool = True) -> None:
        """Add txs this node acknowledges to its clients to the pending set in one
        batch, durable when this returns — or, with sync=False, after the next `flush`
        (the node acks only then). Txs already stored are skipped. Past `max_pending_txs`
        / `max_pending_bytes` it raises ValueError and writes nothing (the replica
        refuses such submissions first)."""
        ops: list[tuple[bytes, bytes | None]] = []
        added: dict[bytes, int] = {}
        for tx in txs:
            h = tx.hash
            if h in self._pending or h in added:
                continue
            raw = tx.encode()
            ops.append((L.pending_tx_key(h), raw))
            added[h] = len(raw)
        if not ops:
            return
        count, size = len(self._pending) + len(added), self._pending_bytes + sum(added.values())
        if count > self.max_pending_txs or size > self.max_pending_bytes:
            raise ValueError(
                f"{count} pending txs ({size} bytes) exceed the store's bound "
                f"({self.max_pending_txs} txs, {self.max_pending_bytes} bytes)"
            )
        self._backend.write(ops, sync=sync)
        self._pending.update(added)
        self._pending_bytes = size

    def flush(self) -> None:
        """Make every earlier write durable: one synced empty batch (the LevelDB log is
        sequential). Safe to call from a worker thread while the node's thread writes."""
        self._backend.write([], sync=True)

    def forget_pending_txs(self, tx_hashes: Sequence[bytes]) -> None:
        """Remove txs from the pending set (committed, stale or invalid) in one unsynced
        batch: a forget lost in a crash only makes the node re-check the tx at its next
        boot. Hashes not in the set are ignored."""
        gone = [h for h in dict.fromkeys(tx_hashes) if h in self._pending]
        if not gone:
            return
        self._backend.write([(L.pending_tx_key(h), None) for h in gone], sync=False)
        for h in gone:
            self._pending_bytes -= self._pending.pop(h)

    def pending_txs(self) -> list[Tx]:
        """Every stored pending tx, in hash order; a damaged one raises CorruptStore."""
        return [check.decode_pending_tx(key, raw) for key, raw in self._backend.iterate(L.PENDING_TX)]

    # ------------------------------------------------------------ pruning

    def prune(
        self,
        keep_last: int,
        *,
        chunk: int = DEFAULT_PRUNE_CHUNK,
        limit: int | None = None,
        compact: bool = True,
    ) -> PruneResult:
        """Delete blocks, commits, app hashes, hash and tx index entries of all heights
        below `last_height - keep_last + 1`, in batches of `chunk` heights, at most
        `limit` heights per call; then compact the freed block/commit/app-hash ranges.
        State is never pruned. Safe to run in a worker thread while the node commits."""
        if keep_last < 1:
            raise ValueError("keep_last must be at least 1: the head block is always kept")
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        target = self.last_height - keep_last + 1
        if limit is not None:
            target = min(target, self._base + limit)
        start = self._base
        while self._base < target:
            lo, hi = self._base, min(target, self._base + chunk)
            ops = self._prune_ops(lo, hi)
            ops.append((L.META_BASE, L.u64(hi)))
            # Not synced: a prune lost in a crash is simply redone.
            self._backend.write(ops, sync=False)
            self._base = hi
        pruned = self._base - start
        if pruned and compact:
            for prefix in (L.BLOCK, L.COMMIT, L.APP_HASH):
                self._backend.compact_range(prefix, prefix + L.u64(self._base))
        if pruned:
            log.info("pruned", heights=pruned, base_height=self._base)
        return PruneResult(pruned, self._base)

    def _prune_ops(self, lo: int, hi: int) -> list[tuple[bytes, bytes | None]]:
        ops: list[tuple[bytes, bytes | None]] = []
        for h in range(lo, hi):
            block = check.read_block(self._backend, h)
            if block is not None:
                ops.append((L.hash_index_key(block.hash), None))
                for tx in block.txs:
                    loc = self.tx_location(tx.hash)
                    if loc is not None and loc.height == h:  # not a later re-inclusion
                        ops.append((L.tx_key(tx.hash), None))
            ops += [(L.block_key(h), None), (L.commit_key(h), None), (L.app_hash_key(h), None)]
        return ops

    def compact_range(self, start: bytes | None = None, stop: bytes | None = None) -> None:
        """Compact the raw key range [start, stop) (None: open end); see layout.py."""
        self._backend.compact_range(start, stop)


def _state_ops(write_set: WriteSet) -> list[tuple[bytes, bytes | None]]:
    ops: list[tuple[bytes, bytes | None]] = []
    for key, value in write_set:
        if type(key) is not bytes or not (value is None or type(value) is bytes):
            raise TypeError("a write set holds (bytes, bytes | None) pairs")
        ops.append((L.state_key(key), value))
    return ops


def _check_next(
    block: Block,
    commit: Commit,
    app_hash: bytes,
    tx_results: Sequence[TxOutcome],
    ident: StoreIdentity,
    head: ChainHead,
) -> None:
    h = head.height + 1
    if block.height != h:
        raise ValueError(f"expected block {h}, got block {block.height}")
    if block.header.chain_id != ident.chain_id:
        raise ValueError(
            f"block is for chain {block.header.chain_id!r}, the store for {ident.chain_id!r}"
        )
    if block.header.prev_hash != head.block_hash:
        raise ValueError(f"block {h} does not build on the stored block {head.height}")
    if block.header.app_hash != head.app_hash:
        raise ValueError(f"block {h} carries an app hash other than the stored state's")
    if commit.height != h or commit.block_hash != block.hash:
        raise ValueError(f"the commit is not for block {h}")
    if len(app_hash) != 32:
        raise ValueError("app_hash must be 32 bytes")
    if len(tx_results) != len(block.txs):
        raise ValueError(f"{len(tx_results)} tx results for {len(block.txs)} transactions")
    for r in tx_results:
        info = r.info  # a UTF-8 character is at most 4 bytes: most infos need no encoding
        if not 0 <= r.code < 2**32 or (len(info) * 4 > MAX_TX_INFO and len(info.encode()) > MAX_TX_INFO):
            raise ValueError(
                f"tx result {r!r} out of bounds (code u32, info <= {MAX_TX_INFO} bytes)"
            )


def _checked(record: Struct) -> Struct:
    """A record that will decode again: constructing a wire struct does not check
    bounds (only decoding does), and a record that cannot be read back must never be
    written."""
    try:
        type(record).decode(record.encode())
    except DecodeError as exc:
        raise ValueError(exc.reason) from None
    return record
