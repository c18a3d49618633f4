"""Contract tests of the node store, run against both backends (LevelDB and memory).

A toy deterministic "state machine" drives a chain: block h sets `counter` to h,
adds `k/<h>` and deletes `k/<h-3>`; its app hash is a hash over the whole state, so
it doubles as the `verify_state` hasher. The helpers here are also used by
test_storage_faults.py (LevelDB-only faults) and by its crash-test child process.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.storage import (
    Backend,
    CorruptStore,
    GenesisMismatch,
    IncompatibleStore,
    LevelDBBackend,
    MemoryBackend,
    NodeStore,
    StorageError,
    TxLocation,
    TxResult,
)
from node.storage import layout as L
from node.storage.backend import Ops
from node.storage.records import ChainHead
from node.storage.view import StateCache, StateView
from protocol import codec
from protocol.kv import KVReader, MemoryKV, Overlay, WriteSet
from protocol.types import ZERO_HASH, Block, Commit, CommitSig, Tx, make_block

CHAIN_ID = "storage-test"
GENESIS_HASH = hashlib.sha256(b"storage-test genesis").digest()
VALIDATOR = bytes(range(32))
SENDER = bytes(range(32, 64))


# ---------------------------------------------------------------- toy chain


def state_root(reader: KVReader) -> bytes:
    h = hashlib.sha256()
    for key, value in reader.scan(b""):
        h.update(codec.pack([key, value]))
    return h.digest()


def genesis_write_set() -> WriteSet:
    return [(b"counter", b"0"), (b"genesis", b"yes")]


def init(store: NodeStore) -> None:
    ws = genesis_write_set()
    kv = MemoryKV()
    kv.apply(ws)
    store.init_genesis(CHAIN_ID, GENESIS_HASH, ws, state_root(kv))


def expected_state(height: int) -> list[tuple[bytes, bytes]]:
    """The whole state after committing `height` blocks of the toy chain."""
    kv = MemoryKV()
    kv.apply(genesis_write_set())
    for h in range(1, height + 1):
        kv.apply(toy_writes(kv, h))
    return list(kv.scan(b""))


def toy_writes(reader: KVReader, h: int) -> WriteSet:
    ov = Overlay(reader)
    ov.put(b"counter", str(h).encode())
    ov.put(b"k/%08d" % h, b"v%d" % h)
    if h > 3:
        ov.delete(b"k/%08d" % (h - 3))
    return ov.write_set()


@dataclass
class Step:
    block: Block
    commit: Commit
    write_set: WriteSet
    app_hash: bytes
    tx_results: list[TxResult]

    def args(self) -> tuple[Any, ...]:
        return (self.block, self.commit, self.write_set, self.app_hash, self.tx_results)


def next_step(
    store: NodeStore,
    *,
    txs: int = 2,
    payload: Callable[[int, int], bytes] | None = None,
    write_set: WriteSet | None = None,
) -> Step:
    """The toy chain's next block on top of `store` (not committed)."""
    h = store.last_height + 1
    body = payload or (lambda height, i: b"tx %d.%d" % (height, i))
    tx_list = tuple(
        Tx(CHAIN_ID, SENDER, h * 1000 + i, "test", body(h, i), (), bytes(64)) for i in range(txs)
    )
    app_before = store.app_hash
    assert app_before is not None
    block = make_block(
        chain_id=CHAIN_ID,
        height=h,
        time_ms=1_000 * h,
        prev_hash=store.last_block_hash,
        app_hash=app_before,
        validators_hash=hashlib.sha256(VALIDATOR).digest(),
        proposer=VALIDATOR,
        txs=tx_list,
        last_commit=store.commit(h - 1),
    )
    commit = Commit(h, 0, block.hash, (CommitSig(VALIDATOR, 1_000 * h, bytes(64)),))
    ov = Overlay(store.state_view())
    ws = toy_writes(ov, h) if write_set is None else write_set
    for key, value in ws:
        if value is None:
            ov.delete(key)
        else:
            ov.put(key, value)
    results = [TxResult(i % 2, f"result of tx {i}") for i in range(txs)]
    return Step(block, commit, ws, state_root(ov), results)


