"""A crash at every point of a height, then a restart from the persisted sign
state and WAL: never a double sign, and the network still agrees and progresses.

The victim is the proposer of height 2, so its crash points cover a proposal's
persistence as well as prevotes and precommits. "Every point" is every action
boundary: the node dies before executing action k of its whole run, for each k,
which includes just before and just after each PersistSignState and WalAppend.
"""

from __future__ import annotations

import pytest

from protocol.consensus import ConsensusConfig, ProposerSchedule
from protocol.types import Vote, VoteType

from .harness import Net

HEIGHTS = 2
# Timeouts shorter than the slowest messages: rounds fail, validators lock in one
# round and re-lock in a later one (seed 3 locks at rounds 0 and 1 of height 1 and
# decides in round 1; seed 6 decides height 2 in round 1).
TIGHT = ConsensusConfig(
    timeout_propose_ms=300,
    timeout_propose_delta_ms=200,
    timeout_prevote_ms=100,
    timeout_prevote_delta_ms=100,
    timeout_precommit_ms=100,
    timeout_precommit_delta_ms=100,
    min_block_interval_ms=0,
)


def network(seed: int, tight: bool = False) -> tuple[Net, int]:
    net = Net(4, seed=seed, config=TIGHT if tight else None, latency=(1, 400) if tight else (5, 40))
    victim = next(
        i for i, k in enumerate(net.keys) if k.public_key == ProposerSchedule(net.vset(2)).proposer(2, 0)
    )
    return net, victim


def actions_until(seed: int, height: int, tight: bool) -> tuple[int, int]:
    """(victim, number of actions it executes until it has stored `height`) in a run without crash."""
    net, victim = network(seed, tight)
    net.start()
    assert net.run(lambda: net.nodes[victim].tip >= height)
    return victim, net.nodes[victim].actions_done


@pytest.mark.parametrize(
    ("seed", "tight", "lose_wal"),
    [(1, False, False), (2, False, False), (3, True, False), (6, True, False), (3, True, True)],
)
def test_crash_at_every_action_never_double_signs(seed: int, tight: bool, lose_wal: bool) -> None:
    """`lose_wal`: the crash also wipes the WAL, leaving only the sign state: safety
    must not depend on the WAL."""
    victim, total = actions_until(seed, HEIGHTS, tight)
    assert total > 30
    for k in range(total + 1):
        net, _ = network(seed, tight)
        node = net.nodes[victim]
        node.crash_at = k
        node.lose_wal_on_crash = lose_wal
        node.restart_after = 700
        net.start()
        assert net.run(net.all_reached(HEIGHTS + 2), max_ms=300_000), f"no progress after crash at {k}"
        assert node.incarnation == 1, f"crash at {k} did not happen"
        net.check_no_double_sign()
        net.check_agreement()


def test_tight_runs_change_rounds_and_locks() -> None:
    """The tight variants above really exercise locks in more than one round."""
    net, victim = network(3, tight=True)
    net.start()
    assert net.run(lambda: net.nodes[victim].tip >= HEIGHTS)
    node = net.nodes[victim]
    precommits = [m for m in node.persisted if isinstance(m, Vote) and m.type == VoteType.PRECOMMIT]
    locks = {(m.height, m.round) for m in precommits if m.block_hash is not None}
    assert {(1, 0), (1, 1)} <= locks and node.decided_rounds[1] == 1


def test_restart_rebroadcasts_what_was_persisted_but_not_sent() -> None:
    """Crash right after the first sign state is written, before its broadcast: the
    restarted engine sends that very message, and signs nothing else for its step."""
    clean, victim = network(1)
    clean.start()
    assert clean.run(lambda: clean.nodes[victim].tip >= 1)
    first_persist = clean.nodes[victim].trace.index("PersistSignState")
    net, _ = network(1)
    node = net.nodes[victim]
    node.crash_at = first_persist + 1
    node.restart_after = 100
    net.start()
    assert net.run(net.all_reached(3))
    assert node.incarnation == 1
    # The crash came between the first sign state and its broadcast: the first message
    # this node ever sent is that persisted one, sent by the restarted engine.
    assert node.trace[first_persist] == "PersistSignState" and len(node.trace) > first_persist + 1
    assert "Broadcast" not in node.trace[: first_persist + 1]
    assert node.signed[0] == node.persisted[0]
    net.check_no_double_sign()
