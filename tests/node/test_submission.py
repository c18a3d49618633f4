"""Client submissions: admitted in chunks that let the rest of the node run, acked
only once stored durably (one shared fsync off the trio thread), and refused with a
retry signal (HTTP 429) while the mempool is above its high-water mark."""

import time

import pytest
import trio
from test_runtime_inprocess import free_base_port, wait_for

from node.config import Config
from node.home import Home
from node.keys import Keystore
from node.runtime import ADMIT_CHUNK, BUSY_REASON, Node
from node.testnet import init_testnet
from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.types import Tx

pytestmark = pytest.mark.slow


SLOW_BLOCKS = {"EKKLESIA_CONSENSUS_MIN_BLOCK_INTERVAL_MS": "8000"}  # the mempool holds still meanwhile


def one_node(tmp_path, **env: str) -> Node:
    out = tmp_path / "tn"
    init_testnet(out, 1, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    home = Home(out / "node0")
    return Node(home, Config.load(home, env={"EKKLESIA_API_LISTEN": "127.0.0.1:0", **env}))


def transfers(node: Node, nonces: range) -> list[Tx]:
    alice = Keystore(node.home.root.parent / "keys").keypair("alice", None)
    to = crypto.address(crypto.Keypair(bytes(32)).public_key)
    return [Tx.create(alice, node.chain_id, n, "transfer", Transfer(to, 1, "").encode()) for n in nonces]


async def test_a_large_batch_is_admitted_in_chunks_and_in_order(tmp_path):
    node = one_node(tmp_path, EKKLESIA_MEMPOOL_MAX_PER_SENDER="1000", **SLOW_BLOCKS)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.height >= 1, 30)
        ran = 0

        async def other_task() -> None:
            nonlocal ran
            while True:
                ran += 1
                await trio.sleep(0)

        nursery.start_soon(other_task)
        await trio.sleep(0)
        txs = transfers(node, range(2 * ADMIT_CHUNK + 44))
        before = ran
        statuses = await node.submit_txs(txs)
        assert [s.status for s in statuses] == ["pending"] * len(txs)  # nonce order survived the chunking
        assert ran >= before + 2, (ran, before)
        node.stop()
        nursery.cancel_scope.cancel()


async def test_submissions_are_refused_for_retry_above_the_high_water_mark(tmp_path):
    node = one_node(tmp_path, EKKLESIA_MEMPOOL_HIGH_WATER_TXS="4", **SLOW_BLOCKS)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.height >= 1, 30)
        txs = transfers(node, range(7))
        first = await node.submit_txs(txs[:5])  # the mark is checked before a batch, not within it
        assert [s.status for s in first] == ["pending"] * 5, first
        again = await node.submit_txs(txs[5:6])
        assert again[0].status == "rejected" and again[0].retry and again[0].reason == BUSY_REASON
        single = await node.submit_tx(txs[5], wait_commit=False, timeout_s=0)
        assert single.retry and single.reason == BUSY_REASON
        assert 'ekklesia_mempool_rejected_total{reason="busy"}' in node.metrics_text().decode()
        await wait_for(lambda: len(node.replica.mempool) == 0, 30)  # the next block took them
        late = await node.submit_tx(txs[5], wait_commit=True, timeout_s=30)
        assert late.status == "committed" and not late.retry
        node.stop()
        nursery.cancel_scope.cancel()


async def test_the_ack_waits_for_one_shared_fsync_of_the_stored_txs(tmp_path):
    node = one_node(tmp_path, EKKLESIA_MEMPOOL_MAX_PER_SENDER="1000", **SLOW_BLOCKS)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.height >= 1, 30)
        store = node.store
        flushed: list[set[bytes]] = []  # the stored tx hashes each fsync made durable
        real_flush = store.flush

        def flush() -> None:
            flushed.append(set(store._pending))
            real_flush()

        store.flush = flush
        txs = transfers(node, range(10))
        statuses = await node.submit_txs(txs)
        assert [s.status for s in statuses] == ["pending"] * 10
        assert len(flushed) == 1 and {tx.hash for tx in txs} <= flushed[0], "acked after one flush covering all"
        # Concurrent single submissions (five senders): each acked only once durable,
        # and they share fsyncs.
        keys = Keystore(node.home.root.parent / "keys")
        to = crypto.address(crypto.Keypair(bytes(32)).public_key)
        singles = [Tx.create(keys.keypair(name, None), node.chain_id, 0, "transfer", Transfer(to, 1, "").encode())
                   for name in ("registrar", "bob", "carol", "dave")]
        before = len(flushed)

        async def one(tx: Tx) -> None:
            st = await node.submit_tx(tx, wait_commit=False, timeout_s=0)
            assert st.status == "pending", st
            assert any(tx.hash in done for done in flushed), "acked before a flush covered it"

        async with trio.open_nursery() as inner:
            for tx in singles:
                inner.start_soon(one, tx)
        assert 1 <= len(flushed) - before <= 2, flushed[before:]
        node.stop()
        nursery.cancel_scope.cancel()


async def test_with_verify_workers_signatures_are_checked_off_the_node_thread(tmp_path):
    node = one_node(tmp_path, EKKLESIA_MEMPOOL_MAX_PER_SENDER="1000", EKKLESIA_NODE_VERIFY_WORKERS="1",
                    **SLOW_BLOCKS)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.height >= 1, 30)
        txs = transfers(node, range(2 * ADMIT_CHUNK))
        forged = Tx(node.chain_id, txs[-1].sender, len(txs), "transfer", txs[0].body, (), txs[0].signature)
        misses = node.cache.misses
        statuses = await node.submit_txs([*txs, forged])
        assert [s.status for s in statuses] == ["pending"] * len(txs) + ["rejected"]
        assert "signature" in (statuses[-1].reason or "")
        assert all(tx._verified(node.chain_id) for tx in txs)
        assert node.cache.misses == misses + 1  # only the forged tx was checked on the node's thread
        node.stop()
        nursery.cancel_scope.cancel()
