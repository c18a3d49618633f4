"""Locally submitted txs are stored before they are acked, forgotten once committed or
stale, and re-admitted after a restart: the replica's side of "an acked tx survives a
crash of the node that acked it", driven through a one-validator host in virtual time."""

from __future__ import annotations

import dataclasses
import heapq
from itertools import count
from typing import Any

from protocol import crypto
from protocol.consensus import messages as cm
from protocol.consensus.signstate import SignState
from protocol.governance.accounts import Transfer
from protocol.governance.genesis import Genesis, init_state
from protocol.kv import MemoryKV
from protocol.replica import (
    LOCAL,
    BlockStored,
    Boot,
    CommitBlock,
    ForgetPendingTxs,
    GossipTxs,
    PersistPendingTxs,
    Replica,
    ReplicaConfig,
    StartConsensus,
    Tick,
    Timeout,
    TxAdmitted,
    TxsReceived,
)
from protocol.types import Block, Commit, Tx
from simulations.cluster import FAST_CONSENSUS, GENESIS_TIME_MS, make_genesis

CHAIN = "pending-test"
VALIDATOR = crypto.Keypair(bytes([7]) * 32)
ALICE, BOB, CAROL = (crypto.Keypair(bytes([i]) * 32) for i in (1, 2, 3))
GENESIS = make_genesis(CHAIN, [(VALIDATOR.public_key, 10)], [(k.public_key, 1_000_000) for k in (ALICE, BOB, CAROL)])


def transfer(key: crypto.Keypair, nonce: int, amount: int = 5, chain: str = CHAIN) -> Tx:
    return Tx.create(key, chain, nonce, "transfer", Transfer(crypto.address(CAROL.public_key), amount, "").encode())


class Host:
    """What node/runtime.py and simulations/cluster.py do, reduced to one node: a disk
    (state, blocks, sign-state, stored pending txs) that survives `crash()`, timers in
    virtual time, and every action of the current replica kept in order."""

    def __init__(self, key: crypto.Keypair = VALIDATOR, genesis: Genesis = GENESIS, **config: Any) -> None:
        self.key = key
        self.state = MemoryKV()
        self.state.apply(init_state(genesis))
        self.blocks: dict[int, tuple[Block, Commit]] = {}
        self.sign_state: SignState | None = None
        self.stored: dict[bytes, Tx] = {}  # the store's pending-tx keyspace
        self.config = ReplicaConfig(CHAIN, FAST_CONSENSUS, **config)
        self.replica: Replica | None = None
        self.now = 0
        self.epoch = 0
        self._timers: list[tuple[int, int, int, Any]] = []
        self._seq = count()
        self.actions: list[Any] = []

    @property
    def height(self) -> int:
        return max(self.blocks, default=0)

    def boot(self, *, catching_up: bool = False) -> list[Any]:
        self.replica = Replica(self.config, self.state, self.key)
        head = self.blocks.get(self.height)
        return self.feed(Boot(self.clock, head[0] if head else None, head[1] if head else None, self.sign_state, [],
                              catching_up=catching_up, pending_txs=tuple(self.stored.values())))

    def crash(self) -> None:
        self.replica = None
        self.epoch += 1
        self._timers.clear()

    @property
    def clock(self) -> int:
        return GENESIS_TIME_MS + self.now

    def feed(self, inp: Any) -> list[Any]:
        assert self.replica is not None
        out = self.replica.handle(inp)
        self.actions += out
        for a in out:
            match a:
                case PersistPendingTxs():
                    self.stored.update((tx.hash, tx) for tx in a.txs)
                case ForgetPendingTxs():
                    for h in a.hashes:
                        self.stored.pop(h, None)
                case cm.PersistSignState():
                    self.sign_state = a.state
                case cm.ScheduleTimeout():
                    self._at(a.delay_ms, Timeout(0, a.step, a.height, a.round))
                case CommitBlock():
                    self.state.apply(a.result.write_set)
                    self.blocks[a.block.height] = (a.block, a.commit)
                    self._at(0, BlockStored(0, a.block.height))
        return out

    def submit(self, txs: list[Tx]) -> list[Any]:
        return self.feed(TxsReceived(self.clock, txs, LOCAL))

    def _at(self, delay: int, inp: Any) -> None:
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), self.epoch, inp))

    def run_until(self, t: int) -> None:
        while self._timers and self._timers[0][0] <= t:
            due, _, epoch, inp = heapq.heappop(self._timers)
            self.now = due
            if epoch == self.epoch and self.replica is not None:
                self.feed(dataclasses.replace(inp, now_ms=self.clock))
        self.now = t

    def committed(self) -> set[bytes]:
        return {tx.hash for b, _ in self.blocks.values() for tx in b.txs}