def commit_next(store: NodeStore, **kw: Any) -> Step:
    step = next_step(store, **kw)
    store.commit_block(*step.args())
    return step


def build(store: NodeStore, height: int, **kw: Any) -> list[Step]:
    init(store)
    return [commit_next(store, **kw) for _ in range(height)]


def dump(backend: Backend) -> list[tuple[bytes, bytes]]:
    return list(backend.iterate(b""))


# ---------------------------------------------------------------- backends


class Recording:
    """A backend wrapper that records every write (ops and sync flag) and can fail
    the n-th write before it reaches the inner backend, as a crash at that moment."""

    def __init__(self, inner: Backend, fail_at: int | None = None) -> None:
        self.inner = inner
        self.writes: list[tuple[list[tuple[bytes, bytes | None]], bool]] = []
        self.fail_at = fail_at

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.inner.iterate(prefix)

    def write(self, ops: Ops, *, sync: bool) -> None:
        if self.fail_at is not None and len(self.writes) == self.fail_at:
            self.fail_at = None
            raise StorageError("injected crash")
        self.writes.append((list(ops), sync))
        self.inner.write(ops, sync=sync)

    def compact_range(self, start: bytes | None = None, stop: bytes | None = None) -> None:
        self.inner.compact_range(start, stop)

    def close(self) -> None:
        self.inner.close()


class Home:
    """One node home of one backend kind; `backend()` is the store as found after a
    (re)start. Memory backends carry their contents across restarts via reopen()."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "data"
        self._mem: MemoryBackend | None = None

    def backend(self) -> Backend:
        if self.kind == "leveldb":
            return LevelDBBackend(self.path)
        self._mem = MemoryBackend() if self._mem is None else self._mem.reopen()
        return self._mem

    def open(self, backend: Backend | None = None, **kw: Any) -> NodeStore:
        kw.setdefault("chain_id", CHAIN_ID)
        kw.setdefault("genesis_hash", GENESIS_HASH)
        return NodeStore.open(backend if backend is not None else self.backend(), **kw)

    def restart(self, store: NodeStore, **kw: Any) -> NodeStore:
        store.close()
        return self.open(**kw)

    def damage(self, ops: Ops) -> None:
        """Write raw bytes behind the store's back (the store must be closed)."""
        backend = self.backend()
        backend.write(ops, sync=True)
        backend.close()


