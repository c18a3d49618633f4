"""Many replicas in one thread under virtual time: the deterministic simulator's core.

Each `SimNode` runs the production `protocol.replica.Replica` over an in-memory
store and executes its actions the way `node/` does — durable sign-state and WAL,
atomic block commits, gossip, timeouts, block fetch and block sync — but through
the seeded `Network` model and the virtual-time `Scheduler`. Crashing a node drops
every volatile thing (the replica, its mempool, its scheduled events) and keeps what
a real node keeps on disk (including the txs it acked to its clients and has not
seen committed); restarting boots a fresh replica from that. A paused node
keeps everything but handles nothing until it resumes (a stopped process, a long GC).

Byzantine behaviour plugs in through `SimNode.byzantine`, a rewrite of the node's
own actions (see `simulations.byzantine`); `SendTo` lets it address chosen peers.
Twins are two `SimNode`s holding the same validator key, each with its own disk.

Node clocks read `genesis time + virtual time + skew`, so block times look real.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol import crypto
from protocol.compact import CompactProposal
from protocol.consensus import messages as cm
from protocol.consensus.config import ConsensusConfig
from protocol.consensus.signstate import SignState
from protocol.consensus.wal import WalRecord
from protocol.errors import InvariantViolation
from protocol.governance.constitution import Article
from protocol.governance.genesis import Genesis, GenesisAccount, GenesisIdentity, GenesisValidator, init_state
from protocol.governance.identity import key_digest
from protocol.governance.params import DEFAULT_PARAMS, Params
from protocol.kv import MemoryKV
from protocol.replica import (
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
    Penalise,
    PersistPendingTxs,
    Replica,
    ReplicaConfig,
    SyncedBlock,
    Tick,
    Timeout,
    TxAdmitted,
    TxsReceived,
)
from protocol.types import Block, Commit, DuplicateVoteEvidence, Proposal, Tx, Vote
from simulations.network import LinkModel, Network
from simulations.rng import SeedTree
from simulations.scheduler import Scheduler
from simulations.trace import Trace

SYNC_BATCH = 16
STATUS_INTERVAL_MS = 1_000  # also the stall check period
PULL_PEERS = 4  # peers asked for a stalled height's messages (node.sync.STATUS_PEERS)
GENESIS_TIME_MS = 1_700_000_000_000
TWIN_SUFFIX = "-twin"

FAST_CONSENSUS = ConsensusConfig(
    timeout_propose_ms=1000, timeout_propose_delta_ms=500, timeout_prevote_ms=500,
    timeout_prevote_delta_ms=250, timeout_precommit_ms=500, timeout_precommit_delta_ms=250,
    min_block_interval_ms=200,
)


def make_genesis(
    chain_id: str,
    validators: list[tuple[bytes, int]],
    accounts: list[tuple[bytes, int]] = (),  # type: ignore[assignment]
    genesis_time_ms: int = GENESIS_TIME_MS,
    treasury: int = 1_000_000,
    residents: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]  # (key, next key digest)
    params: Params = DEFAULT_PARAMS,
) -> Genesis:
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms,
        validators=tuple(sorted((GenesisValidator(pk, p) for pk, p in validators), key=lambda v: v.pubkey)),
        accounts=tuple(sorted((GenesisAccount(crypto.address(pk), b) for pk, b in accounts), key=lambda a: a.address)),
        treasury=treasury,
        identities=tuple(
            sorted((GenesisIdentity(pk, nxt, True, None) for pk, nxt in residents), key=lambda i: i.pubkey)
        ),
        registrars=(),
        issuers=(),
        constitution=(Article(1, "Membership is voluntary and open to every person."),),
        params=params,
    )


@dataclass
class Disk:
    """What survives a crash: the store, blocks with their commits, sign state, WAL,
    and the local txs the node acked and has not seen committed."""

    state: MemoryKV
    blocks: dict[int, tuple[Block, Commit]] = field(default_factory=dict)
    sign_state: SignState | None = None
    wal: list[WalRecord] = field(default_factory=list)
    pending_txs: dict[bytes, Tx] = field(default_factory=dict)  # tx hash -> tx, in store order

    @property
    def height(self) -> int:
        return max(self.blocks, default=0)


@dataclass(frozen=True, slots=True)
class SendTo:
    """Not a protocol action: a Byzantine node's message for chosen peers only."""

    message: Proposal | Vote | DuplicateVoteEvidence
    targets: tuple[str, ...]


Behaviour = Callable[["SimNode", Any], list[Any]]


