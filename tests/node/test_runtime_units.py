"""Runtime pieces checked on a node that is not running: consensus arrival metrics
(timed against the round start; late and duplicate votes counted — metrics only, the
replica decides what to do with them) and the tx batch interval."""

import time
from collections import deque

import trio

from node.api.contract import NodeEvent
from node.config import Config
from node.events import EventHub
from node.home import Home
from node.runtime import Node
from node.testnet import init_testnet
from protocol import crypto, messages
from protocol.compact import CompactProposal
from protocol.consensus import messages as cm
from protocol.replica import LOCAL, Broadcast, Replica, TxAdmitted
from protocol.types import Proposal, Tx, Vote, VoteType, make_block


def sample(node: Node, name: str) -> float:
    text = node.metrics_text().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_votes_are_timed_and_late_or_duplicate_ones_counted(tmp_path):
    init_testnet(tmp_path / "tn", 1, base_port=47000, genesis_time_ms=time.time_ns() // 1_000_000)
    home = Home(tmp_path / "tn" / "node0")
    node = Node(home, Config.load(home, env={}))
    node._round_seen, node._round_since = (5, 1, "prevote"), time.perf_counter()  # the engine is at 5/1
    key = crypto.Keypair(bytes(32))

    def vote(height: int, round: int, kind: VoteType = VoteType.PREVOTE) -> Vote:
        return Vote.create(key, node.chain_id, kind, height, round, bytes(32), 1)

    current = vote(5, 1)
    node._observe_arrival(current)
    node._observe_arrival(vote(5, 1, VoteType.PRECOMMIT))
    assert sample(node, 'ekklesia_consensus_vote_delay_seconds_count{type="prevote"}') == 1
    assert sample(node, 'ekklesia_consensus_vote_delay_seconds_count{type="precommit"}') == 1
    node._observe_arrival(Vote.decode(current.encode()))  # the same vote again, e.g. from a pull
    assert sample(node, 'ekklesia_consensus_duplicate_votes_total{type="prevote"}') == 1
    node._observe_arrival(vote(5, 0))
    node._observe_arrival(vote(4, 3))
    assert sample(node, 'ekklesia_consensus_late_votes_total{type="prevote"}') == 2
    node._observe_arrival(vote(6, 0))  # a future vote is neither timed nor late
    assert sample(node, 'ekklesia_consensus_vote_delay_seconds_count{type="prevote"}') == 1


def test_the_tx_batch_interval_grows_with_the_number_of_peers(tmp_path):
    init_testnet(tmp_path / "tn", 1, base_port=47100, genesis_time_ms=time.time_ns() // 1_000_000)
    home = Home(tmp_path / "tn" / "node0")
    node = Node(home, Config.load(home, env={"EKKLESIA_MEMPOOL_BATCH_MS": "100"}))

    class Peers:
        def __init__(self, n: int) -> None:
            self.n = n

        def peers(self) -> list[str]:
            return [f"p{i}" for i in range(self.n)]

    assert node.tx_batch_interval_s() == 0.1  # not networked yet
    for peers, expected in ((0, 0.1), (3, 0.1), (6, 0.175), (9, 0.25)):
        node.network = Peers(peers)  # type: ignore[assignment]
        assert abs(node.tx_batch_interval_s() - expected) < 1e-9, peers


def test_a_proposal_goes_out_compact_right_after_the_pending_local_tx_batch(tmp_path):
    init_testnet(tmp_path / "tn", 1, base_port=47200, genesis_time_ms=time.time_ns() // 1_000_000)
    home = Home(tmp_path / "tn" / "node0")
    node = Node(home, Config.load(home, env={}))
    node.store = node._open_store()
    sender = crypto.Keypair(bytes([3]) * 32)
    txs = [Tx.create(sender, node.chain_id, n, "notary.notarise", bytes([n]) * 8) for n in range(3)]
    for tx in txs:
        node._on_admitted(TxAdmitted(tx, tx.hash, True, "", LOCAL))
    block = make_block(chain_id=node.chain_id, height=1, time_ms=1, prev_hash=bytes(32), app_hash=bytes(32),
                       validators_hash=bytes(32), proposer=sender.public_key, txs=tuple(txs))
    proposal = Proposal.create(sender, node.chain_id, 1, 0, -1, block, 1)
    node._execute(Broadcast(proposal), deque())
    sent = []
    while True:
        try:
            sent.append(node._outbox_recv.receive_nowait())
        except trio.WouldBlock:
            break
    assert [topic for topic, _ in sent] == ["txs", "consensus"]  # its txs reach peers first
    assert messages.decode_tx_batch(sent[0][1]).txs == tuple(txs)
    compact = messages.decode_consensus(sent[1][1])
    assert compact == CompactProposal.of(proposal) and len(sent[1][1]) < len(messages.encode_tagged(proposal))
    assert node._tx_batch == []  # not sent twice
    node.store.close()


def test_proposals_that_wait_for_txs_and_whole_fetches_are_counted(tmp_path):
    init_testnet(tmp_path / "tn", 1, base_port=47300, genesis_time_ms=time.time_ns() // 1_000_000)
    home = Home(tmp_path / "tn" / "node0")
    node = Node(home, Config.load(home, env={}))
    node.store = node._open_store()
    node.replica = Replica(node._replica_config(), node.store.state_view(), None, node.cache)
    node._execute(cm.RequestBlock(1, 0, bytes(32)), deque())
    assert sample(node, "ekklesia_consensus_block_requests_total") == 1
    node.replica.waiting.waits = 3  # the replica's own count of proposals that waited, read when scraped
    assert sample(node, "ekklesia_consensus_compact_waits_total") == 3
    node.store.close()


async def test_event_subscribers_get_only_their_kinds_and_unwanted_kinds_are_not_built():
    hub = EventHub(buffer=4)
    assert not hub.wants("tx") and not hub.wants("block")
    async with hub.subscribe({"block"}) as blocks, hub.subscribe({"block", "tx"}) as both:
        assert hub.wants("block") and hub.wants("tx")
        for i in range(10):  # a block of 10 txs: the block-only channel must not fill with them
            hub.publish(NodeEvent("tx", {"index": i}))
        hub.publish(NodeEvent("block", {"height": 1}))
        assert blocks.receive_nowait().kind == "block"
        assert [both.receive_nowait().data for _ in range(4)] == [{"index": i} for i in range(4)]
        assert hub.dropped == 7  # the slow two-kind subscriber lost 6 txs and the block
    async with hub.subscribe({"block"}):
        assert not hub.wants("tx")  # a node with only block subscribers builds no tx events
    assert len(hub) == 0
