"""The simulator's building blocks: seeded streams, virtual-time scheduling, network model."""

import os
import random
import subprocess
import sys

import pytest

from simulations.network import LinkModel, Network
from simulations.rng import SeedTree
from simulations.scheduler import Scheduler
from simulations.trace import Trace

NODES = ["n0", "n1", "n2", "n3", "n4"]


def test_seed_tree_streams_are_independent_and_reproducible():
    a, b = SeedTree(7), SeedTree(7)
    assert [a.rng("net").random() for _ in range(3)] == [b.rng("net").random() for _ in range(3)]
    assert a.rng("net").random() != a.rng("faults").random()
    assert SeedTree(8).rng("net").random() != a.rng("net").random()
    assert a.child("n1").rng("x").random() != a.child("n2").rng("x").random()


def test_seed_tree_does_not_depend_on_the_process_hash_seed():
    code = "from simulations.rng import SeedTree; print(SeedTree(42).child('n3').rng('w').getrandbits(64))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, text=True, check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1


def test_scheduler_runs_in_time_order_and_ties_in_scheduling_order():
    s = Scheduler()
    seen = []
    s.at(20, seen.append, "late")
    s.at(10, seen.append, "first")
    s.at(10, seen.append, "second")
    cancelled = s.at(15, seen.append, "never")
    cancelled.cancel()
    s.run_until(100)
    assert seen == ["first", "second", "late"]
    assert s.now_ms == 100
    with pytest.raises(ValueError):
        s.at(50, seen.append, "past")


def test_scheduler_event_budget_stops_runaway_loops():
    s = Scheduler(max_events=100)

    def again():
        s.after(1, again)

    s.after(0, again)
    with pytest.raises(RuntimeError, match="event budget"):
        s.run_until(10_000)


def reachable(net, src):
    return sorted(dst for dst, _ in net.broadcast(src))


def test_full_mesh_reaches_everyone_once_without_loss():
    net = Network(NODES, random.Random(1), LinkModel(base_ms=5, jitter_ms=0))
    assert net.broadcast("n0") == [(n, 5) for n in NODES[1:]]


def test_isolate_majority_minority_and_heal():
    net = Network(NODES, random.Random(1))
    net.isolate("n2")
    assert reachable(net, "n2") == []
    assert reachable(net, "n0") == ["n1", "n3", "n4"]
    net.partition([["n0", "n1"], ["n2", "n3", "n4"]])
    assert reachable(net, "n0") == ["n1"]
    assert reachable(net, "n3") == ["n2", "n4"]
    net.heal()
    assert reachable(net, "n0") == ["n1", "n2", "n3", "n4"]


def test_bridge_node_relays_gossip_with_one_more_hop():
    net = Network(NODES, random.Random(1), LinkModel(base_ms=10, jitter_ms=0))
    net.partition([["n0", "n1", "n2"], ["n2", "n3", "n4"]])  # n2 is in both
    delays = dict(net.broadcast("n0"))
    assert delays == {"n1": 10, "n2": 10, "n3": 20, "n4": 20}
    assert net.unicast("n0", "n3") == []  # streams need a direct link


def test_one_way_cut_blocks_one_direction_only():
    net = Network(["a", "b"], random.Random(1))
    net.cut("a", "b", one_way=True)
    assert reachable(net, "a") == []
    assert reachable(net, "b") == ["a"]


def test_drop_and_duplicate_rates_follow_the_model():
    net = Network(["a", "b"], random.Random(3), LinkModel(drop_ppm=200_000, duplicate_ppm=100_000))
    for _ in range(5000):
        net.broadcast("a")
    assert 800 < net.stats.dropped < 1200
    assert 300 < net.stats.duplicated < 500


def test_same_seed_same_deliveries():
    def run(seed):
        net = Network(NODES, random.Random(seed), LinkModel(drop_ppm=100_000, distribution="exponential"))
        return [net.broadcast(n) for n in NODES * 5]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_trace_hash_depends_on_every_event():
    def trace(events):
        t = Trace()
        for e in events:
            t.record(*e)
        return t.hash

    base = [(1, "n0", "commit", 1, b"\x01"), (2, "n1", "commit", 1, b"\x01")]
    assert trace(base) == trace(list(base))
    assert trace(base) != trace(base[::-1])
    assert trace(base) != trace([base[0], (2, "n1", "commit", 1, b"\x02")])