@pytest.fixture(params=["memory", "leveldb"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Home:
    return Home(request.param, tmp_path)


# ---------------------------------------------------------------- basics


def test_new_store_is_empty_and_uninitialised(home: Home) -> None:
    store = home.open()
    assert not store.initialized
    assert (store.last_height, store.app_hash, store.info, store.head) == (0, None, None, None)
    assert store.block(1) is None and store.commit(1) is None
    assert store.sign_state() is None
    recovery = store.consensus_recovery()
    assert (recovery.height, recovery.sign_state, recovery.wal) == (1, None, [])
    with pytest.raises(StorageError, match="before init_genesis"):
        store.commit_block(*next_step_stub())
    store.close()


def next_step_stub() -> tuple[Any, ...]:
    other = NodeStore.memory()
    init(other)
    return next_step(other).args()


def test_genesis_and_blocks_are_readable_and_survive_restart(home: Home) -> None:
    store = home.open()
    steps = build(store, 5)
    for _ in range(2):  # before and after a restart
        info = store.info
        assert info is not None
        assert (info.chain_id, info.genesis_hash, info.schema_version) == (
            CHAIN_ID,
            GENESIS_HASH,
            1,
        )
        assert (info.last_height, info.base_height) == (5, 1)
        assert info.last_block_hash == steps[-1].block.hash == store.last_block_hash
        assert info.app_hash == steps[-1].app_hash == store.app_hash
        assert store.app_hash_at(0) == steps[0].block.header.app_hash
        for h, step in enumerate(steps, start=1):
            assert store.block(h) == step.block
            assert store.commit(h) == step.commit
            assert store.block_by_hash(step.block.hash) == step.block
            assert store.block_height(step.block.hash) == h
            assert store.app_hash_at(h) == step.app_hash
            for i, tx in enumerate(step.block.txs):
                assert store.tx_location(tx.hash) == TxLocation(h, i, i % 2, f"result of tx {i}")
        assert store.block(6) is None and store.block_by_hash(bytes(32)) is None
        assert store.tx_location(bytes(32)) is None
        assert list(store.state_view().scan(b"")) == expected_state(5)
        store = home.restart(store)
    store.close()


def test_state_view_is_namespaced_and_ordered(home: Home) -> None:
    store = home.open()
    keys = [b"", b"\x00", b"a", b"a/", b"a/b", b"ab", b"b", b"\xff\xff"]
    store.init_genesis(CHAIN_ID, GENESIS_HASH, [(k, b"=" + k) for k in keys], bytes(32))
    view = store.state_view()
    assert [k for k, _ in view.scan(b"")] == keys  # nothing of blocks, metadata, WAL...
    assert [k for k, _ in view.scan(b"a")] == [b"a", b"a/", b"a/b", b"ab"]
    assert list(view.scan(b"a/")) == [(b"a/", b"=a/"), (b"a/b", b"=a/b")]
    assert view.get(b"") == b"=" and view.get(b"c") is None
    store.save_sign_state(b"s")
    store.wal_append(1, b"w")
    assert [k for k, _ in view.scan(b"")] == keys
    store.close()


# ---------------------------------------------------------------- committing


def next_block(s: Step, **header: Any) -> Block:
    h = s.block.header
    fields: dict[str, Any] = {
        "chain_id": h.chain_id,
        "height": h.height,
        "time_ms": h.time_ms,
        "prev_hash": h.prev_hash,
        "app_hash": h.app_hash,
        "validators_hash": h.validators_hash,
        "proposer": h.proposer,
        "txs": s.block.txs,
        "last_commit": s.block.last_commit,
    }
    fields.update(header)
    if fields["height"] != h.height:
        fields["last_commit"] = None
    return make_block(**fields)


def with_block(**header: Any) -> Callable[[Step], Step]:
    return lambda s: replace(s, block=next_block(s, **header))


BAD_COMMITS: dict[str, tuple[Callable[[Step], Step], type[Exception], str]] = {
    "height": (lambda s: with_block(height=s.block.height + 1)(s), ValueError, "expected block"),
    "prev hash": (with_block(prev_hash=bytes(32)), ValueError, "does not build on"),
    "header app hash": (with_block(app_hash=bytes(32)), ValueError, "app hash"),
    "chain id": (with_block(chain_id="other"), ValueError, "for chain"),
    "commit for another block": (
        lambda s: replace(s, commit=Commit(s.block.height, 0, bytes(32), s.commit.signatures)),
        ValueError,
        "commit is not for",
    ),
    "tx results count": (
        lambda s: replace(s, tx_results=s.tx_results[:1]),
        ValueError,
        "tx results for",
    ),
    "tx info too long": (
        lambda s: replace(s, tx_results=[TxResult(0, "x" * 600)] * 2),
        ValueError,
        "out of bounds",
    ),
    "app hash length": (lambda s: replace(s, app_hash=b"short"), ValueError, "32 bytes"),
    "write set key type": (
        lambda s: replace(s, write_set=[*s.write_set, ("str", b"x")]),  # type: ignore[list-item]
        TypeError,
        "write set",
    ),
}


@pytest.mark.parametrize("case", list(BAD_COMMITS))
def test_commit_block_rejects_a_non_successor_and_writes_nothing(home: Home, case: str) -> None:
    mutate, error, message = BAD_COMMITS[case]
    store = home.open()
    build(store, 2)
    before = dump(store.backend)
    step = mutate(next_step(store))
    with pytest.raises(error, match=message):
        store.commit_block(*step.args())
    assert dump(store.backend) == before
    assert store.last_height == 2
    commit_next(store)  # and the store still takes the right block
    assert store.last_height == 3
    store.close()


def test_genesis_is_applied_once_and_validated(home: Home) -> None:
    store = home.open()
    with pytest.raises(ValueError):
        store.init_genesis(CHAIN_ID, b"short", [], bytes(32))
    assert dump(store.backend) == []
    init(store)
    with pytest.raises(StorageError, match="already initialised"):
        init(store)
    with pytest.raises(GenesisMismatch):
        store.init_genesis("other", GENESIS_HASH, [], bytes(32))
    store.close()


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"chain_id": "other-chain"}, "other-chain"), ({"genesis_hash": bytes(32)}, "genesis")],
)
def test_open_refuses_another_chain(home: Home, kw: dict[str, Any], message: str) -> None:
    store = home.open()
    build(store, 1)
    store.close()
    with pytest.raises(GenesisMismatch, match=message) as exc:
        home.open(**kw)
    assert "unsafe-reset" in str(exc.value)
    store = home.open()  # the refused open released the store
    assert store.last_height == 1
    store.close()