def of(actions: list[Any], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def test_accepted_local_txs_are_stored_in_one_batch_before_any_ack():
    host = Host()
    host.boot()
    txs = [transfer(ALICE, 0), transfer(ALICE, 1), transfer(ALICE, 5), transfer(BOB, 0)]
    out = host.submit(txs)
    [persist] = of(out, PersistPendingTxs)
    assert persist.txs == (txs[0], txs[1], txs[3])  # the nonce gap is refused and not stored
    acks = of(out, TxAdmitted)
    assert [a.accepted for a in acks] == [True, True, False, True]
    assert out.index(persist) < min(out.index(a) for a in acks)
    assert set(host.stored) == {txs[0].hash, txs[1].hash, txs[3].hash} and host.replica.stored_txs == 3


def test_txs_received_by_gossip_are_not_stored():
    host = Host()
    host.boot()
    out = host.feed(TxsReceived(host.clock, [transfer(ALICE, 0)], "peer-1"))
    assert of(out, TxAdmitted)[0].accepted
    assert of(out, PersistPendingTxs) == [] and host.stored == {}


def test_a_resubmitted_tx_is_not_stored_twice():
    host = Host()
    host.boot()
    tx = transfer(ALICE, 0)
    host.submit([tx])
    again = host.submit([tx])
    assert of(again, PersistPendingTxs) == [] and not of(again, TxAdmitted)[0].accepted
    assert host.replica.stored_txs == 1


def test_committed_txs_are_forgotten():
    host = Host()
    host.boot()
    txs = [transfer(ALICE, 0), transfer(ALICE, 1), transfer(BOB, 0)]
    host.submit(txs)
    host.run_until(3_000)
    assert {tx.hash for tx in txs} <= host.committed()
    forgotten = {h for a in of(host.actions, ForgetPendingTxs) for h in a.hashes}
    assert forgotten == {tx.hash for tx in txs}
    assert host.stored == {} and host.replica.stored_txs == 0


def test_after_a_crash_the_stored_txs_are_readmitted_regossiped_and_committed():
    host = Host()
    host.boot()
    txs = [transfer(ALICE, 0), transfer(ALICE, 1), transfer(BOB, 0)]
    host.submit(txs)
    host.crash()  # before any block: the mempool is gone, the store is not
    assert host.committed() == set() and len(host.stored) == 3
    out = host.boot()
    regossiped = [tx for a in of(out, GossipTxs) for tx in a.txs]
    assert sorted(tx.hash for tx in regossiped) == sorted(tx.hash for tx in txs)
    assert all(tx.hash in host.replica.mempool for tx in txs)
    assert of(out, TxAdmitted) == []  # a restored tx is not a new submission
    # The client's next nonce goes on where the acked ones left off.
    assert of(host.submit([transfer(ALICE, 2)]), TxAdmitted)[0].accepted
    host.run_until(3_000)
    assert {tx.hash for tx in txs} | {transfer(ALICE, 2).hash} <= host.committed()
    assert host.stored == {}


def test_at_boot_stale_and_invalid_stored_txs_are_forgotten():
    host = Host()
    host.boot()
    done = transfer(ALICE, 0)
    host.submit([done])
    host.run_until(3_000)
    assert done.hash in host.committed()
    host.crash()
    # A forget lost in the crash, a tx whose nonce another one used, one that fails the checks.
    stale, invalid, fine = transfer(ALICE, 0, amount=6), transfer(BOB, 0, chain="other"), transfer(BOB, 0)
    host.stored = {t.hash: t for t in (done, stale, invalid, fine)}
    out = host.boot()
    [forget] = of(out, ForgetPendingTxs)
    assert set(forget.hashes) == {done.hash, stale.hash, invalid.hash}
    assert len(host.replica.mempool) == 1 and fine.hash in host.replica.mempool and host.replica.parked_txs == 0
    assert list(host.stored) == [fine.hash] and host.replica.stored_txs == 1


def test_a_stored_tx_that_would_now_fail_is_still_committed_as_a_failure():
    host = Host()
    host.boot()
    host.crash()
    # Acked before the crash; since then its sender's funds went (here: never enough).
    broke = transfer(ALICE, 0, amount=5_000_000)
    host.stored = {broke.hash: broke}
    out = host.boot()
    assert of(out, ForgetPendingTxs) == [] and broke.hash in host.replica.mempool
    results = []
    host.run_until(3_000)
    for a in host.actions:
        if isinstance(a, CommitBlock):
            results += [(tx.hash, r.code) for tx, r in zip(a.block.txs, a.result.tx_results, strict=True)]
    [(_h, code)] = [r for r in results if r[0] == broke.hash]
    assert code != 0  # executed and failed: the client learns why instead of never hearing back
    assert host.stored == {}


def test_a_stored_tx_whose_earlier_nonce_is_missing_waits_parked_until_it_arrives():
    host = Host()
    host.boot()
    first, second = transfer(ALICE, 0), transfer(ALICE, 1)
    host.feed(TxsReceived(host.clock, [first], "peer-1"))  # from a peer: not stored here
    host.submit([second])
    host.crash()
    assert list(host.stored) == [second.hash]
    out = host.boot()
    assert host.replica.parked_txs == 1 and second.hash not in host.replica.mempool
    assert of(out, ForgetPendingTxs) == []
    host.feed(TxsReceived(host.clock, [first], "peer-1"))  # the peer offers it again
    out = host.feed(Tick(host.clock))
    assert second.hash in host.replica.mempool and host.replica.parked_txs == 0
    assert any(second in a.txs for a in of(out, GossipTxs))
    host.run_until(3_000)
    assert {first.hash, second.hash} <= host.committed() and host.stored == {}


def test_a_parked_tx_is_forgotten_once_a_block_passes_its_nonce():
    host = Host()
    host.boot()
    ours = transfer(ALICE, 1)
    host.stored = {ours.hash: ours}
    host.crash()
    host.boot()
    assert host.replica.parked_txs == 1
    other0, other1 = transfer(ALICE, 0), transfer(ALICE, 1, amount=7)  # the sender used nonce 1 elsewhere
    host.feed(TxsReceived(host.clock, [other0, other1], "peer-1"))
    host.run_until(3_000)
    assert {other0.hash, other1.hash} <= host.committed()
    assert host.replica.parked_txs == 0 and host.replica.stored_txs == 0 and host.stored == {}


def test_past_the_cap_a_submission_is_refused_not_acked_unstored():
    host = Host(max_local_pending_txs=2)
    host.boot()
    out = host.submit([transfer(ALICE, 0), transfer(ALICE, 1), transfer(ALICE, 2)])
    acks = of(out, TxAdmitted)
    assert [a.accepted for a in acks] == [True, True, False]
    assert "limit" in acks[2].reason and "retry later" in acks[2].reason
    assert [len(a.txs) for a in of(out, PersistPendingTxs)] == [2]
    assert transfer(ALICE, 2).hash not in host.replica.mempool
    host.run_until(3_000)  # committed: forgotten, room again
    assert of(host.submit([transfer(ALICE, 2)]), TxAdmitted)[0].accepted


def test_the_byte_cap_counts_too():
    tx = transfer(ALICE, 0)
    host = Host(max_local_pending_bytes=len(tx.encode()) + 10)
    host.boot()
    acks = of(host.submit([tx, transfer(ALICE, 1)]), TxAdmitted)
    assert [a.accepted for a in acks] == [True, False] and "limit" in acks[1].reason


def test_a_node_booting_into_block_sync_gossips_its_stored_txs_and_admits_them_when_consensus_starts():
    host = Host()
    host.boot()
    txs = [transfer(ALICE, 0), transfer(ALICE, 1)]
    host.submit(txs)
    host.crash()
    out = host.boot(catching_up=True)
    assert [tx for a in of(out, GossipTxs) for tx in a.txs] == txs
    assert len(host.replica.mempool) == 0 and host.replica.parked_txs == 2
    host.feed(StartConsensus(host.clock, None, None, host.sign_state, []))
    assert all(tx.hash in host.replica.mempool for tx in txs) and host.replica.parked_txs == 0
