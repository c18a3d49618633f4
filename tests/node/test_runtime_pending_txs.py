"""A real node (LevelDB, libp2p, the replica) stores the txs it acks to its clients
and has them back in its mempool after a restart, although nothing committed them."""

import time

import pytest
import trio
from test_runtime_inprocess import free_base_port, wait_for

from node.config import Config
from node.home import Home
from node.keys import Keystore
from node.runtime import Node
from node.storage import NodeStore
from node.testnet import init_testnet
from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.types import Tx

pytestmark = pytest.mark.slow


async def test_acked_txs_are_back_in_the_mempool_after_a_restart(tmp_path):
    out = tmp_path / "tn"
    init_testnet(out, 4, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    home = Home(out / "node0")  # alone: 1 of 4 validators, so nothing it acks can commit

    def node() -> Node:
        return Node(home, Config.load(home, env={"EKKLESIA_API_LISTEN": "127.0.0.1:0"}))

    alice = Keystore(out / "keys").keypair("alice", None)
    to = crypto.address(crypto.Keypair(bytes(32)).public_key)
    first = node()
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        await wait_for(lambda: first.replica is not None and not first.replica.syncing, 30)
        txs = [Tx.create(alice, first.chain_id, n, "transfer", Transfer(to, 1 + n, "").encode()) for n in range(3)]
        assert [s.status for s in (await first.submit_txs(txs))] == ["pending"] * 3
        first.stop()
    with NodeStore.open_leveldb(home.data_dir / "store") as store:
        assert sorted(t.hash for t in store.pending_txs()) == sorted(t.hash for t in txs)
        assert store.last_height == 0

    second = node()
    async with trio.open_nursery() as nursery:
        await nursery.start(second.run)
        await wait_for(lambda: second.replica is not None and not second.replica.syncing, 30)
        assert [second.tx(t.hash)[0].status for t in txs] == ["pending"] * 3
        nxt = Tx.create(alice, second.chain_id, 3, "transfer", Transfer(to, 9, "").encode())
        assert [s.status for s in (await second.submit_txs([nxt]))] == ["pending"]  # the client's nonces go on
        assert second.store is not None and second.store.pending_tx_count == 4
        second.stop()
