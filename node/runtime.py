"""The node daemon: runs the pure `Replica` for real, on trio, libp2p and LevelDB.

Every protocol decision is the replica's. This module only turns IO into replica
inputs (gossip, sync responses, timer expiries, API submissions) and replica
actions into IO, in the order given: a sign-state write is synced before the vote
it protects is queued for gossip, and a block is stored in one synced batch before
the replica hears `BlockStored` and starts the next height.

All replica calls happen on the trio thread, one input at a time, so the replica
needs no locks.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import trio

from node.api.contract import NodeEvent, TxStatus
from node.api.server import serve_api, serve_metrics
from node.config import Config
from node.errors import NodeError
from node.events import EventHub
from node.home import Home
from node.keys import load_validator_key
from node.metrics import Metrics
from node.p2p import (
    GossipMessage,
    Network,
    NetworkConfig,
    PayloadTooLarge,
    ReqRespLimits,
    Verdict,
    rate_limits_from,
)
from node.storage import NodeStore
from node.sync import Syncer
from node.timers import Timers
from node.verifypool import VerifyPool
from protocol import crypto, messages
from protocol.compact import CompactProposal
from protocol.consensus import messages as cm
from protocol.consensus.config import ConsensusConfig
from protocol.consensus.signstate import SignState
from protocol.consensus.wal import WalRecord
from protocol.errors import DecodeError
from protocol.governance.genesis import Genesis, genesis_app_hash, init_state
from protocol.governance.validator_set import validators_for
from protocol.kv import KVReader
from protocol.mempool import MempoolLimits
from protocol.replica import (
    DEFAULT_MAX_BLOCK_TXS,
    LOCAL,
    Action,
    BlockFetched,
    BlockStored,
    Boot,
    Broadcast,
    CommitBlock,
    ConsensusMessage,
    ForgetPendingTxs,
    GossipTxs,
    Input,
    Penalise,
    PersistPendingTxs,
    Replica,
    ReplicaConfig,
    StartConsensus,
    StopConsensus,
    SyncedBlock,
    Tick,
    Timeout,
    TxAdmitted,
    TxsReceived,
)
from protocol.types import Block, Commit, DuplicateVoteEvidence, Proposal, Tx, Vote

log = structlog.get_logger("ekklesia.node")

GOSSIP_OVERHEAD = 16 * 1024  # envelope and header room inside the gossip payload cap
# Room in a compact proposal for all but its tx hashes: header, a last commit of 256
# validators, 64 pieces of evidence.
COMPACT_FIXED_BYTES = 64 * 1024
COMPACT_BYTES_PER_TX = 34  # a hash in msgpack
STALE_HEIGHTS = 2  # consensus gossip this far below our height is ignored, not forwarded
# Transactions are fed to the replica this many at a time, yielding to the trio loop
# between chunks: a 2,000-tx batch admitted in one go held consensus, timers and the
# API for 0.4-0.9 s.
ADMIT_CHUNK = 128
# ~250 B each with its OrderedDict node (41 MB at the library's 200,000). A block's txs
# are the mempool's own instances, which remember their check, so the cache serves
# votes, pulled proposals and synced blocks: 20,000 is 10 s of transactions at 2,000
# tx/s (50,000 held 9 MB more under overload).
VERIFY_CACHE_ENTRIES = 20_000
BATCH_BASE_NODES = 4  # mempool.batch_ms is the tx batch interval for a network of this many nodes
DECODED_KEEP = 64  # gossip decoded by the topic validator, waiting for its consumer
BUSY_REASON = "node busy: its mempool is above mempool.high_water_txs; retry later"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Waiter:
    event: trio.Event
    status: TxStatus | None = None


class Node:
    """One ekklesia node. `await Node(home, config).run(task_status=...)` inside a nursery."""

    def __init__(self, home: Home, config: Config, *, clock: Callable[[], int] = wall_ms) -> None:
        self.home = home
        self.config = config
        self.clock = clock
        self.genesis = Genesis.from_json(home.genesis_file.read_text())
        self.chain_id = self.genesis.chain_id
        self.validator = load_validator_key(home.validator_key_file) if home.validator_key_file.exists() else None
        self.cache = crypto.VerifyCache(VERIFY_CACHE_ENTRIES)
        self.events = EventHub()
        self.metrics = Metrics(self.chain_id)
        self.metrics.compact_waits.source = lambda: {"": self.replica.waiting.waits if self.replica is not None else 0}
        self._exec_started = 0.0
        self._round_seen: tuple[int, int, str] | None = None
        self._step_since = 0.0
        self._round_since = 0.0
        self._votes_seen: set[bytes] = set()  # digests of this height's votes, for the duplicate count
        self.store: NodeStore | None = None
        self.replica: Replica | None = None
        self.network: Network | None = None
        self.node_id = ""
        self.syncer: Syncer | None = None
        self._timers = Timers(self._on_timer)
        self._stored_send, self._stored_recv = trio.open_memory_channel[int](16)
        self._stored = trio.Event()
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[tuple[str, bytes]](4096)
        self._tx_batch: list[Tx] = []
        self._tx_batch_bytes = 0
        self._tx_batch_ready = trio.Event()
        self._waiters: dict[bytes, _Waiter] = {}
        self._admissions: dict[bytes, TxAdmitted] = {}
        self._rejected: dict[bytes, str] = {}
        self._decoded: dict[bytes, Any] = {}
        self._pending_writes = self._durable_writes = 0  # client-tx store writes, and how many are fsynced
        self._flushing: trio.Event | None = None
        self.log = log.bind(moniker=config.node.moniker)
        self.stopped = trio.Event()
        self.started_at = 0.0
        workers = config.node.verify_worker_count(os.cpu_count())
        self.verify_pool = VerifyPool(workers) if workers else None

    # ------------------------------------------------------------ set-up

    def _open_store(self) -> NodeStore:
        store = NodeStore.open_leveldb(
            self.home.data_dir / "store", chain_id=self.chain_id, genesis_hash=self.genesis.hash
        )
        if not store.initialized:
            ws = init_state(self.genesis)
            store.init_genesis(self.chain_id, self.genesis.hash, ws, genesis_app_hash(ws))
        return store

    def _replica_config(self) -> ReplicaConfig:
        c = self.config
        gossip_cap = c.p2p.max_message_bytes - GOSSIP_OVERHEAD
        # Proposals travel compact (tx hashes): the gossip cap bounds a block's tx count.
        max_block_txs = min(DEFAULT_MAX_BLOCK_TXS, (gossip_cap - COMPACT_FIXED_BYTES) // COMPACT_BYTES_PER_TX)
        return ReplicaConfig(
            chain_id=self.chain_id,
            consensus=ConsensusConfig(
                timeout_propose_ms=c.consensus.timeout_propose_ms,
                timeout_propose_delta_ms=c.consensus.timeout_propose_delta_ms,
                timeout_prevote_ms=c.consensus.timeout_prevote_ms,
                timeout_prevote_delta_ms=c.consensus.timeout_prevote_delta_ms,
                timeout_precommit_ms=c.consensus.timeout_precommit_ms,
                timeout_precommit_delta_ms=c.consensus.timeout_precommit_delta_ms,
                min_block_interval_ms=c.consensus.min_block_interval_ms,
                create_empty_blocks=c.consensus.create_empty_blocks,
                create_empty_blocks_interval_ms=c.consensus.create_empty_blocks_interval_ms,
            ),
            mempool=MempoolLimits(
                max_txs=c.mempool.max_txs, max_bytes=c.mempool.max_bytes, max_per_sender=c.mempool.max_per_sender
            ),
            max_block_txs=max(1, max_block_txs),
        )

    def _network_config(self) -> NetworkConfig:
        c = self.config
        return NetworkConfig(
            chain_id=self.chain_id,
            listen_addrs=(c.p2p.listen,),
            announce_addrs=(c.p2p.external_address,) if c.p2p.external_address else None,
            bootstrap_peers=tuple(c.p2p.peers),
            node_key_path=self.home.node_key_file,
            min_peers=c.p2p.min_peers,
            max_peers=c.p2p.max_peers,
            max_gossip_bytes=c.p2p.max_message_bytes,
            mesh_degree=c.p2p.mesh_degree,
            mesh_degree_low=c.p2p.mesh_degree_low,
            mesh_degree_high=c.p2p.mesh_degree_high,
            rate_limits=rate_limits_from(c.p2p),
            reqresp=ReqRespLimits(max_response_bytes=c.sync.max_response_bytes),
        )

    # ------------------------------------------------------------ running

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.store = store = self._open_store()
        try:
            self.replica = Replica(
                self._replica_config(), store.state_view(), self.validator.keypair if self.validator else None,
                self.cache,
            )
            self.network = Network(
                self._network_config(),
                validators={"txs": self._validate_txs, "consensus": self._validate_consensus},
                request_handler=self._serve_request,
            )
            self.node_id = self.network.peer_id
            self.metrics.p2p_source(self.network.stats)
            self.log = self.log.bind(node=self.node_id[-8:])
            self.syncer = Syncer(self)
            async with trio.open_nursery() as nursery:
                if self.verify_pool is not None:
                    await nursery.start(self.verify_pool.run)
                addrs = await nursery.start(self.network.run)
                self.started_at = trio.current_time()
                self.metrics.set_height(store.last_height)
                self._boot(catching_up=bool(self.config.p2p.peers) and self.config.sync.enabled)
                nursery.start_soon(self._timers.run)
                nursery.start_soon(self._after_store)
                nursery.start_soon(self._consume, "txs")
                nursery.start_soon(self._consume, "consensus")
                nursery.start_soon(self._publisher)
                nursery.start_soon(self._tx_batcher)
                nursery.start_soon(self.syncer.run)
                nursery.start_soon(self._ticker)
                if self.config.storage.prune_keep_last:
                    nursery.start_soon(self._pruner)
                await self._start_api(nursery)
                self.log.info("node started", height=store.last_height, listen=addrs, chain_id=self.chain_id)
                task_status.started(self)
                await self.stopped.wait()
                self.log.info("node stopping")
                self.network.stop()
                nursery.cancel_scope.cancel()
        finally:
            store.close()
            self.log.info("node stopped")

    def stop(self) -> None:
        self.stopped.set()

    async def _start_api(self, nursery: trio.Nursery) -> None:
        api, m = self.config.api, self.config.metrics
        self.api_address = await nursery.start(
            lambda task_status: serve_api(
                self, api.listen, max_body_bytes=api.max_body_bytes, max_connections=api.max_connections,
                admin_enabled=api.admin_enabled, serve_metrics=m.enabled and not m.listen, task_status=task_status,
            )
        )
        if m.enabled and m.listen:
            self.metrics_address = await nursery.start(lambda task_status: serve_metrics(self, m.listen,
                                                                                          task_status=task_status))

    def _recovered(self) -> dict[str, Any]:
        """The stored head and consensus state a (re)started engine resumes from."""
        store = self.store
        assert store is not None
        recovery = store.consensus_recovery()
        head = store.last_height
        return {
            "now_ms": self.clock(),
            "last_block": store.block(head) if head else None,
            "last_commit": store.commit(head) if head else None,
            "sign_state": SignState.decode(recovery.sign_state) if recovery.sign_state else None,
            "wal": [WalRecord.decode(r) for r in recovery.wal],
        }

    def _boot(self, *, catching_up: bool) -> None:
        assert self.store is not None
        pending = self.store.pending_txs()  # acked to clients before a restart, not committed then
        self.feed(Boot(**self._recovered(), catching_up=catching_up, pending_txs=pending))

    def start_consensus(self) -> None:
        self.log.info("consensus starting", height=self.height + 1)
        self.feed(StartConsensus(**self._recovered()))

    def stop_consensus(self) -> None:
        self.log.info("falling behind: consensus paused for block sync", height=self.height)
        self._timers.clear()
        self.feed(StopConsensus(self.clock()))

    # ------------------------------------------------------------ the replica loop

    def feed(self, inp: Input) -> None:
        """Hand one input to the replica and execute what it asks, in order."""
        replica = self.replica
        assert replica is not None
        pending: deque[Input] = deque([inp])
        while pending:
            self._exec_started = time.perf_counter()
            for action in replica.handle(pending.popleft()):
                self._execute(action, pending)
        self._observe_engine()

    def _observe_engine(self) -> None:
        engine = self.replica.engine if self.replica is not None else None
        st = engine.state if engine is not None else None
        if st is None:
            return
        now = time.perf_counter()
        seen = (st.height, st.round, st.step.name.lower())
        if self._round_seen is None or seen != self._round_seen:
            if self._round_seen is not None:
                self.metrics.on_step(self._round_seen[2], now - self._step_since)
            if self._round_seen is None or seen[:2] != self._round_seen[:2]:
                self.metrics.on_new_round(st.height, st.round)
                self._round_since = now
                if self._round_seen is None or seen[0] != self._round_seen[0]:
                    self._votes_seen.clear()
            self._round_seen, self._step_since = seen, now

    def _execute(self, a: Action, pending: deque[Input]) -> None:
        store = self.store
        assert store is not None
        match a:
            case cm.PersistSignState():
                store.save_sign_state(a.state.encode())
            case cm.WalAppend():
                store.wal_append(a.record.height, a.record.encode())
            case PersistPendingTxs():
                # Written now, made durable by `_durable` before the client hears the ack.
                store.save_pending_txs(a.txs, sync=False)
                self._pending_writes += 1
            case ForgetPendingTxs():
                store.forget_pending_txs(a.hashes)
            case Broadcast():
                msg: Proposal | CompactProposal | Vote | DuplicateVoteEvidence = a.message
                if isinstance(msg, Proposal):
                    # Peers rebuild it from the txs they hold: this node's own go out first.
                    self._flush_tx_batch()
                    msg = CompactProposal.of(msg)
                self._send("consensus", messages.encode_tagged(msg))
            case cm.ScheduleTimeout():
                self._timers.schedule(a.delay_ms, (a.step, a.height, a.round))
            case CommitBlock():
                self._commit(a)
                # BlockStored goes back through the trio loop, not this feed: a lone
                # validator with a short block interval would otherwise decide height
                # after height here without ever yielding to the network or a signal.
                self._stored_send.send_nowait(a.block.height)
            case cm.RequestBlock():
                self.metrics.block_requests.inc()
                if self.syncer is not None:
                    self.syncer.wake_pull()
            case TxAdmitted():
                self._on_admitted(a)
            case GossipTxs():
                self._send("txs", messages.TxBatch(a.txs[: messages.MAX_BATCH_TXS]).encode())
            case Penalise():
                self._penalise(a.origin, a.reason)
            case cm.Ignored():
                if a.code == cm.IgnoreCode.FUTURE_HEIGHT and self.syncer is not None:
                    self.syncer.wake()

    def _commit(self, a: CommitBlock) -> None:
        store = self.store
        assert store is not None
        block, result = a.block, a.result
        results = result.tx_results  # read for code and info, as node.storage.TxOutcome
        exec_s = time.perf_counter() - self._exec_started
        t = time.perf_counter()
        # A block from block sync is already final network-wide: losing it in a crash
        # costs a re-fetch, not safety, so it skips the fsync (see NodeStore.commit_block).
        store.commit_block(block, a.commit, result.write_set, result.app_hash, results, durable=not a.synced)
        self.metrics.on_commit(block.height, a.commit.round, exec_s, time.perf_counter() - t, len(block.txs),
                               synced=a.synced, time_ms=block.header.time_ms)
        if self.replica is not None:
            self.metrics.mempool_size(len(self.replica.mempool), self.replica.mempool.size_bytes)
        self.log.info(
            "block committed", height=block.height, round=a.commit.round, txs=len(block.txs),
            app_hash=result.app_hash.hex()[:16], synced=a.synced,
        )
        self.events.publish(
            NodeEvent("block", {
                "height": block.height, "hash": block.hash.hex(), "time_ms": block.header.time_ms,
                "txs": len(block.txs), "app_hash": result.app_hash.hex(),
            })
        )
        # Per-tx events and statuses are built only for someone listening or waiting.
        listening, waiters = self.events.wants("tx"), self._waiters
        if not listening and not waiters:
            return
        for i, (tx, r) in enumerate(zip(block.txs, result.tx_results, strict=True)):
            h = tx.hash
            if listening:
                self.events.publish(NodeEvent("tx", {"hash": h.hex(), "height": block.height, "index": i,
                                                     "code": r.code, "info": r.info}))
            waiter = waiters.pop(h, None)
            if waiter is not None:
                waiter.status = TxStatus(h, "committed", height=block.height, index=i, code=r.code, info=r.info)
                waiter.event.set()

    async def _after_store(self) -> None:
        async for height in self._stored_recv:
            self.feed(BlockStored(self.clock(), height))
            self._stored.set()
            self._stored = trio.Event()

    async def until_stored(self) -> None:
        """Wait until the replica has heard that its last committed block is stored."""
        while self.replica is not None and self.replica.committing:
            await self._stored.wait()

    def _on_timer(self, payload: tuple[Any, int, int]) -> None:
        step, height, round = payload
        if self.replica is not None and not self.replica.syncing:
            self.feed(Timeout(self.clock(), step, height, round))

    # ------------------------------------------------------------ gossip

    def _send(self, topic: str, data: bytes) -> None:
        try:
            self._outbox_send.send_nowait((topic, data))
        except trio.WouldBlock:
            # The network cannot keep up; catch-up pulls recover what is dropped here.
            self.log.warning("outbox full: gossip dropped", topic=topic)

    async def _publisher(self) -> None:
        assert self.network is not None
        async for topic, data in self._outbox_recv:
            try:
                await self.network.publish(topic, data)
                self.metrics.gossip_out(topic, len(data))
            except PayloadTooLarge as exc:
                self.log.error("gossip payload too large", topic=topic, error=str(exc))
            except Exception as exc:  # a failed publish must not stop the node; peers pull later
                self.log.warning("publish failed", topic=topic, error=repr(exc))

    async def _consume(self, topic: str) -> None:
        assert self.network is not None
        async for msg in self.network.incoming(topic):
            try:
                if topic == "txs":
                    self.metrics.gossip_in(topic, len(msg.data))
                    await self._admit(list(self._decode(msg.data, messages.decode_tx_batch).txs), msg.origin)
                else:
                    self._on_gossip(topic, msg)
            except DecodeError as exc:
                self._penalise(msg.origin, f"undecodable {topic} gossip: {exc.reason}")

    def _on_gossip(self, topic: str, msg: GossipMessage) -> None:
        """One gossip message, fed whole (the `txs` consumer feeds batches in chunks)."""
        self.metrics.gossip_in(topic, len(msg.data))
        if topic == "txs":
            batch = self._decode(msg.data, messages.decode_tx_batch)
            self.feed(TxsReceived(self.clock(), batch.txs, msg.origin))
        else:
            self.offer(self._decode(msg.data, messages.decode_consensus), msg.origin)

    def _decode(self, data: bytes, decode: Callable[[bytes], Any]) -> Any:
        """The object the topic validator decoded from `data`, or a new decoding."""
        msg = self._decoded.pop(data, None)
        return msg if msg is not None else decode(data)

    def _keep_decoded(self, data: bytes, msg: Any) -> None:
        # Bounded: a message the subscription queue drops is never consumed.
        if len(self._decoded) >= DECODED_KEEP:
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[data] = msg

    def _validate_txs(self, peer_id: str, data: bytes) -> Verdict:
        batch = messages.decode_tx_batch(data)  # a DecodeError rejects and penalises
        if any(tx.chain_id != self.chain_id for tx in batch.txs):
            return Verdict.REJECT
        self._keep_decoded(data, batch)
        return Verdict.ACCEPT

    def _validate_consensus(self, peer_id: str, data: bytes) -> Verdict:
        msg = messages.decode_consensus(data)
        if isinstance(msg, Proposal | CompactProposal | Vote) and msg.height + STALE_HEIGHTS <= self.height:
            return Verdict.IGNORE  # an honest straggler: do not forward, do not penalise
        self._keep_decoded(data, msg)
        return Verdict.ACCEPT

    def _penalise(self, origin: str, reason: str) -> None:
        self.log.warning("peer penalised", peer=origin, reason=reason)
        if self.network is not None and origin and origin != LOCAL:
            self.network.penalise(origin, reason)

    # ------------------------------------------------------------ transactions

    def _on_admitted(self, a: TxAdmitted) -> None:
        if a.accepted:
            self.metrics.mempool_admitted()
        elif a.reason != "duplicate transaction":
            self.metrics.mempool_rejected(a.reason)
        if a.origin != LOCAL:
            return
        self._admissions[a.tx_hash] = a
        if a.accepted:
            self._tx_batch.append(a.tx)
            self._tx_batch_bytes += len(a.tx.encode())
            if self._tx_batch_bytes >= self.config.mempool.batch_max_bytes:
                self._tx_batch_ready.set()
        else:
            self._rejected[a.tx_hash] = a.reason
            if len(self._rejected) > 10_000:
                self._rejected.pop(next(iter(self._rejected)))

    def tx_batch_interval_s(self) -> float:
        """How long local transactions are collected before one gossip batch.

        Every node's batches reach every other node, so a node receives about
        (N − 1) / interval tx messages a second, at milliseconds of py-libp2p CPU each.
        `mempool.batch_ms` is the interval for a network of 4 nodes; with more peers it
        is stretched in proportion, keeping what each node receives at that level
        (with the 4-node interval, 7 validators stopped committing at 300 tx/s)."""
        nodes = 1 + (len(self.network.peers()) if self.network is not None else 0)
        return self.config.mempool.batch_ms / 1000 * max(1.0, nodes / BATCH_BASE_NODES)

    async def _tx_batcher(self) -> None:
        """Local transactions travel in batches: gossip costs milliseconds per message."""
        while True:
            with trio.move_on_after(self.tx_batch_interval_s()):
                await self._tx_batch_ready.wait()
            self._tx_batch_ready = trio.Event()
            self._flush_tx_batch()

    def _flush_tx_batch(self) -> None:
        if self._tx_batch:
            batch, self._tx_batch, self._tx_batch_bytes = self._tx_batch, [], 0
            for i in range(0, len(batch), messages.MAX_BATCH_TXS):
                self._send("txs", messages.TxBatch(tuple(batch[i : i + messages.MAX_BATCH_TXS])).encode())

    async def _admit(self, txs: list[Tx], origin: str) -> None:
        """Feed transactions in chunks, letting consensus messages, timers and API calls
        that arrived meanwhile run between them."""
        chunks = [txs[i : i + ADMIT_CHUNK] for i in range(0, len(txs), ADMIT_CHUNK)]
        pool = self.verify_pool
        if pool is None:
            for i, chunk in enumerate(chunks):
                if i:
                    await trio.sleep(0)
                self.feed(TxsReceived(self.clock(), chunk, origin))
            return
        # Pipelined: the workers check the signatures of the next chunks while this
        # thread admits the current one.
        await pool.check_each(chunks, self.cache, lambda chunk: self.feed(TxsReceived(self.clock(), chunk, origin)))

    async def _durable(self) -> None:
        """Every client tx stored so far is on disk. One fsync, in a worker thread so the
        loop keeps running, serves every submission that stored before it started
        (group commit): a synced write per chunk on the trio thread cost ~9 % of a
        validator's CPU at 1,000 tx/s and stalled everything else while it ran."""
        target = self._pending_writes
        while self._durable_writes < target:
            if self._flushing is not None:
                await self._flushing.wait()
                continue
            store = self.store
            assert store is not None
            self._flushing = done = trio.Event()
            upto = self._pending_writes
            try:
                await trio.to_thread.run_sync(store.flush)
                self._durable_writes = max(self._durable_writes, upto)
            finally:
                self._flushing = None
                done.set()

    def busy(self) -> bool:
        """Too much is pending to admit more client transactions in good time
        (backpressure: gossip from peers is still admitted up to `mempool.max_txs`)."""
        return self.replica is not None and len(self.replica.mempool) >= self.config.mempool.high_water_txs

    async def submit_tx(self, tx: Tx, *, wait_commit: bool, timeout_s: float) -> TxStatus:
        h = tx.hash
        if self.busy():
            self.metrics.mempool_rejected("busy")
            return TxStatus(h, "rejected", BUSY_REASON, retry=True)
        self._admissions.pop(h, None)
        self.feed(TxsReceived(self.clock(), [tx], LOCAL))
        adm = self._admissions.pop(h, None)
        if adm is None or not adm.accepted:
            known, _ = self.tx(h)
            if known.status == "committed":
                return known
            return TxStatus(h, "rejected", adm.reason if adm else "not admitted")
        if not wait_commit:
            await self._durable()
            return TxStatus(h, "pending")
        waiter = self._waiters.setdefault(h, _Waiter(trio.Event()))  # before any await: it may commit soon
        await self._durable()
        with trio.move_on_after(timeout_s):
            await waiter.event.wait()
        return waiter.status or TxStatus(h, "pending")

    async def submit_txs(self, txs: list[Tx]) -> list[TxStatus]:
        hashes = [tx.hash for tx in txs]
        if self.busy():
            self.metrics.mempool_rejected("busy")
            return [TxStatus(h, "rejected", BUSY_REASON, retry=True) for h in hashes]
        for h in hashes:
            self._admissions.pop(h, None)
        await self._admit(txs, LOCAL)
        await self._durable()
        out = []
        for h in hashes:
            adm = self._admissions.pop(h, None)
            if adm is not None and adm.accepted:
                out.append(TxStatus(h, "pending"))
            else:
                known, _ = self.tx(h)
                out.append(known if known.status == "committed" else
                           TxStatus(h, "rejected", adm.reason if adm else "not admitted"))
        return out

    # ------------------------------------------------------------ sync protocol server

    async def _serve_request(self, peer_id: str, data: bytes) -> bytes:
        try:
            req = messages.decode_sync(data)
        except DecodeError as exc:
            self._penalise(peer_id, f"undecodable sync request: {exc.reason}")
            return messages.encode_tagged(messages.ErrorResponse(400, exc.reason[:200]))
        return messages.encode_tagged(self.answer(req))

    def answer(self, req: Any) -> Any:
        store = self.store
        assert store is not None
        match req:
            case messages.StatusRequest():
                return messages.StatusResponse(
                    self.chain_id, self.genesis.hash, store.last_height, store.last_block_hash,
                    store.app_hash or bytes(32), store.base_height,
                )
            case messages.BlocksRequest():
                out: list[messages.BlockWithCommit] = []
                budget = self.config.sync.max_response_bytes - 64 * 1024
                top = min(store.last_height, req.from_height + min(req.count, messages.MAX_BLOCKS_PER_RESPONSE) - 1)
                for h in range(max(req.from_height, 1), top + 1):
                    block, commit = store.block(h), store.commit(h)
                    if block is None or commit is None:
                        break
                    budget -= len(block.encode())
                    if budget < 0 and out:
                        break
                    out.append(messages.BlockWithCommit(block, commit))
                return messages.BlocksResponse(tuple(out))
            case messages.VotesRequest():
                held = self.replica.current_messages() if self.replica is not None else []
                at = [m for m in held if m.height == req.height]
                return messages.VotesResponse(
                    tuple(m for m in at if isinstance(m, Proposal))[: messages.MAX_PROPOSALS_PER_RESPONSE],
                    tuple(m for m in at if isinstance(m, Vote))[: messages.MAX_VOTES_PER_RESPONSE],
                )
        return messages.ErrorResponse(400, f"unexpected request {type(req).__name__}")

    async def apply_synced(self, block: Block, commit: Commit, origin: str) -> None:
        await self.until_stored()
        self.feed(SyncedBlock(self.clock(), block, commit, origin))

    def offer(self, msg: Proposal | CompactProposal | Vote | DuplicateVoteEvidence, origin: str) -> None:
        self._observe_arrival(msg)
        self.feed(ConsensusMessage(self.clock(), msg, origin))

    def _observe_arrival(self, msg: object) -> None:
        """Consensus timing metrics: how long after its round started a proposal or vote
        arrived, and votes that came too late or twice (gossip plus a pull)."""
        if self._round_seen is None or not isinstance(msg, Proposal | CompactProposal | Vote):
            return
        height, round, _ = self._round_seen
        delay = time.perf_counter() - self._round_since
        if isinstance(msg, Proposal | CompactProposal):
            if (msg.height, msg.round) == (height, round):
                self.metrics.on_proposal(delay)
            return
        kind = msg.type.name.lower()
        if msg.height == height:
            digest = msg.digest()
            if digest in self._votes_seen:
                self.metrics.duplicate_vote(kind)
                return
            if len(self._votes_seen) < 100_000:  # bounded; cleared at every height
                self._votes_seen.add(digest)
        if (msg.height, msg.round) == (height, round):
            self.metrics.on_vote(kind, delay)
        elif (msg.height, msg.round) < (height, round):
            self.metrics.late_vote(kind)

    def offer_block(self, block: Block, origin: str) -> None:
        self.feed(BlockFetched(self.clock(), block, origin))

    # ------------------------------------------------------------ maintenance

    async def _ticker(self) -> None:
        while True:
            await trio.sleep(1.0)
            self.feed(Tick(self.clock()))

    async def _pruner(self) -> None:
        store = self.store
        assert store is not None
        while True:
            await trio.sleep(30)
            await trio.to_thread.run_sync(store.prune, self.config.storage.prune_keep_last)

    # ------------------------------------------------------------ the API contract

    @property
    def height(self) -> int:
        return self.store.last_height if self.store is not None else 0

    def latest_height(self) -> int:
        return self.height

    def status(self) -> dict[str, Any]:
        store, replica = self.store, self.replica
        assert store is not None and replica is not None
        head = store.block(store.last_height) if store.last_height else None
        engine_state = replica.engine.state if replica.engine is not None else None
        return {
            "chain_id": self.chain_id,
            "node_id": self.node_id,
            "moniker": self.config.node.moniker,
            "height": store.last_height,
            "latest_block_hash": store.last_block_hash.hex(),
            "latest_block_time_ms": head.header.time_ms if head else self.genesis.genesis_time_ms,
            "app_hash": (store.app_hash or bytes(32)).hex(),
            "syncing": replica.syncing,
            "peers": len(self.network.peers()) if self.network else 0,
            "validator": self.validator.address_hex if self.validator else None,
            "round": engine_state.round if engine_state else None,
            "step": engine_state.step.name.lower() if engine_state else None,
            "mempool_size": len(replica.mempool),
        }

    def block(self, height: int) -> tuple[Block, Commit] | None:
        store = self.store
        assert store is not None
        block, commit = store.block(height), store.commit(height)
        return (block, commit) if block is not None and commit is not None else None

    def tx(self, tx_hash: bytes) -> tuple[TxStatus, Tx | None]:
        store, replica = self.store, self.replica
        assert store is not None and replica is not None
        loc = store.tx_location(tx_hash)
        if loc is not None:
            block = store.block(loc.height)
            tx = block.txs[loc.index] if block is not None else None
            return TxStatus(tx_hash, "committed", height=loc.height, index=loc.index, code=loc.code, info=loc.info), tx
        if tx_hash in replica.mempool:
            return TxStatus(tx_hash, "pending"), None
        if tx_hash in self._rejected:
            return TxStatus(tx_hash, "rejected", self._rejected[tx_hash]), None
        return TxStatus(tx_hash, "unknown"), None

    def state(self) -> KVReader:
        assert self.store is not None
        return self.store.state_view()

    def validators(self, height: int | None = None) -> list[tuple[bytes, int]]:
        vs = validators_for(self.state(), height if height is not None else self.height + 1)
        return [(v.pubkey, v.power) for v in vs.validators]

    def peers(self) -> list[str]:
        return self.network.peers() if self.network is not None else []

    def subscribe(self, kinds: Collection[str]) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[NodeEvent]]:
        return self.events.subscribe(kinds)

    def metrics_text(self) -> bytes:
        if self.replica is not None:
            self.metrics.mempool_size(len(self.replica.mempool), self.replica.mempool.size_bytes)
            self.metrics.set_syncing(self.replica.syncing)
        self.metrics.set_peers(len(self.peers()))
        return self.metrics.render()

    async def admin_block_peer(self, peer_id: str) -> None:
        assert self.network is not None
        await self.network.block_peer(peer_id)

    async def admin_unblock_peer(self, peer_id: str) -> None:
        assert self.network is not None
        await self.network.unblock_peer(peer_id)


def load_node(home: Path, config: Config | None = None) -> Node:
    h = Home(home)
    if not h.genesis_file.exists():
        raise NodeError(f"no genesis at {h.genesis_file}", "run `ekklesia init` or `ekklesia testnet init` first")
    return Node(h, config or Config.load(h))