# ---------------------------------------------------------------- durability


def test_every_protecting_write_is_one_synced_batch(home: Home) -> None:
    """Blocks and sign-states are synced; WAL records are not (they reach the disk
    with the next synced write: losing a tail of the WAL costs progress only)."""
    rec = Recording(home.backend())
    store = home.open(rec)
    init(store)
    store.wal_append(1, b"prevote")
    step = commit_next(store)
    store.save_sign_state(b"signed 2/0")
    store.wal_append(2, b"precommit")
    store.persist_consensus(sign_state=b"signed 2/1", wal=[(2, b"a"), (2, b"b")])
    assert [sync for _, sync in rec.writes] == [True, False, True, True, False, True]
    assert set(dict(rec.writes[1][0])) == {L.wal_key(1, 0)}
    commit_ops = dict(rec.writes[2][0])
    assert commit_ops[L.block_key(1)] == step.block.encode()
    assert commit_ops[L.commit_key(1)] == step.commit.encode()
    assert commit_ops[L.META_HEAD] == ChainHead(1, step.block.hash, step.app_hash).encode()
    assert commit_ops[L.state_key(b"counter")] == b"1"
    assert commit_ops[L.wal_key(1, 0)] is None  # the finished height's WAL goes with it
    assert set(dict(rec.writes[5][0])) == {L.SIGN_STATE, L.wal_key(2, 1), L.wal_key(2, 2)}
    store.close()


def test_sign_state_and_wal_survive_restart_and_committing_clears_the_wal(home: Home) -> None:
    store = home.open()
    build(store, 1)
    store.save_sign_state(b"first")
    store.save_sign_state(b"second")
    for rec in (b"r0", b"r1"):
        store.wal_append(2, rec)
    store.wal_append(3, b"future")
    store = home.restart(store)
    assert store.sign_state() == b"second"
    store.wal_append(2, b"r2")  # numbering continues after the restart
    recovery = store.consensus_recovery()
    assert (recovery.height, recovery.sign_state, recovery.wal) == (
        2,
        b"second",
        [b"r0", b"r1", b"r2"],
    )
    commit_next(store)
    assert store.wal_records(2) == [] and store.wal_records(3) == [b"future"]
    store.wal_append(3, b"next")
    assert store.consensus_recovery().wal == [b"future", b"next"]
    store.close()


