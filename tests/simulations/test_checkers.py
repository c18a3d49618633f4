"""The checkers fail when they should: each is shown a run with the fault it exists
to catch (planted in the recorded observations, or produced by the cluster)."""

import dataclasses
import tomllib

from protocol import crypto
from protocol.governance.notary import Notarise
from protocol.types import Tx, make_block
from simulations import checkers, runner
from simulations.scenario import parse

BASE = """
duration_s = 8
[validators]
count = 4
[workload]
rate = 10
drain_s = 3
[liveness]
heights = 3
within_s = 5
"""


def build(extra="", seed=3):
    s = parse(tomllib.loads(BASE + extra), source="t.toml")
    cluster, _injector, workload = runner.build(s, seed)
    cluster.start()
    cluster.run_until(s.duration_ms)
    return s, cluster, workload


def test_a_clean_run_passes_every_checker():
    s, cluster, workload = build()
    r = checkers.check(cluster, s, workload)
    assert (r.safety.status, r.validity.status, r.liveness.status) == ("ok", "ok", "ok")
    assert r.accountability.status == "not-applicable" and r.lost.status == "ok"
    assert r.forks == [] and r.evidence == [] and r.lost_txs == []


def test_safety_sees_a_different_block_or_app_hash_at_one_height():
    _s, cluster, _ = build()
    block_hash, app = cluster.commits[3]["n2"]
    cluster.commits[3]["n2"] = (crypto.sha256(block_hash), app)
    verdict, forks = checkers.check_safety(cluster)
    assert verdict.status == "violated" and forks == [3]
    cluster.commits[3]["n2"] = (block_hash, crypto.sha256(app))
    verdict, forks = checkers.check_safety(cluster)
    assert verdict.status == "violated" and forks == [] and "app hashes" in verdict.details[0]


def test_safety_ignores_what_faulty_nodes_committed():
    _s, cluster, _ = build()
    block_hash, app = cluster.commits[3]["n2"]
    cluster.commits[3]["n2"] = (crypto.sha256(block_hash), app)
    cluster.faulty.add("n2")
    assert checkers.check_safety(cluster)[0].status == "ok"


def _replace_block(node, h, txs):
    block, commit = node.disk.blocks[h]
    hd = block.header
    node.disk.blocks[h] = (
        make_block(chain_id=hd.chain_id, height=hd.height, time_ms=hd.time_ms, prev_hash=hd.prev_hash,
                   app_hash=hd.app_hash, validators_hash=hd.validators_hash, proposer=hd.proposer, txs=txs,
                   last_commit=block.last_commit, evidence=block.evidence),
        commit,
    )


def test_validity_sees_bad_signatures_and_a_tx_committed_twice():
    _, cluster, _ = build()
    node = cluster.nodes["n1"]
    heights = sorted(h for h in node.disk.blocks if node.disk.blocks[h][0].txs)
    tx = node.disk.blocks[heights[0]][0].txs[0]
    _replace_block(node, heights[1], (tx,))
    v = checkers.check_validity(cluster)
    assert v.status == "violated" and "committed at heights" in v.details[0]

    _s, cluster, _ = build()
    node = cluster.nodes["n1"]
    h = max(node.disk.blocks)
    forged = dataclasses.replace(Tx.create(cluster.account_keys[0], "sim", 99, "transfer", b"x"), signature=bytes(64))
    _replace_block(node, h, (forged,))
    v = checkers.check_validity(cluster)
    assert v.status == "violated" and any("does not verify" in d for d in v.details)


def test_liveness_fails_when_the_cluster_never_recovers():
    s, cluster, _workload = build("""
[[faults]]
at_s = 1
action = "partition"
groups = [["n0", "n1"], ["n2", "n3"]]
[expect]
liveness = "ok"
""")
    v = checkers.check_liveness(cluster, s)
    assert v.status == "violated" and len(v.details) == 4
    assert checkers.check_liveness(cluster, dataclasses.replace(
        s, expect=dataclasses.replace(s.expect, liveness="not-checked"))).status == "not-checked"


