"""Real nodes (LevelDB, libp2p on 127.0.0.1, the replica) in one trio process:
they commit blocks with transactions and agree on every block and app hash."""

import socket
import time
from pathlib import Path

import pytest
import trio

from node.config import Config
from node.home import Home
from node.runtime import Node
from node.testnet import init_testnet
from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.types import Tx

pytestmark = pytest.mark.slow


def free_base_port() -> int:
    """A base port whose p2p and API ports (base+10i, base+10i+1) are free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 60_000:
            continue
        ok = True
        for off in range(0, 40):
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", base + off))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def make_nodes(tmp_path: Path, n: int) -> list[Node]:
    out = tmp_path / "tn"
    init_testnet(out, n, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    nodes = []
    for i in range(n):
        home = Home(out / f"node{i}")
        cfg = Config.load(home, env={"EKKLESIA_API_LISTEN": "127.0.0.1:0"})
        nodes.append(Node(home, cfg))
    return nodes


async def wait_for(pred, timeout: float) -> None:
    with trio.fail_after(timeout):
        while not pred():
            await trio.sleep(0.1)


async def test_four_nodes_commit_transactions_and_agree(tmp_path, autojump_clock=None):
    nodes = make_nodes(tmp_path, 4)
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        await wait_for(lambda: min(n.height for n in nodes) >= 2, 60)
        sender = crypto.Keypair(bytes(32))
        keys = nodes[0].home.root.parent / "keys"
        from node.keys import Keystore

        alice = Keystore(keys).keypair("alice", None)
        to = crypto.address(sender.public_key)
        statuses = []
        for nonce in range(5):
            tx = Tx.create(alice, nodes[0].chain_id, nonce, "transfer", Transfer(to, 10 + nonce, "").encode())
            statuses.append(await nodes[0].submit_tx(tx, wait_commit=False, timeout_s=0))
        assert [s.status for s in statuses] == ["pending"] * 5
        last = await nodes[0].submit_tx(
            Tx.create(alice, nodes[0].chain_id, 5, "transfer", Transfer(to, 1, "").encode()),
            wait_commit=True, timeout_s=30,
        )
        assert last.status == "committed" and last.code == 0
        target = max(n.height for n in nodes)
        await wait_for(lambda: min(n.height for n in nodes) >= target, 30)
        for h in range(1, target + 1):
            blocks = {n.block(h)[0].hash for n in nodes}
            app_hashes = {n.store.app_hash_at(h) for n in nodes}
            assert len(blocks) == 1 and len(app_hashes) == 1, f"disagreement at height {h}"
        committed = [nodes[0].tx(s.hash)[0] for s in statuses]
        assert all(s.status == "committed" and s.code == 0 for s in committed)
        metrics = nodes[0].metrics_text().decode()
        height_line = next(line for line in metrics.splitlines() if line.startswith("ekklesia_consensus_height "))
        assert float(height_line.split()[1]) >= target
        assert "ekklesia_txs_committed_total 6.0" in metrics

        def sample(name: str) -> float:
            return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name))

        # Other validators' proposals and votes were timed against the round start.
        assert sample("ekklesia_consensus_proposal_delay_seconds_count") >= 1
        assert sample('ekklesia_consensus_vote_delay_seconds_count{type="prevote"}') >= 3
        assert sample('ekklesia_consensus_vote_delay_seconds_count{type="precommit"}') >= 3
        for node in nodes:
            node.stop()