def test_crash_between_sign_state_and_block_commit_leaves_a_block_boundary(home: Home) -> None:
    """The engine persists sign-state for height 4 and then the node crashes while
    committing block 3: the store restarts at height 2 with everything of height 2
    and nothing of height 3, and the sign-state is the new one."""
    rec = Recording(home.backend())
    store = home.open(rec)
    build(store, 2)
    state_at_2 = dump(store.backend)
    store.save_sign_state(b"signed 3")
    store.wal_append(3, b"precommit 3")
    step = next_step(store)
    rec.fail_at = len(rec.writes)
    with pytest.raises(StorageError, match="injected crash"):
        store.commit_block(*step.args())
    assert store.last_height == 2  # the in-memory head did not move either
    store = home.restart(store, verify_state=state_root)
    assert store.last_height == 2 and store.block(3) is None
    assert list(store.state_view().scan(b"")) == expected_state(2)
    assert store.sign_state() == b"signed 3"
    assert store.wal_records(3) == [b"precommit 3"]
    assert [kv for kv in dump(store.backend) if not kv[0].startswith((L.SIGN_STATE, L.WAL))] == [
        kv for kv in state_at_2 if not kv[0].startswith((L.SIGN_STATE, L.WAL))
    ]
    store.commit_block(*step.args())  # the replayed commit goes through
    assert store.last_height == 3
    store.close()


def test_failed_wal_write_reuses_its_sequence_number(home: Home) -> None:
    rec = Recording(home.backend())
    store = home.open(rec)
    init(store)
    store.wal_append(1, b"a")
    rec.fail_at = len(rec.writes)
    with pytest.raises(StorageError):
        store.wal_append(1, b"lost")
    store.wal_append(1, b"b")
    assert store.wal_records(1) == [b"a", b"b"]
    assert [k for k, _ in store.backend.iterate(L.wal_prefix(1))] == [
        L.wal_key(1, 0),
        L.wal_key(1, 1),
    ]
    store.close()


# ---------------------------------------------------------------- refusing damage


def _other_block() -> bytes:
    other = NodeStore.memory()
    init(other)
    commit_next(other)
    commit_next(other)
    block = commit_next(other, txs=3).block
    return block.encode()


HEAD = 3  # damage is done to a store with blocks 1..3
DAMAGE: dict[str, tuple[Callable[[bytes], Ops], type[StorageError], str]] = {
    # each case maps the head block's hash to the raw writes that damage the store
    "garbage block value": (lambda _: [(L.block_key(3), b"\x93garbage")], CorruptStore, "block 3"),
    "truncated block value": (lambda _: [(L.block_key(3), b"\x94")], CorruptStore, "block 3"),
    "another block at the head": (
        lambda _: [(L.block_key(3), _other_block())],
        CorruptStore,
        "expected",
    ),
    "head app hash": (
        lambda head: [(L.META_HEAD, ChainHead(3, head, b"\x01" * 32).encode())],
        CorruptStore,
        "app hash",
    ),
    "stored app hash": (lambda _: [(L.app_hash_key(3), b"\x02" * 32)], CorruptStore, "app hash"),
    "previous app hash": (
        lambda _: [(L.app_hash_key(2), b"\x03" * 32)],
        CorruptStore,
        "builds on app hash",
    ),
    "head record": (lambda _: [(L.META_HEAD, b"\xc1")], CorruptStore, "chain head"),
    "missing commit": (lambda _: [(L.commit_key(3), None)], CorruptStore, "commit 3"),
    "missing hash index": (
        lambda head: [(L.hash_index_key(head), None)],
        CorruptStore,
        "hash index",
    ),
    "missing previous block": (lambda _: [(L.block_key(2), None)], CorruptStore, "block 2"),
    "block above the head": (lambda _: [(L.block_key(4), b"x")], CorruptStore, "above the head"),
    "prune base above head": (lambda _: [(L.META_BASE, L.u64(9))], CorruptStore, "prune base"),
    "lost schema": (lambda _: [(L.META_SCHEMA, None)], CorruptStore, "no schema"),
    "newer schema": (
        lambda _: [(L.META_SCHEMA, L.u32(99))],
        IncompatibleStore,
        "schema version 99",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_open_refuses_a_damaged_store_and_changes_nothing(home: Home, case: str) -> None:
    make_ops, error, message = DAMAGE[case]
    store = home.open()
    steps = build(store, HEAD)
    store.close()
    home.damage(make_ops(steps[-1].block.hash))
    backend = home.backend()
    damaged = dump(backend)
    with pytest.raises(error, match=message) as exc:
        home.open(backend)
    assert exc.value.remedy and "unsafe-reset" in exc.value.remedy
    assert str(exc.value).endswith(exc.value.remedy)  # one line for the operator
    assert backend.closed
    after = home.backend()
    assert dump(after) == damaged  # refusing rewrote nothing
    after.close()


def test_verify_state_recomputes_the_app_hash(home: Home) -> None:
    store = home.open()
    build(store, 3)
    store.close()
    home.damage([(L.state_key(b"counter"), b"999")])
    with pytest.raises(CorruptStore, match="hashes to"):
        home.open(verify_state=state_root)
    store = home.open()  # the cheap check cannot see state damage: that is what verify_state is for
    assert store.last_height == 3
    store.close()


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([(L.block_key(2), b"\x93garbage")], "block 2"),
        ([(L.tx_key(b"\x07" * 32), b"junk")], "tx index entry"),
        ([(L.app_hash_key(1), None)], "app hash of height 1"),
    ],
)
def test_deep_check_reads_every_height(home: Home, ops: Ops, message: str) -> None:
    store = home.open()
    build(store, 5)
    store.close()
    home.damage(ops)
    store = home.open()  # damage below the head is not on the startup path
    store.close()
    with pytest.raises(CorruptStore, match=message):
        home.open(deep=True)


