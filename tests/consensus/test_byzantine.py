"""Byzantine validators: equivocating proposers, double voters, coalitions.

Safety must hold whenever Byzantine power is at most f = ⌊(n−1)/3⌋ of n equal
validators; above 1/3 a fork is possible, and the fork itself names who caused it.
"""

from __future__ import annotations

import pytest

from protocol.consensus import ProposerSchedule, RejectCode, conflicting_commit_evidence

from .harness import CHAIN_ID, Coalition, DoubleVoter, EquivocatingProposer, Net


def index_of(net: Net, pubkey: bytes) -> int:
    return next(i for i, k in enumerate(net.keys) if k.public_key == pubkey)


def test_equivocating_proposer_cannot_split_honest_nodes() -> None:
    net = Net(4, seed=1)
    liar = index_of(net, ProposerSchedule(net.vset(1)).proposer(1, 0))
    honest = [i for i in range(4) if i != liar]
    net.nodes[liar].strategy = EquivocatingProposer(side_b=honest[:1])
    net.start()
    assert net.run(net.all_reached(4, honest))
    net.check_agreement()
    net.check_no_double_sign()
    # The node shown the twin block fetched the block the others committed.
    assert net.nodes[honest[0]].requests
    assert all(net.nodes[i].decided_hash(1) == net.nodes[honest[1]].decided_hash(1) for i in honest)


def test_proposal_twins_delivered_to_one_node_are_rejected() -> None:
    net = Net(4, seed=2)
    liar = index_of(net, ProposerSchedule(net.vset(1)).proposer(1, 0))
    honest = [i for i in range(4) if i != liar]
    net.nodes[liar].strategy = _BothTwins()
    net.start()
    assert net.run(net.all_reached(3, honest))
    net.check_agreement()
    for i in honest:
        codes = {r.code for r in net.nodes[i].rejected}
        assert RejectCode.CONFLICTING_PROPOSAL in codes
        culprits = {r.culprit for r in net.nodes[i].rejected if r.code == RejectCode.CONFLICTING_PROPOSAL}
        assert culprits == {net.keys[liar].public_key}


class _BothTwins(EquivocatingProposer):
    """Sends each peer the proposal and its twin."""

    def __init__(self) -> None:
        super().__init__(side_b=())

    def outgoing(self, net, node, msg):  # type: ignore[no-untyped-def]
        first = super().outgoing(net, node, msg)
        self.side_b = set(range(len(net.nodes)))
        second = super().outgoing(net, node, msg)
        self.side_b = set()
        return first + [m for m in second if m not in first]


def test_double_voter_is_reported_once_per_pair_by_every_honest_node() -> None:
    net = Net(4, seed=3)
    cheat = 2
    net.nodes[cheat].strategy = DoubleVoter()
    net.start()
    honest = [i for i in range(4) if i != cheat]
    assert net.run(net.all_reached(3, honest))
    net.check_agreement()
    for i in honest:
        evidence = net.nodes[i].evidence
        assert evidence, f"n{i} reported nothing"
        assert {e.validator for e in evidence} == {net.keys[cheat].public_key}
        assert all(e.verify(CHAIN_ID) for e in evidence)
        pairs = [(e.height, e.vote_a.round, e.vote_a.type) for e in evidence]
        assert len(pairs) == len(set(pairs)), "a pair was reported twice"


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("seed", range(6))
def test_f_byzantine_validators_never_split_honest_nodes(n: int, seed: int) -> None:
    """f = ⌊(n−1)/3⌋ Byzantine validators (a coalition showing two sides different
    blocks, or double voters), on a network that partitions and drops messages."""
    net = Net(n, seed=seed * 31 + n, latency=(1, 200))
    f = (n - 1) // 3
    order = list(range(n))
    net.rng.shuffle(order)
    byz, honest = order[:f], order[f:]
    if seed % 2 == 0:
        coalition = Coalition(side_b=honest[: len(honest) // 2])
        for i in byz:
            net.nodes[i].strategy = coalition.member()
    else:
        for i in byz:
            net.nodes[i].strategy = DoubleVoter()
    net.start()
    for phase in range(4):
        if phase % 2 == 0:
            net.drop_percent = 15
            cut = net.rng.sample(range(n), 2)
            net.cut(cut[0], cut[1])
        else:
            net.heal()
        net.run_for(15_000)
        net.check_agreement()
    net.heal()
    assert net.run(net.all_reached(3, honest), max_ms=300_000)
    net.check_agreement()
    net.check_no_double_sign()


def test_more_than_one_third_equivocating_can_fork_and_the_fork_names_them() -> None:
    """Two of four validators (1/2 of the power) show one honest validator block B
    and the other its twin: both honest validators decide, differently, and the two
    commits are evidence against exactly the coalition."""
    net = Net(4, seed=4)
    leader = index_of(net, ProposerSchedule(net.vset(1)).proposer(1, 0))
    rest = [i for i in range(4) if i != leader]
    byz = [leader, rest[0]]
    side_a, side_b = rest[1], rest[2]
    coalition = Coalition(side_b=[side_b])
    for i in byz:
        net.nodes[i].strategy = coalition.member()
    net.cut(side_a, side_b)
    net.start()
    assert net.run(net.all_reached(1, [side_a, side_b]))
    a, b = net.nodes[side_a], net.nodes[side_b]
    assert a.decided_hash(1) != b.decided_hash(1), "expected a fork"
    with pytest.raises(AssertionError, match="disagree"):
        net.check_agreement()
    evidence = conflicting_commit_evidence(a.chain[1][1], b.chain[1][1])
    assert {e.validator for e in evidence} == {net.keys[i].public_key for i in byz}
    assert all(e.verify(CHAIN_ID) for e in evidence)
