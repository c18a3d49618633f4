"""The workload builds valid governance transactions of every kind, and they take
effect: identities appear, laws pass and execute, marriages are recorded."""

import tomllib
from collections import Counter

from protocol.governance import keys, queries
from protocol.governance.proposals import Status
from protocol.governance.unions import UnionKind
from simulations import runner
from simulations.scenario import parse

RUN = """
duration_s = 16
[validators]
count = 4
[workload]
rate = 25
clients = 8
residents = 6
drain_s = 4
[liveness]
heights = 5
within_s = 10
"""


def test_every_kind_is_accepted_committed_and_takes_effect():
    s = parse(tomllib.loads(RUN), source="t.toml")
    cluster, _, workload = runner.build(s, seed=2)
    cluster.start()
    cluster.run_until(s.duration_ms)
    kinds = Counter(x.kind for x in workload.submissions if x.accepted)
    assert set(kinds) == {"transfer", "notarise", "register", "proposal", "vote", "marriage"}
    assert all(x.accepted for x in workload.submissions), Counter(x.reason for x in workload.submissions)
    committed = {tx.hash for b, _ in cluster.nodes["n0"].disk.blocks.values() for tx in b.txs}
    assert set(workload.acked) <= committed
    state = cluster.nodes["n0"].disk.state
    assert queries.residents(state) == 6
    registered = sum(1 for x in workload.submissions if x.kind == "register")
    assert registered > 0 and len(list(state.scan(keys.IDENTITY))) == 6 + registered
    props = queries.proposals(state)
    assert len(props) == kinds["proposal"]
    assert {p.status for p in props} & {Status.VOTING, Status.QUEUED, Status.EXECUTED}
    assert any(p.status == Status.EXECUTED for p in props)  # short tracks: laws pass within the run
    marriages = [u for i in range(1, kinds["marriage"] + 1) if (u := queries.union(state, i)) is not None]
    assert marriages and all(u.kind == UnionKind.MARRIAGE and len(u.parties) == 2 for u in marriages)


def test_the_workload_is_a_function_of_the_seed():
    s = parse(tomllib.loads(RUN.replace("duration_s = 16", "duration_s = 12")), source="t.toml")

    def subs(seed):
        cluster, _, workload = runner.build(s, seed)
        cluster.start()
        cluster.run_until(6_000)
        return [(x.t_ms, x.kind, x.tx_hash) for x in workload.submissions]

    assert subs(4) == subs(4)
    assert subs(4) != subs(5)


def test_a_client_whose_home_node_is_down_retries_later_without_skipping_nonces():
    s = parse(tomllib.loads(RUN + """
[[faults]]
at_s = 2
action = "crash"
nodes = ["n0", "n1"]
[[faults]]
at_s = 5
action = "restart"
nodes = ["n0", "n1"]
"""), source="t.toml")
    cluster, _, workload = runner.build(s, seed=2)
    cluster.start()
    cluster.run_until(s.duration_ms)
    unavailable = [x for x in workload.submissions if x.reason == "home node unavailable"]
    assert unavailable and {x.node for x in unavailable} == {"n0", "n1"}
    assert all(2_000 <= x.t_ms <= 5_000 for x in unavailable)
    state = cluster.nodes["n2"].disk.state
    for client in workload.clients:  # every acknowledged nonce was used exactly once
        assert queries.account_nonce(state, client.key.public_key) == client.nonce