# ---------------------------------------------------------------- pruning


def test_prune_keeps_the_last_blocks_in_bounded_chunks(home: Home) -> None:
    rec = Recording(home.backend())
    store = home.open(rec)
    steps = build(store, 12)
    state = list(store.state_view().scan(b""))
    rec.writes.clear()
    result = store.prune(5, chunk=2)
    assert (result.pruned, result.base_height, store.base_height) == (7, 8, 8)
    assert len(rec.writes) == 4  # heights 1-2, 3-4, 5-6, 7
    assert all(dict(ops)[L.META_BASE] is not None for ops, _ in rec.writes)
    assert not any(sync for _, sync in rec.writes)  # a lost prune is redone, no fsync needed
    for h, step in enumerate(steps, start=1):
        kept = h >= 8
        assert (store.block(h) is not None) is kept
        assert (store.commit(h) is not None) is kept
        assert (store.block_by_hash(step.block.hash) is not None) is kept
        assert (store.app_hash_at(h) is not None) is kept
        assert all((store.tx_location(tx.hash) is not None) is kept for tx in step.block.txs)
    assert list(store.state_view().scan(b"")) == state
    assert store.prune(5).pruned == 0
    commit_next(store)  # the chain goes on
    store = home.restart(store, deep=True)
    assert (store.base_height, store.last_height) == (8, 13)
    assert store.app_hash_at(0) is not None  # the genesis app hash is never pruned
    store.close()


def test_prune_limit_and_arguments(home: Home) -> None:
    store = home.open()
    init(store)
    assert store.prune(1).pruned == 0  # nothing but genesis
    for _ in range(6):
        commit_next(store)
    assert store.prune(1, limit=2).base_height == 3
    assert store.prune(1, limit=2).base_height == 5
    assert store.prune(1).base_height == 6  # the head itself is always kept
    assert store.block(6) is not None
    with pytest.raises(ValueError):
        store.prune(0)
    with pytest.raises(ValueError):
        store.prune(1, chunk=0)
    store.close()


def test_interrupted_prune_resumes_from_a_consistent_store(home: Home) -> None:
    rec = Recording(home.backend())
    store = home.open(rec)
    build(store, 10)
    rec.fail_at = len(rec.writes) + 1  # the second chunk
    with pytest.raises(StorageError, match="injected crash"):
        store.prune(2, chunk=3)
    store = home.restart(store, deep=True)
    assert store.base_height == 4 and store.block(3) is None and store.block(4) is not None
    assert store.prune(2, chunk=3).base_height == 9
    store = home.restart(store, deep=True)
    assert store.base_height == 9
    store.close()


