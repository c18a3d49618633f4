"""The fault timeline acts on the cluster at the stated virtual times, every shape of
partition included, and random schedules always heal what they break."""

import random
import tomllib

import pytest

from simulations import runner
from simulations.cluster import Cluster
from simulations.faults import FaultInjector, random_faults
from simulations.scenario import Fault, parse


def cluster_with(faults, n=4, until=None):
    c = Cluster(n, seed=3)
    inj = FaultInjector(c)
    inj.install(faults)
    c.start()
    if until is not None:
        c.run_until(until)
    return c, inj


def reach(c, src):
    return sorted(dst for dst, _ in c.net.broadcast(src))


def test_partition_shapes_are_applied_when_due_and_heal_restores_everything():
    c, inj = cluster_with([
        Fault(1_000, "partition", groups=(("n0", "n1", "n2"), ("n2", "n3"))),  # n2 bridges
        Fault(2_000, "partition", groups=(("n0", "n1", "n2"), ("n1", "n2", "n3"))),  # overlapping majorities
        Fault(3_000, "heal"),
        Fault(3_000, "cut", src="n0", dst="n1", one_way=True),
        Fault(4_000, "heal"),
    ], until=999)
    assert not c.net.partitioned
    c.run_until(1_000)
    assert reach(c, "n0") == ["n1", "n2", "n3"]  # relayed by the bridge
    assert c.net.unicast("n0", "n3") == []  # but no direct stream
    c.run_until(2_000)
    assert c.net.link_up("n1", "n3") and not c.net.link_up("n0", "n3")
    c.run_until(3_000)
    assert not c.net.link_up("n0", "n1") and c.net.link_up("n1", "n0")
    c.run_until(4_000)
    assert not c.net.partitioned
    assert [p.what for p in inj.periods] == ["partition", "partition"]
    assert (inj.periods[0].start_ms, inj.periods[0].end_ms) == (1_000, 3_000)
    assert [a for _, a, _ in inj.applied] == ["partition", "partition", "heal", "cut", "heal"]


def test_crash_loses_volatile_state_and_restart_boots_from_the_disk():
    c, _inj = cluster_with([Fault(2_000, "crash", nodes=("n1",)), Fault(5_000, "restart", nodes=("n1",))], until=2_000)
    node = c.nodes["n1"]
    assert not node.up
    stored, sign_state = node.disk.height, node.disk.sign_state
    assert stored > 0 and sign_state is not None
    c.run_until(4_999)
    assert node.disk.height == stored and not node.up
    c.run_until(8_000)
    assert node.up and node.disk.height > stored
    assert [e[2] for e in c.trace if e[1] == "n1" and e[2] in ("boot", "crash")] == ["boot", "crash", "boot"]


def test_pause_holds_deliveries_until_resume_without_losing_them():
    c, _inj = cluster_with([Fault(1_000, "pause", nodes=("n2",)), Fault(4_000, "resume", nodes=("n2",))], until=3_900)
    node = c.nodes["n2"]
    assert node.up and node.paused and len(node._held) > 0
    frozen = node.disk.height
    assert c.nodes["n0"].disk.height > frozen + 3  # the other three go on without it
    c.run_until(8_000)
    assert not node.paused and node._held == []
    assert abs(node.disk.height - c.nodes["n0"].disk.height) <= 1


def test_skew_moves_one_node_clock():
    c, _ = cluster_with([Fault(1_000, "skew", nodes=("n3",), skew_ms=-700)], until=1_000)
    assert c.nodes["n3"].now == c.nodes["n0"].now - 700


def test_loss_changes_the_default_link_and_is_a_shaded_period():
    c, inj = cluster_with([Fault(1_000, "loss", drop_ppm=500_000), Fault(3_000, "loss")], until=3_500)
    assert c.net.default.drop_ppm == 0 and c.net.stats.dropped > 0
    assert [(p.what, p.start_ms, p.end_ms) for p in inj.periods] == [("loss", 1_000, 3_000)]


def test_at_proposer_names_the_validator_proposing_now():
    c, inj = cluster_with([], until=2_500)
    name = inj.resolve("@proposer")
    assert name in c.nodes
    inj.apply(Fault(2_500, "crash", nodes=("@proposer",)))
    assert not c.nodes[name].up
    inj.apply(Fault(2_600, "restart", nodes=("@proposer",)))  # the same node, not a new lookup
    assert c.nodes[name].up


@pytest.mark.parametrize("seed", range(20))
def test_random_schedules_heal_everything_they_break(seed):
    names = [f"n{i}" for i in range(5)]
    faults = random_faults(random.Random(seed), names, 1_000, 9_000, episodes=3)
    assert faults == sorted(faults, key=lambda f: f.at_ms)
    assert all(1_000 <= f.at_ms < 9_000 for f in faults)
    c, inj = cluster_with(faults, n=5, until=9_000)
    assert not c.net.partitioned and c.net.default.drop_ppm == 0
    assert all(n.up and not n.paused and n.skew_ms == 0 for n in c.nodes.values())
    assert all(p.end_ms is not None for p in inj.periods)


def test_random_schedules_draw_every_shape():
    actions = set()
    shapes = set()
    for seed in range(60):
        for f in random_faults(random.Random(seed), [f"n{i}" for i in range(7)], 0, 60_000, episodes=3):
            actions.add(f.action)
            if f.action == "partition":
                overlap = set(f.groups[0]) & set(f.groups[1])
                shapes.add("bridge" if len(overlap) == 1 else "overlap" if overlap else "split")
    assert actions == {"partition", "isolate", "cut", "heal", "crash", "restart", "pause", "resume", "loss", "skew"}
    assert shapes == {"bridge", "overlap", "split"}


def test_per_link_latency_models_come_from_the_scenario():
    s = parse(tomllib.loads("""
duration_s = 5
[validators]
count = 3
[network]
latency_ms = 5
jitter_ms = 0
[[network.links]]
from = "n0"
to = "*"
latency_ms = 300
jitter_ms = 0
drop = 0.5
[expect]
liveness = "not-checked"
"""), source="t.toml")
    c, _, _ = runner.build(s, seed=1)
    assert c.net.links[("n0", "n1")].base_ms == 300 and c.net.links[("n0", "n1")].drop_ppm == 500_000
    assert ("n1", "n0") not in c.net.links
    assert c.net.unicast("n1", "n0") == [5]
    delays = [d for _ in range(200) for d in c.net.unicast("n0", "n2")]
    assert set(delays) == {300} and 60 < len(delays) < 140
