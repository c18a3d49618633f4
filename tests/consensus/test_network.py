"""Whole-network scenarios with honest (possibly crashing or partitioned) validators."""

from __future__ import annotations

import itertools

import pytest

from protocol.consensus import ConsensusConfig, ProposerSchedule, block_time_ms
from protocol.validators import ValidatorSet

from .harness import GENESIS_MS, Net, keypair, make_tx


def index_of(net: Net, pubkey: bytes) -> int:
    return next(i for i, k in enumerate(net.keys) if k.public_key == pubkey)


def check_chain(net: Net, upto: int) -> None:
    """Agreement, no double signs, and each block's time is the median rule's,
    strictly after its parent's."""
    net.check_agreement()
    net.check_no_double_sign()
    node = net.honest()[0]
    prev_time = GENESIS_MS - 1
    for h in range(1, upto + 1):
        block, commit = node.chain[h]
        assert block.header.time_ms > prev_time
        if h > 1:
            expected = block_time_ms(block.last_commit, net.vset(h - 1), node.chain[h - 1][0].header.time_ms)
            assert block.header.time_ms == expected
        assert commit.block_hash == block.hash
        prev_time = block.header.time_ms


@pytest.mark.parametrize("n", [1, 4, 7])
def test_normal_operation_commits_every_height_in_round_zero(n: int) -> None:
    net = Net(n, seed=n).start()
    assert net.run(net.all_reached(6))
    check_chain(net, 6)
    for node in net.nodes:
        # Most heights are decided by the node itself in round 0 (a late node may sync one).
        assert sum(1 for h in range(1, 7) if node.decided_rounds.get(h) == 0) >= 5
        assert not node.rejected


def test_blocks_follow_the_minimum_interval() -> None:
    net = Net(4, seed=3, config=ConsensusConfig(min_block_interval_ms=5_000)).start()
    assert net.run(net.all_reached(5))
    node = net.nodes[0]
    times = [node.chain[h][0].header.time_ms for h in range(1, 6)]
    assert all(b - a >= 5_000 for a, b in itertools.pairwise(times[1:]))  # block 1 is at genesis time


def test_crashed_proposer_forces_a_round_change() -> None:
    net = Net(4, seed=11).start()
    assert net.run(net.all_reached(1))
    victim = index_of(net, ProposerSchedule(net.vset(2)).proposer(2, 0))
    net.crash(victim)
    live = [i for i in range(4) if i != victim]
    assert net.run(net.all_reached(3, live))
    for i in live:
        assert net.nodes[i].decided_rounds[2] >= 1
    net.restart(victim)
    assert net.run(net.all_reached(5))
    check_chain(net, 5)


def test_minority_cannot_commit_majority_can_and_all_converge_after_heal() -> None:
    net = Net(7, seed=5).start()
    assert net.run(net.all_reached(2))
    majority, minority = [0, 1, 2, 3, 4], [5, 6]
    net.partition(majority, minority)
    stuck = {i: net.nodes[i].tip for i in minority}
    assert net.run(net.all_reached(stuck[5] + 4, majority), max_ms=120_000)
    net.run_for(20_000)
    assert {i: net.nodes[i].tip for i in minority} == stuck
    net.heal()
    target = max(n.tip for n in net.nodes) + 2
    assert net.run(net.all_reached(target), max_ms=300_000)
    check_chain(net, target)


def test_isolated_validator_misses_heights_then_catches_up() -> None:
    net = Net(4, seed=13).start()
    assert net.run(net.all_reached(1))
    net.isolate(3)
    assert net.run(net.all_reached(4, [0, 1, 2]))
    assert net.nodes[3].tip <= 1
    net.heal()
    assert net.run(net.all_reached(6))
    check_chain(net, 6)


def test_even_split_stalls_until_healed() -> None:
    net = Net(7, seed=6).start()
    assert net.run(net.all_reached(1))
    net.partition([0, 1, 2, 3], [4, 5, 6])  # 4/7 and 3/7: neither side has +2/3
    before = [n.tip for n in net.nodes]
    net.run_for(60_000)
    assert [n.tip for n in net.nodes] == before
    net.heal()
    assert net.run(net.all_reached(max(before) + 2), max_ms=300_000)
    check_chain(net, max(before) + 2)


def test_lossy_network_stays_safe_and_live() -> None:
    net = Net(4, seed=8, latency=(1, 400)).start()
    net.drop_percent = 20
    assert net.run(net.all_reached(4), max_ms=600_000)
    check_chain(net, 4)


def test_crashed_validator_restarts_and_catches_up() -> None:
    net = Net(4, seed=9).start()
    assert net.run(net.all_reached(2))
    net.crash(2)
    assert net.run(net.all_reached(5, [0, 1, 3]))
    net.restart(2)
    assert net.run(net.all_reached(7))
    check_chain(net, 7)


def test_validator_set_change_takes_effect_at_its_height() -> None:
    keys = [keypair(i) for i in range(5)]
    first = ValidatorSet.of([(k.public_key, 1) for k in keys[:4]])
    second = ValidatorSet.of([(k.public_key, 10 if i == 4 else 1) for i, k in enumerate(keys)])
    net = Net(5, seed=4, vsets=lambda h: first if h < 4 else second).start()
    assert net.run(net.all_reached(8), max_ms=300_000)
    check_chain(net, 8)
    node = net.nodes[0]
    for h in range(1, 9):
        block, commit = node.chain[h]
        assert block.header.validators_hash == net.vset(h).hash
        # v4 holds 10 of 14 from height 4: no commit without it, and none with it before.
        assert (keys[4].public_key in {s.validator for s in commit.signatures}) == (h >= 4)
    assert keys[4].public_key in {node.chain[h][0].header.proposer for h in range(4, 9)}


def test_no_empty_blocks_back_to_back() -> None:
    config = ConsensusConfig(create_empty_blocks=False)
    net = Net(4, seed=2, config=config).start()
    assert net.run(net.all_reached(1))
    net.run_for(60_000)
    assert [n.tip for n in net.nodes] == [1] * 4  # block 1 was empty: wait for transactions
    for node in net.nodes:
        node.submit(make_tx(1))
    assert net.run(net.all_reached(3))
    net.run_for(60_000)
    assert [n.tip for n in net.nodes] == [3] * 4
    chain = net.nodes[0].chain
    assert [len(chain[h][0].txs) for h in (1, 2, 3)] == [0, 1, 0]
    check_chain(net, 3)


def test_empty_block_interval_bounds_the_wait() -> None:
    config = ConsensusConfig(create_empty_blocks=False, create_empty_blocks_interval_ms=10_000)
    net = Net(4, seed=2, config=config).start()
    assert net.run(net.all_reached(4), max_ms=60_000)
    chain = net.nodes[0].chain
    # Block h's time is the commit time of h−1 (BFT time), so the waits show from block 3 on.
    assert [len(chain[h][0].txs) for h in (1, 2, 3, 4)] == [0, 0, 0, 0]
    assert all(chain[h + 1][0].header.time_ms - chain[h][0].header.time_ms >= 10_000 for h in (2, 3))


def test_runs_are_a_function_of_the_seed() -> None:
    def run(seed: int) -> tuple[list[bytes], int]:
        net = Net(4, seed=seed, latency=(1, 300)).start()
        net.drop_percent = 10
        net.run(net.all_reached(4), max_ms=300_000)
        return [net.nodes[0].chain[h][0].hash for h in range(1, 5)], net.delivered

    assert run(21) == run(21)