def test_prune_in_a_worker_thread_while_the_node_commits(home: Home) -> None:
    store = home.open()
    build(store, 5)
    done = threading.Event()
    errors: list[BaseException] = []
    pruned = 0

    def worker() -> None:
        nonlocal pruned
        try:
            while not done.is_set():
                pruned += store.prune(3, chunk=1).pruned
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        for _ in range(40):
            commit_next(store)
            store.wal_append(store.last_height + 1, b"vote")
    finally:
        done.set()
        thread.join()
    assert errors == []
    pruned += store.prune(3).pruned
    assert (pruned, store.base_height, store.last_height) == (42, 43, 45)
    store = home.restart(store, deep=True, verify_state=state_root)
    assert list(store.state_view().scan(b"")) == expected_state(45)
    store.close()


# ---------------------------------------------------------------- property


write_sets = st.lists(
    st.dictionaries(
        st.binary(max_size=3),
        st.one_of(st.none(), st.binary(max_size=4)),
        max_size=6,
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.parametrize("kind", ["memory", "leveldb"])
@settings(max_examples=25)
@given(blocks=write_sets)
def test_state_matches_a_model_across_commits_and_restarts(
    kind: str, blocks: list[dict[bytes, bytes | None]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = Home(kind, tmp_path_factory.mktemp("prop"))
    store = home.open()
    init(store)
    model = MemoryKV()
    model.apply(genesis_write_set())
    view = store.state_view()
    for writes in blocks:
        ws = sorted(writes.items())
        # Read every key first, so the committed-state cache holds the old values
        # (and the misses) that this commit must replace.
        assert all(view.get(k) == model.get(k) for k in writes)
        store.commit_block(*next_step(store, txs=0, write_set=ws).args())
        model.apply(ws)
        assert list(store.state_view().scan(b"")) == list(model.scan(b""))
        assert all(view.get(k) == model.get(k) for k in writes)
    store = home.restart(store, verify_state=state_root)
    view = store.state_view()
    for prefix in (b"", b"\x00", b"a", b"counter"):
        assert list(view.scan(prefix)) == list(model.scan(prefix))
    assert all(view.get(k) == v for k, v in model.scan(b""))
    store.close()


def test_state_cache_starts_over_when_full_and_never_serves_stale_values() -> None:
    backend = MemoryBackend()
    cache = StateCache(limit=3)
    view = StateView(backend, cache)
    backend.write([(L.state_key(b"k%d" % i), b"v%d" % i) for i in range(5)], sync=False)
    assert [view.get(b"k%d" % i) for i in range(5)] == [b"v%d" % i for i in range(5)]
    assert len(cache) <= 3
    assert view.get(b"absent") is None and b"absent" in cache
    cache.applied([(b"absent", b"now"), (b"k4", None)])
    assert view.get(b"absent") == b"now" and view.get(b"k4") is None


def test_recent_blocks_are_served_from_memory_but_not_once_pruned(home: Home) -> None:
    store = home.open()
    steps = build(store, 8)
    head = store.block(8)
    assert head is steps[-1].block  # the object committed, not a new decoding
    assert store.block(8) is head
    old = store.block(2)
    assert old == steps[1].block
    assert store.block(8) is head  # reading an old block did not evict the newest
    store.prune(1)
    assert store.block(7) is None and store.block(8) is head
    store.close()


def test_toy_chain_sanity() -> None:
    """The helpers' expected state is really what committing produces (guards the
    tests above against a helper that agrees with itself)."""
    store = NodeStore.memory()
    build(store, 4)
    assert dict(store.state_view().scan(b""))[b"counter"] == b"4"
    assert [k for k, _ in expected_state(4) if k.startswith(b"k/")] == [
        b"k/%08d" % h for h in (2, 3, 4)
    ]
    assert store.app_hash == state_root(store.state_view())
    assert store.app_hash_at(0) != ZERO_HASH
