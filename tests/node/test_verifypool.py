"""Signature checks in worker processes: only valid txs are noted, the replica's cache
learns them, and a dead worker costs nothing but a re-check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from node.verifypool import VerifyPool, verified_hashes
from protocol import crypto
from protocol.types import Tx

CHAIN = "verify-pool-test"


def _txs(n: int, *, forged_every: int = 0) -> list[Tx]:
    key = crypto.Keypair(bytes([7]) * 32)
    out = []
    for i in range(n):
        tx = Tx.create(key, CHAIN, i, "test", b"body %d" % i)
        if forged_every and i % forged_every == 0:
            tx = Tx(CHAIN, tx.sender, i, "test", b"forged %d" % i, (), tx.signature)
        out.append(tx)
    return out


def test_verified_hashes_keeps_only_valid_txs() -> None:
    good, forged = _txs(2)[0], _txs(1, forged_every=1)[0]
    assert verified_hashes([good.encode(), forged.encode(), b"\x93garbage"]) == [good.hash]


@pytest.fixture
def pool() -> Iterator[VerifyPool]:
    p = VerifyPool(2)
    p.start()
    yield p
    p.close()


def test_pool_notes_valid_txs_and_teaches_the_cache(pool: VerifyPool) -> None:
    txs = _txs(40, forged_every=5)
    cache = crypto.VerifyCache()
    noted = trio.run(pool.check, txs, cache)
    assert noted == 32
    for i, tx in enumerate(txs):
        assert tx._verified(CHAIN) is (i % 5 != 0)
    # Another instance of a valid tx (as decoded from a proposal) verifies from the cache.
    again = Tx.decode(txs[1].encode())
    assert again.verify_signatures(cache) and cache.hits == 1 and cache.misses == 0
    # A forged one was not noted: the replica's own check still refuses it.
    assert not txs[0].verify_signatures(cache)


def test_a_dead_worker_is_replaced_and_nothing_is_noted_wrongly(pool: VerifyPool) -> None:
    for w in pool._all:
        w.process.kill()
        w.process.join()
    txs = _txs(32)
    assert trio.run(pool.check, txs, crypto.VerifyCache()) == 0
    assert pool.failures == 2 and not any(tx._verified(CHAIN) for tx in txs)
    fresh = _txs(32)[::-1]  # new objects, not yet verified
    assert trio.run(pool.check, fresh, crypto.VerifyCache()) == 32


def test_small_batches_stay_on_the_node_thread(pool: VerifyPool) -> None:
    txs = _txs(3)
    assert trio.run(pool.check, txs, crypto.VerifyCache()) == 0
    assert not any(tx._verified(CHAIN) for tx in txs)