def test_liveness_counts_only_nodes_that_are_up():
    s, cluster, _ = build("""
[[faults]]
at_s = 1
action = "crash"
node = "n3"
""")
    assert checkers.check_liveness(cluster, s).status == "ok"  # n3 is down, the other three go on
    assert cluster.nodes["n3"].disk.height < cluster.nodes["n0"].disk.height


def test_accountability_needs_more_than_a_third_named_after_a_fork_and_never_an_honest_one():
    _s, cluster, _ = build()
    assert checkers.check_accountability(cluster, [], []).status == "not-applicable"
    v = checkers.check_accountability(cluster, [5], [])
    assert v.status == "violated" and "nobody" in v.details[0]
    one = [checkers.EvidenceItem("n1", "duplicate-vote", 5, 0, "n0")]
    cluster.faulty |= {"n1", "n2"}
    assert checkers.check_accountability(cluster, [5], one).status == "violated"  # 10 of 40 power
    two = [*one, checkers.EvidenceItem("n2", "fork-commit", 5, 0, "checker")]
    assert checkers.check_accountability(cluster, [5], two).status == "ok"  # 20 of 40 > 1/3
    framed = [checkers.EvidenceItem("n3", "duplicate-vote", 5, 0, "n0")]
    v = checkers.check_accountability(cluster, [], framed)
    assert v.status == "violated" and "honest validator n3" in v.details[0]


CUT_OFF_CRASH = """
[[faults]]
at_s = 0.5
action = "isolate"
node = "n0"
[[faults]]
at_s = 4
action = "crash"
node = "n0"
[[faults]]
at_s = 4.5
action = "heal"
[[faults]]
at_s = 5
action = "restart"
node = "n0"
[expect]
liveness = "not-checked"
"""


def test_a_tx_acknowledged_by_a_node_that_crashes_while_cut_off_survives_on_its_disk():
    _s, cluster, workload = build(CUT_OFF_CRASH)
    verdict, lost, pending = checkers.check_lost(cluster, workload)
    acked_by_n0 = {h for h, (t, _, node) in workload.acked.items() if node == "n0" and 500 < t < 4_000}
    committed = {tx.hash for b, _ in cluster.nodes["n1"].disk.blocks.values() for tx in b.txs}
    assert acked_by_n0 and acked_by_n0 <= committed | set(pending)
    assert lost == [] and verdict.status == "ok"


def test_a_tx_acknowledged_by_a_node_that_crashes_while_cut_off_and_loses_its_disk_is_lost():
    s = parse(tomllib.loads(BASE + CUT_OFF_CRASH), source="t.toml")
    cluster, _injector, workload = runner.build(s, 3)
    cluster.start()
    cluster.run_until(4_200)  # n0 is down: its stored pending txs go with its disk
    assert not cluster.nodes["n0"].up and cluster.nodes["n0"].disk.pending_txs
    cluster.nodes["n0"].disk.pending_txs.clear()
    cluster.run_until(s.duration_ms)
    verdict, lost, _pending = checkers.check_lost(cluster, workload)
    acked_by_n0 = {h for h, (t, _, node) in workload.acked.items() if node == "n0" and 500 < t < 4_000}
    assert acked_by_n0 and acked_by_n0 <= set(lost)
    assert verdict.status == "violated" and "in no block and no mempool" in verdict.details[0]
    assert checkers.HOLDER_CRASHED in verdict.details[0]


def test_an_uncommitted_tx_still_in_a_mempool_is_pending_not_lost():
    s, cluster, workload = build()
    fresh = crypto.Keypair(bytes(range(32)))
    waiting = Tx.create(fresh, "sim", 0, "notary.notarise", Notarise(bytes(32), "late").encode())
    [answer] = cluster.nodes["n0"].submit([waiting])  # after the run: nobody proposes it any more
    assert answer.accepted
    gone = Tx.create(fresh, "sim", 1, "notary.notarise", Notarise(bytes(32), "gone").encode())
    workload.acked[waiting.hash] = (s.duration_ms, "notarise", "n0")
    workload.acked[gone.hash] = (s.duration_ms, "notarise", "n0")  # acknowledged, held nowhere
    verdict, lost, pending = checkers.check_lost(cluster, workload)
    assert pending == [waiting.hash] and lost == [gone.hash]
    assert verdict.status == "violated" and len(verdict.details) == 1
