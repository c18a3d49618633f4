"""Replicas (engine + mempool + governance) in the deterministic cluster: commits,
transactions, crashes with block sync, partitions, and byte-for-byte determinism."""

import os
import subprocess
import sys

import pytest

from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.types import Tx
from simulations.cluster import Cluster


def transfers(c: Cluster, count: int, start_ms: int, every_ms: int) -> None:
    nonces: dict[int, int] = {}

    def submit(i: int) -> None:
        a = i % len(c.account_keys)
        nonce = nonces.get(a, 0)
        nonces[a] = nonce + 1
        to = crypto.address(c.account_keys[(a + 1) % len(c.account_keys)].public_key)
        tx = Tx.create(c.account_keys[a], c.chain_id, nonce, "transfer", Transfer(to, 5, "").encode())
        names = sorted(c.nodes)
        c.nodes[names[i % len(names)]].submit([tx])

    for i in range(count):
        c.sched.at(start_ms + i * every_ms, submit, i)


def acked_and_lost(c: Cluster) -> tuple[int, int]:
    acked = {h for n in c.nodes.values() for h in n.acked}
    return len(acked), len([h for h in acked if h not in c.committed_txs])


@pytest.mark.parametrize("n", [1, 4, 7])
def test_validators_commit_the_same_chain(n):
    c = Cluster(n, seed=11)
    c.start()
    c.run_until(10_000)
    heights = c.heights()
    assert min(heights.values()) >= 10
    assert c.forks() == []
    top = min(heights.values())
    assert len({c.commits[top][name] for name in c.nodes}) == 1


def test_submitted_transactions_are_committed_once_and_none_is_lost():
    c = Cluster(4, seed=5)
    transfers(c, 120, 500, 25)
    c.start()
    c.run_until(15_000)
    acked, lost = acked_and_lost(c)
    assert acked == 120 and lost == 0
    seen = [tx.hash for n in [c.nodes["n0"]] for b, _ in n.disk.blocks.values() for tx in b.txs]
    assert len(seen) == len(set(seen)) == 120


def test_minority_cannot_commit_while_the_majority_can_and_heal_converges():
    c = Cluster(4, seed=2)
    c.start()
    c.run_until(3_000)
    c.net.partition([["n0"], ["n1", "n2", "n3"]])
    stuck = c.nodes["n0"].disk.height
    c.run_until(10_000)
    assert c.nodes["n0"].disk.height <= stuck + 1  # at most the height already decided in flight
    assert min(c.nodes[m].disk.height for m in ("n1", "n2", "n3")) > stuck + 5
    c.net.heal()
    c.run_until(20_000)
    heights = c.heights()
    assert max(heights.values()) - min(heights.values()) <= 1
    assert c.forks() == []


def test_even_split_stops_everyone_and_heal_resumes():
    c = Cluster(4, seed=4)
    c.start()
    c.run_until(3_000)
    c.net.partition([["n0", "n1"], ["n2", "n3"]])
    c.run_until(4_000)
    frozen = c.heights()
    c.run_until(12_000)
    assert max(c.heights().values()) <= max(frozen.values()) + 1
    c.net.heal()
    c.run_until(20_000)
    assert min(c.heights().values()) > max(frozen.values()) + 5
    assert c.forks() == []


def test_crashed_validator_restarts_syncs_and_keeps_its_acknowledged_txs():
    c = Cluster(4, seed=9)
    transfers(c, 80, 500, 50)
    c.start()
    c.sched.at(2_000, c.nodes["n1"].crash)
    c.sched.at(8_000, c.nodes["n1"].boot)
    c.run_until(20_000)
    heights = c.heights()
    assert max(heights.values()) - heights["n1"] <= 1
    assert c.forks() == []
    assert acked_and_lost(c)[1] == 0
    conflicting = [e for e in c.trace if e[2] == "penalise" and "conflict" in str(e)]
    assert conflicting == []


def _trace_hash(seed: int) -> str:
    c = Cluster(4, seed=seed)
    transfers(c, 30, 200, 40)
    c.start()
    c.sched.at(2_000, c.net.isolate, "n2")
    c.sched.at(4_000, c.net.heal)
    c.run_until(8_000)
    return c.trace.hash


def test_same_seed_same_trace_and_different_seed_different_trace():
    assert _trace_hash(1) == _trace_hash(1)
    assert _trace_hash(1) != _trace_hash(2)


def test_trace_is_identical_across_processes_with_different_hash_seeds():
    code = "from tests.simulations.test_cluster import _trace_hash; print(_trace_hash(7))"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONHASHSEED": s},
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for s in ("0", "1", "12345")
    }
    assert len(outs) == 1 and outs.pop() == _trace_hash(7)
