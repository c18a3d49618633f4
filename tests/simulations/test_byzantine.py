"""Byzantine behaviours: each one does what it claims (visible in the trace or the
evidence), signs with the node's real key, and with f = 1 of 4 never breaks safety
or liveness."""

import tomllib

import pytest

from protocol.consensus.proposer import ProposerSchedule
from protocol.governance.validator_set import validators_for
from protocol.replica import Broadcast
from protocol.types import Proposal, Vote, VoteType
from simulations import byzantine, checkers, runner
from simulations.cluster import SendTo
from simulations.scenario import BEHAVIOURS, parse

RUN = """
duration_s = 12
[validators]
count = 4
[workload]
rate = 5
drain_s = 4
[liveness]
heights = 5
within_s = 12
[[byzantine]]
node = "n3"
behaviour = "{b}"
"""


def run(behaviour, seed=5):
    s = parse(tomllib.loads(RUN.format(b=behaviour)), source="t.toml")
    cluster, _, workload = runner.build(s, seed)
    cluster.start()
    cluster.run_until(s.duration_ms)
    return s, cluster, checkers.check(cluster, s, workload)


def sent_by(cluster, node, kind):
    return [e for e in cluster.trace if e[1] == node and e[2] == kind]


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_one_byzantine_of_four_breaks_neither_safety_nor_liveness(behaviour):
    _s, _cluster, r = run(behaviour)
    assert r.safety.status == "ok" and r.forks == []
    assert r.liveness.status == "ok", r.liveness.details
    assert r.validity.status == "ok" and r.accountability.status != "violated"
    assert r.lost_txs == []
    assert set(r.named) <= {"n3"}


def test_equivocating_proposer_is_caught_by_its_two_signed_proposals():
    _, cluster, r = run("equivocate")
    kinds = {(e.validator, e.kind) for e in r.evidence}
    assert ("n3", "conflicting-proposal") in kinds
    (_h, _rd, who), seen = next((k, v) for k, v in sorted(cluster.proposals_seen.items()) if len(v) > 1)
    assert who == cluster.keys[3].public_key
    assert all(p.verify("sim") for p in seen.values())


def test_double_voter_is_reported_and_removed_from_the_validator_set():
    _, cluster, r = run("double-vote")
    dup = [e for e in r.evidence if e.kind == "duplicate-vote"]
    assert dup and {e.validator for e in dup} == {"n3"}
    state = cluster.nodes["n0"].disk.state
    top = cluster.nodes["n0"].disk.height
    assert cluster.keys[3].public_key in validators_for(state, 1)
    assert cluster.keys[3].public_key not in validators_for(state, top + 1)  # the evidence penalty


def test_withheld_votes_never_leave_the_node_nor_enter_a_commit():
    _, cluster, _r = run("withhold-votes")
    assert sent_by(cluster, "n3", "vote") == []
    n3 = cluster.keys[3].public_key
    for _block, commit in cluster.nodes["n0"].disk.blocks.values():
        assert n3 not in {sig.validator for sig in commit.signatures}


@pytest.mark.parametrize(("behaviour", "field"), [("wrong-height", 5), ("wrong-round", 6)])
def test_votes_for_the_wrong_height_or_round_are_signed_and_sent(behaviour, field):
    """Trace vote events: (t, node, "vote", to, type, height, round, block hash, validator)."""
    _, cluster, _ = run(behaviour)
    honest = [e for e in sent_by(cluster, "n3", "vote") if e[3] == "*"]
    wrong = [e for e in sent_by(cluster, "n3", "vote") if e[3] != "*"]
    assert honest and len(wrong) >= len(honest)
    other = 11 - field  # the field that stays
    for e in wrong:
        twin = [o for o in honest if (o[0], o[4], o[7], o[other]) == (e[0], e[4], e[7], e[other])]
        assert twin and e[field] - twin[0][field] in (1, 2, 5), e


def test_invalid_blocks_never_commit_and_cost_their_rounds():
    _, cluster, _r = run("invalid-block")
    node = cluster.nodes["n0"]
    n3 = cluster.keys[3].public_key
    rounds = {h: rd for _, h, rd in cluster.commit_times["n0"]}
    own_turns = [h for h in sorted(node.disk.blocks)
                 if ProposerSchedule(validators_for(node.disk.state, h)).proposer(h, 0) == n3]
    assert own_turns
    for h in own_turns:
        block = node.disk.blocks[h][0]
        assert rounds[h] >= 1 or block.header.proposer != n3
    penalties = [e for e in cluster.trace if e[2] == "penalise" and e[3] == "n3"]
    assert penalties  # the bad-signature blocks are the proposer's fault


def test_replayed_messages_are_old():
    _, cluster, _ = run("replay")
    replays = [e for e in sent_by(cluster, "n3", "vote") + sent_by(cluster, "n3", "proposal") if e[3] != "*"]
    assert replays
    first_commit = {h: t for t, h, _ in reversed(cluster.commit_times["n0"])}
    assert all(first_commit.get(e[5] if e[2] == "vote" else e[4], 10**9) <= e[0] for e in replays)


def test_silent_node_sends_nothing():
    _, cluster, _ = run("silent")
    assert sent_by(cluster, "n3", "vote") == [] and sent_by(cluster, "n3", "proposal") == []


def test_conflicting_messages_are_signed_with_the_nodes_own_key():
    s, cluster, _ = run("silent")
    node = cluster.nodes["n3"]
    spec = s.byzantine[0]
    block = cluster.nodes["n0"].disk.blocks[2][0]
    vote = Vote.create(node.key, "sim", VoteType.PREVOTE, 3, 0, block.hash, 1)
    dv = byzantine.make(type(spec)(("n3",), "double-vote"), cluster, node, {})
    out = dv(node, Broadcast(vote))
    twin = next(a.message for a in out if isinstance(a, SendTo))
    assert twin.verify("sim") and twin.block_hash is None and twin.validator == vote.validator
    p = Proposal.create(node.key, "sim", 2, 0, -1, block, 1)
    eq = byzantine.make(type(spec)(("n3",), "equivocate", side_b=("n1",)), cluster, node, {})
    a, b = eq(node, Broadcast(p))
    assert a.targets == ("n0", "n2") and b.targets == ("n1",)
    assert b.message.verify("sim") and b.message.block.hash != p.block.hash
    assert b.message.block.check_structure() is None