class SimNode:
    def __init__(self, cluster: Cluster, name: str, key: crypto.Keypair | None, genesis: Genesis) -> None:
        self.cluster = cluster
        self.name = name
        self.key = key
        state = MemoryKV()
        state.apply(init_state(genesis))
        self.disk = Disk(state)
        self.replica: Replica | None = None
        self.epoch = 0  # bumps on crash: events scheduled before it are void
        self.skew_ms = 0
        self.paused = False
        self.halted: str | None = None  # why the replica stopped itself (InvariantViolation)
        self.byzantine: Behaviour | None = None
        self.observers: list[Callable[[SimNode, object], None]] = []  # see every delivered message
        self.rng = cluster.seeds.child("nodes").rng(name)
        self.acked: dict[bytes, int] = {}  # tx hash -> virtual ms it was accepted locally
        self.crash_times: list[int] = []
        self._held: list[tuple[Callable[..., None], tuple[Any, ...]]] = []  # arrived while paused
        self._sync_queue: list[tuple[Block, Commit, str]] = []
        self._last_seen_height = -1

    @property
    def up(self) -> bool:
        return self.replica is not None

    @property
    def honest(self) -> bool:
        return self.name not in self.cluster.faulty

    @property
    def now(self) -> int:
        return self.cluster.genesis.genesis_time_ms + self.cluster.sched.now_ms + self.skew_ms

    # ------------------------------------------------------------ lifecycle

    def boot(self) -> None:
        if self.replica is not None:
            return
        self.halted = None
        self.replica = Replica(self.cluster.replica_config, self.disk.state, self.key, self.cluster.cache)
        head = self.disk.blocks.get(self.disk.height)
        boot = Boot(
            now_ms=self.now,
            last_block=head[0] if head else None,
            last_commit=head[1] if head else None,
            sign_state=self.disk.sign_state,
            wal=list(self.disk.wal),
            pending_txs=tuple(self.disk.pending_txs.values()),
        )
        self.cluster.trace.record(self.cluster.sched.now_ms, self.name, "boot", self.disk.height)
        self.feed(boot)
        self._schedule_status()

    def crash(self) -> None:
        if self.replica is None:
            return
        self.replica = None
        self.epoch += 1
        self._sync_queue = []
        self._held = []
        self.crash_times.append(self.cluster.sched.now_ms)
        self.cluster.trace.record(self.cluster.sched.now_ms, self.name, "crash", self.disk.height)

    def halt(self, reason: str) -> None:
        """The replica raised InvariantViolation: a real node exits; so does this one."""
        self.crash()
        self.halted = reason
        self.cluster.trace.record(self.cluster.sched.now_ms, self.name, "halt", reason)

    def pause(self) -> None:
        self.paused = True
        self.cluster.trace.record(self.cluster.sched.now_ms, self.name, "pause")

    def resume(self) -> None:
        self.paused = False
        held, self._held = self._held, []
        self.cluster.trace.record(self.cluster.sched.now_ms, self.name, "resume", len(held))
        for fn, args in held:
            self.later(0, fn, *args)

    def later(self, delay_ms: int, fn: Callable[..., None], *args: Any) -> None:
        self.cluster.sched.after(delay_ms, self._run, self.epoch, fn, args)

    def _run(self, epoch: int, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if epoch != self.epoch or self.replica is None:
            return
        if self.paused:
            self._held.append((fn, args))  # a paused process handles it on resume
        else:
            fn(*args)

    # ------------------------------------------------------------ inputs

    def feed(self, inp: object) -> list[Action]:
        if self.replica is None:
            return []
        try:
            actions = self.replica.handle(inp)  # type: ignore[arg-type]
        except InvariantViolation as exc:
            self.halt(str(exc))
            return []
        for a in actions:
            if self.byzantine is None:
                self.execute(a)
            else:
                for b in self.byzantine(self, a):
                    self.execute(b)
        return actions

    def deliver(self, message: Proposal | Vote | DuplicateVoteEvidence, origin: str,
                compact: CompactProposal | None = None) -> None:
        """`compact`: the form `message` (a proposal) travels in; observers see the whole one."""
        for observe in self.observers:
            observe(self, message)
        if type(message) is Proposal and self.name not in self.cluster.faulty:
            self.cluster.observe_proposal(message)
        self.feed(ConsensusMessage(self.now, message if compact is None else compact, origin))

    def submit(self, txs: list[Tx]) -> list[TxAdmitted]:
        """A client hands txs to this node; returns the node's answers."""
        return [a for a in self.feed(TxsReceived(self.now, txs, LOCAL)) if isinstance(a, TxAdmitted)]

    def _timeout(self, a: cm.ScheduleTimeout) -> None:
        self.feed(Timeout(self.now, a.step, a.height, a.round))

    # ------------------------------------------------------------ actions

    def execute(self, a: Any) -> None:
        c = self.cluster
        match a:
            case Broadcast():
                self._sent(a.message, "*")
                c.gossip(self, a.message)
            case SendTo():
                self._sent(a.message, ",".join(a.targets))
                c.send(self, a.message, a.targets)
            case cm.ScheduleTimeout():
                self.later(a.delay_ms, self._timeout, a)
            case cm.PersistSignState():
                self.disk.sign_state = a.state
            case cm.WalAppend():
                self.disk.wal.append(a.record)
            case PersistPendingTxs():
                for tx in a.txs:
                    self.disk.pending_txs[tx.hash] = tx
            case ForgetPendingTxs():
                for h in a.hashes:
                    self.disk.pending_txs.pop(h, None)
            case CommitBlock():
                self._commit(a)
            case cm.RequestBlock():
                c.fetch_block(self, a.height, a.block_hash)
            case TxAdmitted():
                if a.accepted and a.origin == LOCAL:
                    self.acked[a.tx_hash] = c.sched.now_ms
                    c.gossip_txs(self, [a.tx])
            case GossipTxs():
                c.gossip_txs(self, list(a.txs))
            case Penalise():
                c.trace.record(c.sched.now_ms, self.name, "penalise", a.origin, a.reason)
            case cm.Ignored():
                if a.code == cm.IgnoreCode.FUTURE_HEIGHT and a.origin:
                    self._start_sync(a.origin)

    def _sent(self, message: object, to: str) -> None:
        c = self.cluster
        if isinstance(message, Vote):
            c.trace.record(c.sched.now_ms, self.name, "vote", to, int(message.type), message.height, message.round,
                           message.block_hash, message.validator)
        elif isinstance(message, Proposal):
            c.trace.record(c.sched.now_ms, self.name, "proposal", to, message.height, message.round,
                           message.block.hash, message.proposer)
        elif isinstance(message, DuplicateVoteEvidence):
            c.on_evidence(self, message)

    def _commit(self, a: CommitBlock) -> None:
        h = a.block.height
        self.disk.state.apply(a.result.write_set)
        self.disk.blocks[h] = (a.block, a.commit)
        self.disk.wal = [r for r in self.disk.wal if r.height > h]
        c = self.cluster
        c.on_commit(self, a.block, a.result.app_hash, a.commit.round)
        self.later(0, self._stored, h)
        self.later(0, self._drain_sync)

    def _stored(self, height: int) -> None:
        self.feed(BlockStored(self.now, height))

    # ------------------------------------------------------------ block sync

    def _schedule_status(self) -> None:
        self.later(STATUS_INTERVAL_MS, self._status_tick)

    def _status_tick(self) -> None:
        """As node.sync: fetch blocks from a peer that is ahead — at once when two or
        more heights ahead, after a tick without progress when one ahead (the height
        may be deciding here right now) — and pull the stalled height's messages."""
        peer = self.cluster.best_peer(self)
        stalled = self.disk.height == self._last_seen_height
        ahead = peer.disk.height - self.disk.height if peer is not None else 0
        if peer is not None and (ahead > 1 or (ahead == 1 and stalled)):
            self._start_sync(peer.name)
        elif stalled:
            self.cluster.pull_height(self)
        self._last_seen_height = self.disk.height
        self.feed(Tick(self.now))
        self._schedule_status()

    def _start_sync(self, peer_name: str) -> None:
        if not self._sync_queue and peer_name in self.cluster.nodes:
            self.cluster.request_blocks(self, peer_name, self.disk.height + 1)

    def on_blocks(self, peer_name: str, blocks: list[tuple[Block, Commit]]) -> None:
        self._sync_queue = [(b, c, peer_name) for b, c in blocks if b.height > self.disk.height]
        self._drain_sync()

    def _drain_sync(self) -> None:
        """Feed fetched blocks one at a time: the next goes in after the last is stored."""
        if self.replica is None or self.replica.height != self.disk.height:
            return
        while self._sync_queue and self._sync_queue[0][0].height <= self.disk.height:
            self._sync_queue.pop(0)
        if self._sync_queue:
            block, commit, peer_name = self._sync_queue.pop(0)
            self.feed(SyncedBlock(self.now, block, commit, peer_name))


class Cluster:
    def __init__(
        self,
        n_validators: int,
        seed: int,
        *,
        powers: list[int] | None = None,
        link: LinkModel | None = None,
        consensus: ConsensusConfig | None = None,
        chain_id: str = "sim",
        accounts: int = 8,
        residents: int = 0,
        params: Params = DEFAULT_PARAMS,
        twins: list[str] | tuple[str, ...] = (),
        keep_trace: bool = True,
        compact_proposals: bool = True,
    ) -> None:
        self.seeds = SeedTree(seed)
        # As on libp2p: a proposal is gossiped with its txs named by hash, and each peer
        # rebuilds it from the txs it has (or fetches it whole). A Byzantine node's
        # targeted sends (SendTo) carry whole proposals, which the wire also accepts.
        self.compact_proposals = compact_proposals
        self.sched = Scheduler()
        self.trace = Trace(keep=keep_trace)
        self.cache = crypto.VerifyCache()  # verification is a pure function: share it
        self.chain_id = chain_id
        keyrng = self.seeds.child("keys")
        self.keys = [crypto.Keypair(keyrng.rng(f"v{i}").randbytes(32)) for i in range(n_validators)]
        self.account_keys = [crypto.Keypair(keyrng.rng(f"a{i}").randbytes(32)) for i in range(accounts)]
        if residents > accounts:
            raise ValueError("residents are the first accounts: residents must not exceed accounts")
        # A resident's committed next key (pre-rotation); kept so a workload could rotate.
        self.next_keys = [crypto.Keypair(keyrng.rng(f"r{i}").randbytes(32)) for i in range(residents)]
        powers = powers or [10] * n_validators
        self.powers = dict(zip((f"n{i}" for i in range(n_validators)), powers, strict=True))
        self.genesis = make_genesis(
            chain_id,
            [(k.public_key, p) for k, p in zip(self.keys, powers, strict=True)],
            [(k.public_key, 1_000_000) for k in self.account_keys],
            residents=[
                (self.account_keys[i].public_key, key_digest(self.next_keys[i].public_key)) for i in range(residents)
            ],
            params=params,
        )
        self.replica_config = ReplicaConfig(chain_id, consensus or FAST_CONSENSUS)
        validators = [f"n{i}" for i in range(n_validators)]
        for t in twins:
            if t not in validators:
                raise ValueError(f"twin of unknown validator {t!r}")
        names = validators + [t + TWIN_SUFFIX for t in sorted(set(twins))]
        self.validator_of = {name: name.removesuffix(TWIN_SUFFIX) for name in names}
        key_of = dict(zip(validators, self.keys, strict=True))
        self.net = Network(names, self.seeds.rng("network"), link or LinkModel())
        self.nodes = {name: SimNode(self, name, key_of[self.validator_of[name]], self.genesis) for name in names}
        # Nodes whose behaviour is not the protocol's (Byzantine ones and both halves of a twin pair).
        self.faulty: set[str] = {n for n in names if self.validator_of[n] != n}
        self.faulty |= {self.validator_of[n] for n in names if self.validator_of[n] != n}
        self.commits: dict[int, dict[str, tuple[bytes, bytes]]] = {}  # height -> node -> (block, app hash)
        self.commit_times: dict[str, list[tuple[int, int, int]]] = {n: [] for n in names}  # (t, height, round)
        self.committed_txs: dict[bytes, int] = {}
        self.evidence: dict[bytes, tuple[DuplicateVoteEvidence, str, int]] = {}  # digest -> (ev, reporter, t)
        self.proposals_seen: dict[tuple[int, int, bytes], dict[bytes, Proposal]] = {}

    # ------------------------------------------------------------ running

    def start(self) -> None:
        for _, node in sorted(self.nodes.items()):
            node.boot()

    def run_until(self, t_ms: int) -> None:
        self.sched.run_until(t_ms)

    def heights(self) -> dict[str, int]:
        return {name: node.disk.height for name, node in sorted(self.nodes.items())}

    def honest_nodes(self) -> list[SimNode]:
        return [n for _, n in sorted(self.nodes.items()) if n.name not in self.faulty]

    def on_commit(self, node: SimNode, block: Block, app_hash: bytes, round: int) -> None:
        self.commits.setdefault(block.height, {})[node.name] = (block.hash, app_hash)
        self.commit_times[node.name].append((self.sched.now_ms, block.height, round))
        for tx in block.txs:
            self.committed_txs.setdefault(tx.hash, block.height)
        self.trace.record(self.sched.now_ms, node.name, "commit", block.height, round, block.hash, app_hash)

    def on_evidence(self, node: SimNode, ev: DuplicateVoteEvidence) -> None:
        key = ev.digest()
        if key not in self.evidence and ev.verify(self.chain_id, self.cache):
            self.evidence[key] = (ev, node.name, self.sched.now_ms)
            self.trace.record(self.sched.now_ms, node.name, "evidence", ev.validator, ev.height, ev.vote_a.round)

    def observe_proposal(self, p: Proposal) -> None:
        """Remember proposals honest nodes received: two signed ones for one round convict their proposer."""
        seen = self.proposals_seen.setdefault((p.height, p.round, p.proposer), {})
        if p.block.hash not in seen and (not seen or p.verify(self.chain_id, self.cache)):
            seen[p.block.hash] = p

    # ------------------------------------------------------------ transport

    def gossip(self, src: SimNode, message: object) -> None:
        # What an honest node publishes: built once for all its receivers.
        compact = CompactProposal.of(message) if self.compact_proposals and type(message) is Proposal else None
        for dst, delay in self.net.broadcast(src.name):
            node = self.nodes[dst]
            node.later(delay, node.deliver, message, src.name, compact)

    def send(self, src: SimNode, message: object, targets: tuple[str, ...]) -> None:
        for dst, delay in self.net.broadcast(src.name, targets):
            node = self.nodes[dst]
            node.later(delay, node.deliver, message, src.name)

    def gossip_txs(self, src: SimNode, txs: list[Tx]) -> None:
        for dst, delay in self.net.broadcast(src.name):
            node = self.nodes[dst]
            node.later(delay, self._txs_arrive, node, txs, src.name)

    @staticmethod
    def _txs_arrive(node: SimNode, txs: list[Tx], origin: str) -> None:
        node.feed(TxsReceived(node.now, txs, origin))

    def fetch_block(self, src: SimNode, height: int, block_hash: bytes) -> None:
        for peer in self._peers_of(src):
            if peer.replica is None or peer.byzantine is not None:
                continue  # a Byzantine node answers no requests
            block = peer.replica.find_block(height, block_hash)
            stored = peer.disk.blocks.get(height)
            if block is None and stored is not None and stored[0].hash == block_hash:
                block = stored[0]
            if block is not None:
                for delay in self.net.unicast(peer.name, src.name):
                    src.later(delay, self._block_arrives, src, block, peer.name)
                return

    @staticmethod
    def _block_arrives(node: SimNode, block: Block, origin: str) -> None:
        node.feed(BlockFetched(node.now, block, origin))

    def request_blocks(self, src: SimNode, peer_name: str, from_height: int) -> None:
        peer = self.nodes[peer_name]
        if not self.net.unicast(src.name, peer_name) or not peer.up or peer.byzantine is not None:
            return
        blocks = [peer.disk.blocks[h] for h in range(from_height, from_height + SYNC_BATCH) if h in peer.disk.blocks]
        if blocks:
            for delay in self.net.unicast(peer_name, src.name)[:1]:
                src.later(delay, src.on_blocks, peer_name, blocks)

    def pull_height(self, src: SimNode) -> None:
        """Ask a few reachable peers for the messages they hold at src's current height."""
        if src.replica is None:
            return
        height = src.replica.height + 1
        peers = [
            p for p in self._peers_of(src)
            if p.replica is not None and p.byzantine is None and self.net.link_up(src.name, p.name)
        ]
        if len(peers) > PULL_PEERS:
            peers = src.rng.sample(peers, PULL_PEERS)
        for peer in peers:
            assert peer.replica is not None
            msgs = [m for m in peer.replica.current_messages() if m.height == height]
            if msgs:
                for delay in self.net.unicast(peer.name, src.name)[:1]:
                    src.later(delay, self._pulled, src, msgs, peer.name)

    @staticmethod
    def _pulled(node: SimNode, msgs: list[Proposal | Vote], origin: str) -> None:
        for m in msgs:
            node.deliver(m, origin)

    def _peers_of(self, node: SimNode) -> list[SimNode]:
        return [p for name, p in sorted(self.nodes.items()) if name != node.name and self.net.link_up(name, node.name)]

    def best_peer(self, node: SimNode) -> SimNode | None:
        peers = [
            p for p in self._peers_of(node) if p.up and p.byzantine is None and self.net.link_up(node.name, p.name)
        ]
        return max(peers, key=lambda p: (p.disk.height, p.name), default=None)

    # ------------------------------------------------------------ checks

    def forks(self, honest: set[str] | None = None) -> list[int]:
        """Heights at which (honest) nodes committed different blocks or app hashes."""
        out = []
        for h in sorted(self.commits):
            seen = {v for n, v in self.commits[h].items() if honest is None or n in honest}
            if len(seen) > 1:
                out.append(h)
        return out
