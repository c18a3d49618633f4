"""The store's pending-tx keyspace (p/): the txs a node acked to its clients and has
not seen committed, kept across restarts, bounded, written cheaply. Both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_storage import CHAIN_ID, Home, Recording, build

from node.storage import CorruptStore, NodeStore
from node.storage import layout as L
from protocol import crypto
from protocol.types import Tx

KEY = crypto.Keypair(bytes([9]) * 32)


@pytest.fixture(params=["memory", "leveldb"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Home:
    return Home(request.param, tmp_path)


def txs(n: int, start: int = 0) -> list[Tx]:
    return [Tx.create(KEY, CHAIN_ID, i, "notary.notarise", bytes([0x90 + i % 16])) for i in range(start, start + n)]


def test_pending_txs_round_trip_and_survive_a_restart(home: Home) -> None:
    store = home.open()
    build(store, 2)
    assert store.pending_txs() == [] and store.pending_tx_count == 0
    batch = txs(5)
    store.save_pending_txs(batch[:3])
    store.save_pending_txs(batch[2:])  # the overlap is skipped
    assert sorted(t.hash for t in store.pending_txs()) == sorted(t.hash for t in batch)
    assert store.pending_tx_bytes == sum(len(t.encode()) for t in batch)
    store.forget_pending_txs([batch[0].hash, batch[0].hash, b"\x00" * 32])  # unknown hashes are ignored
    store = home.restart(store)
    assert sorted(t.hash for t in store.pending_txs()) == sorted(t.hash for t in batch[1:])
    assert (store.pending_tx_count, store.pending_tx_bytes) == (4, sum(len(t.encode()) for t in batch[1:]))
    assert store.last_height == 2
    store.check_consistency(deep=True)
    store.close()


def test_a_save_is_one_synced_batch_and_a_forget_one_unsynced_batch(home: Home) -> None:
    rec = Recording(home.backend())
    store = home.open(rec)
    build(store, 1)
    before = len(rec.writes)
    batch = txs(4)
    store.save_pending_txs(batch)
    store.save_pending_txs(batch[:2])  # nothing new: no write at all
    store.forget_pending_txs([t.hash for t in batch[:3]])
    store.forget_pending_txs([batch[0].hash])  # already gone: no write
    writes = rec.writes[before:]
    assert [sync for _, sync in writes] == [True, False]
    assert dict(writes[0][0]) == {L.pending_tx_key(t.hash): t.encode() for t in batch}
    assert dict(writes[1][0]) == {L.pending_tx_key(t.hash): None for t in batch[:3]}
    store.close()


def test_past_the_bound_a_save_raises_and_writes_nothing(home: Home) -> None:
    store = home.open()
    build(store, 1)
    store.max_pending_txs = 3
    store.save_pending_txs(txs(2))
    with pytest.raises(ValueError, match="exceed the store's bound"):
        store.save_pending_txs(txs(2, start=2))
    assert store.pending_tx_count == 2 and len(store.pending_txs()) == 2
    store.forget_pending_txs([txs(1)[0].hash])
    store.save_pending_txs(txs(2, start=2))  # room again
    assert store.pending_tx_count == 3
    store.max_pending_bytes = store.pending_tx_bytes
    with pytest.raises(ValueError, match="bytes"):
        store.save_pending_txs(txs(1, start=9))
    store.close()


def test_the_default_bound_is_the_replicas() -> None:
    from protocol.replica import ReplicaConfig

    config = ReplicaConfig("x")
    assert (NodeStore.max_pending_txs, NodeStore.max_pending_bytes) == (
        config.max_local_pending_txs,
        config.max_local_pending_bytes,
    )


@pytest.mark.parametrize("case", ["undecodable", "wrong key"])
def test_a_damaged_pending_tx_is_reported(home: Home, case: str) -> None:
    store = home.open()
    build(store, 1)
    store.save_pending_txs(txs(1))
    store.close()
    a, b = txs(2)
    raw = b"\x93junk" if case == "undecodable" else b.encode()
    home.damage([(L.pending_tx_key(a.hash), raw)])
    store = home.open()  # the cheap startup check does not read them
    with pytest.raises(CorruptStore, match="pending tx"):
        store.pending_txs()
    with pytest.raises(CorruptStore, match="pending tx"):
        store.check_consistency(deep=True)
    store.close()
