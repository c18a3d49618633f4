"""An in-memory network of consensus engines on a virtual clock, in the spirit of
etcd-io/raft's test network: every engine runs unchanged, the harness plays the
host (storage, mempool, application, gossip) and the network (latency, drops,
partitions), and every run is a pure function of its seed.

Events (message deliveries, timeouts, host answers) sit in one heap ordered by
(virtual time, sequence number), so delivery order is deterministic; latency and
drops come from a seeded `random.Random`.

The network keeps the paper's gossip assumption (section 2): a message between
two live nodes is eventually delivered. A cut link holds its messages until
`heal`; a dropped message is re-sent after `retry_ms`, as a gossip layer that
re-offers what a peer lacks would. Messages to a crashed node are lost.

What a node persists survives `crash`: its sign state, WAL and stored chain.
Everything else (the engine, pending timers, in-flight answers) is lost.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol import crypto
from protocol.consensus import (
    Action,
    BlockBuilt,
    BlockReceived,
    BlockValidity,
    Broadcast,
    BuildBlock,
    ConsensusConfig,
    Decide,
    Engine,
    HeightContext,
    IgnoreCode,
    Ignored,
    Input,
    PersistSignState,
    ProposalReceived,
    Rejected,
    ReportEvidence,
    RequestBlock,
    ScheduleTimeout,
    SignState,
    StartHeight,
    TimeoutFired,
    TxsAvailable,
    ValidateBlock,
    VoteReceived,
    WalAppend,
    WalRecord,
    verify_decided,
)
from protocol.types import ZERO_HASH, Block, Commit, DuplicateVoteEvidence, Proposal, Tx, Vote, make_block
from protocol.validators import ValidatorSet

CHAIN_ID = "ekklesia-test"
GENESIS_MS = 1_700_000_000_000
SYNC_DELAY_MS = 2_000


def keypair(i: int) -> crypto.Keypair:
    return crypto.Keypair(hashlib.sha256(b"validator-%d" % i).digest())


CLIENT = crypto.Keypair(hashlib.sha256(b"client").digest())


def make_tx(nonce: int) -> Tx:
    return Tx.create(CLIENT, CHAIN_ID, nonce, "noop", b"tx-%d" % nonce)


def app_hash_after(prev_hash: bytes) -> bytes:
    """The trivial application's state root: a function of the chain so far."""
    return hashlib.sha256(b"app" + prev_hash).digest()


@dataclass(frozen=True)
class SyncBlocks:
    """Block sync: decided blocks with their commits, oldest first."""

    blocks: tuple[tuple[Block, Commit], ...]


Payload = Proposal | Vote | SyncBlocks | Block


@dataclass(order=True)
class _Event:
    time: int
    seq: int
    kind: str = field(compare=False)
    node: int = field(compare=False)
    data: Any = field(compare=False, default=None)
    src: int = field(compare=False, default=-1)
    incarnation: int = field(compare=False, default=0)


class Strategy(Protocol):
    """A Byzantine node's rewrite of its own outgoing messages, per recipient."""

    def outgoing(self, net: Net, node: Node, msg: Proposal | Vote) -> list[tuple[int, Proposal | Vote]]: ...


class Node:
    def __init__(self, net: Net, index: int) -> None:
        self.net = net
        self.index = index
        self.key = net.keys[index]
        self.name = f"n{index}"
        self.engine: Engine | None = None
        self.incarnation = 0
        self.strategy: Strategy | None = None
        self.app_valid: Callable[[Block], bool] = lambda block: True
        # durable
        self.sign_state: SignState | None = None
        self.wal: list[WalRecord] = []
        self.chain: dict[int, tuple[Block, Commit]] = {}
        # volatile / observations
        self.mempool: list[Tx] = []
        self.decided_rounds: dict[int, int] = {}
        self.signed: list[Proposal | Vote] = []  # broadcast by this node's engines
        self.persisted: list[Proposal | Vote] = []  # every message a written sign state held
        self.rejected: list[Rejected] = []
        self.ignored: list[Ignored] = []
        self.evidence: list[DuplicateVoteEvidence] = []
        self.requests: list[RequestBlock] = []
        self.actions_done = 0
        self.trace: list[str] = []  # the class name of every action executed, in order
        self.crash_at: int | None = None
        self.lose_wal_on_crash = False
        self.restart_after: int | None = None
        self.synced_to: dict[tuple[int, int], int] = {}

    @property
    def up(self) -> bool:
        return self.engine is not None

    @property
    def tip(self) -> int:
        return max(self.chain, default=0)

    @property
    def honest(self) -> bool:
        return self.strategy is None

    def decided_hash(self, height: int) -> bytes | None:
        entry = self.chain.get(height)
        return None if entry is None else entry[0].hash

    # ------------------------------------------------------------ host

    def start_input(self) -> StartHeight:
        h = self.tip + 1
        net = self.net
        if h == 1:
            return StartHeight(
                now_ms=net.now,
                height=1,
                validators=net.vset(1),
                prev_block_hash=ZERO_HASH,
                prev_block_time_ms=GENESIS_MS,
                txs_available=bool(self.mempool),
            )
        prev, commit = self.chain[h - 1]
        return StartHeight(
            now_ms=net.now,
            height=h,
            validators=net.vset(h),
            prev_block_hash=prev.hash,
            prev_block_time_ms=prev.header.time_ms,
            last_commit=commit,
            last_validators=net.vset(h - 1),
            prev_block_empty=not prev.txs,
            txs_available=bool(self.mempool),
        )

    def context(self, height: int) -> HeightContext:
        if height == 1:
            return HeightContext(CHAIN_ID, 1, self.net.vset(1), ZERO_HASH, GENESIS_MS, None)
        prev = self.chain[height - 1][0]
        return HeightContext(
            CHAIN_ID, height, self.net.vset(height), prev.hash, prev.header.time_ms, self.net.vset(height - 1)
        )

    def boot(self) -> None:
        self.engine = Engine(
            chain_id=CHAIN_ID,
            key=self.key,
            config=self.net.config,
            cache=crypto.VerifyCache(),
            sign_state=self.sign_state,
        )
        start = self.start_input()
        self.execute(self.engine.restore(start, [r for r in self.wal if r.height == start.height]))

    def crash(self) -> None:
        self.engine = None
        self.incarnation += 1
        self.mempool = []
        if self.lose_wal_on_crash:
            self.wal = []  # a WAL written without fsync: only the sign state is durable
        if self.restart_after is not None:
            self.net.post(self.net.now + self.restart_after, "restart", self.index)

    def feed(self, inp: Input) -> None:
        if self.engine is not None:
            self.execute(self.engine.handle(inp))

    def execute(self, actions: list[Action]) -> None:
        net = self.net
        for action in actions:
            if self.crash_at is not None and self.actions_done >= self.crash_at:
                self.crash_at = None
                self.crash()
                return
            self.actions_done += 1
            self.trace.append(type(action).__name__)
            match action:
                case PersistSignState():
                    self.sign_state = action.state
                    self.persisted.append(action.state.message)
                case WalAppend():
                    self.wal.append(action.record)
                case Broadcast():
                    self.signed.append(action.message)
                    net.broadcast(self, action.message)
                case ScheduleTimeout():
                    t = TimeoutFired(0, action.step, action.height, action.round)
                    net.post(net.now + action.delay_ms, "timeout", self.index, t, incarnation=self.incarnation)
                case BuildBlock():
                    built = BlockBuilt(0, action.height, action.round, self.build(action))
                    net.post(net.now, "input", self.index, built, incarnation=self.incarnation)
                case ValidateBlock():
                    block = action.block
                    ok = block.header.app_hash == app_hash_after(block.header.prev_hash) and self.app_valid(block)
                    answer = BlockValidity(0, action.height, block.hash, ok, "" if ok else "app rejects")
                    net.post(net.now, "input", self.index, answer, incarnation=self.incarnation)
                case Decide():
                    self.store(action.block, action.commit)
                    self.decided_rounds[action.height] = action.round
                    net.post(net.now, "start", self.index, action.height + 1, incarnation=self.incarnation)
                case ReportEvidence():
                    self.evidence.append(action.evidence)
                case RequestBlock():
                    self.requests.append(action)
                    net.fetch(self, action.block_hash)
                case Rejected():
                    self.rejected.append(action)
                case Ignored():
                    self.ignored.append(action)
                    if action.code == IgnoreCode.STALE_HEIGHT:
                        net.serve_sync(self, action.origin, action.height)

    def build(self, req: BuildBlock) -> Block:
        return make_block(
            chain_id=CHAIN_ID,
            height=req.height,
            time_ms=req.time_ms,
            prev_hash=req.prev_hash,
            app_hash=app_hash_after(req.prev_hash),
            validators_hash=req.validators_hash,
            proposer=req.proposer,
            txs=tuple(self.mempool[:50]),
            last_commit=req.last_commit,
        )

    def store(self, block: Block, commit: Commit) -> None:
        if block.height in self.chain:
            raise AssertionError(f"{self.name} stored height {block.height} twice")
        self.chain[block.height] = (block, commit)
        included = {tx.hash for tx in block.txs}
        self.mempool = [tx for tx in self.mempool if tx.hash not in included]
        # Records below the next height are never read again.
        self.wal = [r for r in self.wal if r.height > block.height]

    def on_sync(self, msg: SyncBlocks) -> None:
        stored = False
        for block, commit in msg.blocks:
            if block.height != self.tip + 1:
                continue
            reason = verify_decided(self.context(block.height), block, commit)
            if reason is not None:
                raise AssertionError(f"{self.name}: bad sync block: {reason}")
            self.store(block, commit)
            stored = True
        if stored and self.engine is not None:
            self.feed(self.start_input())

    def submit(self, tx: Tx) -> None:
        self.mempool.append(tx)
        self.feed(TxsAvailable(self.net.now))


class Net:
    """n nodes, a message queue and a virtual clock."""

    def __init__(
        self,
        n: int = 4,
        *,
        seed: int = 0,
        powers: list[int] | None = None,
        config: ConsensusConfig | None = None,
        latency: tuple[int, int] = (5, 40),
        vsets: Callable[[int], ValidatorSet] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.keys = [keypair(i) for i in range(n)]
        self.config = config if config is not None else ConsensusConfig()
        self.latency = latency
        self.now = GENESIS_MS
        self._events: list[_Event] = []
        self._seq = 0
        base = ValidatorSet.of([(k.public_key, p) for k, p in zip(self.keys, powers or [1] * n, strict=True)])
        self.vset: Callable[[int], ValidatorSet] = vsets if vsets is not None else (lambda h: base)
        self.nodes = [Node(self, i) for i in range(n)]
        self.cut_links: set[frozenset[int]] = set()
        self.held: list[tuple[int, int, Payload]] = []
        self.drop_percent = 0
        self.retry_ms = 1_000
        self.archive: dict[bytes, Block] = {}
        self.delivered = 0

    # ------------------------------------------------------------ control

    def start(self) -> Net:
        for node in self.nodes:
            node.boot()
        return self

    def post(self, at: int, kind: str, node: int, data: Any = None, *, src: int = -1, incarnation: int = -1) -> None:
        self._seq += 1
        heapq.heappush(self._events, _Event(at, self._seq, kind, node, data, src, incarnation))

    def isolate(self, *indices: int) -> None:
        """Cut every link between `indices` and the other nodes."""
        inside = set(indices)
        for a in inside:
            for b in range(len(self.nodes)):
                if b not in inside:
                    self.cut_links.add(frozenset((a, b)))

    def partition(self, *groups: Iterable[int]) -> None:
        sets = [set(g) for g in groups]
        for i, a_group in enumerate(sets):
            for b_group in sets[i + 1 :]:
                for a in a_group:
                    for b in b_group:
                        self.cut_links.add(frozenset((a, b)))

    def cut(self, a: int, b: int) -> None:
        self.cut_links.add(frozenset((a, b)))

    def heal(self) -> None:
        """Reconnect every link, stop dropping, and deliver what the cuts held back."""
        self.cut_links.clear()
        self.drop_percent = 0
        held, self.held = self.held, []
        for src, dst, payload in held:
            self.send(src, dst, payload)

    def connected(self, a: int, b: int) -> bool:
        return frozenset((a, b)) not in self.cut_links

    def crash(self, index: int, restart_after: int | None = None) -> None:
        node = self.nodes[index]
        node.restart_after = restart_after
        node.crash()

    def restart(self, index: int) -> None:
        node = self.nodes[index]
        if not node.up:
            node.boot()

    # ------------------------------------------------------------ messaging

    def broadcast(self, node: Node, msg: Proposal | Vote) -> None:
        if node.strategy is not None:
            sends = node.strategy.outgoing(self, node, msg)
        else:
            sends = [(d, msg) for d in range(len(self.nodes)) if d != node.index]
        for dst, m in sends:
            self.send(node.index, dst, m)

    def send(self, src: int, dst: int, payload: Payload, *, delay: int = 0) -> None:
        if isinstance(payload, Proposal):
            self.archive[payload.block.hash] = payload.block
        if not self.connected(src, dst):
            self.held.append((src, dst, payload))
            return
        at = self.now + delay + self.rng.randint(*self.latency)
        while self.drop_percent and self.rng.randrange(100) < self.drop_percent:
            at += self.retry_ms
        self.post(at, "deliver", dst, payload, src=src)

    def fetch(self, node: Node, block_hash: bytes) -> None:
        """Stands in for asking peers for a block by hash: the lowest-numbered peer has it."""
        block = self.archive.get(block_hash)
        if block is not None and len(self.nodes) > 1:
            self.send(1 if node.index == 0 else 0, node.index, block)

    def serve_sync(self, node: Node, origin: str, height: int) -> None:
        """A peer sent a message for a height this node has stored: send it the blocks
        it lacks, after `SYNC_DELAY_MS` so that a peer which is merely a few
        milliseconds behind decides on its own (it then ignores the blocks)."""
        if not origin.startswith("n") or height not in node.chain:
            return
        dst = int(origin[1:])
        last = node.synced_to.get((dst, height))
        if last is not None and self.now - last < SYNC_DELAY_MS:
            return
        node.synced_to[(dst, height)] = self.now
        blocks = tuple(node.chain[h] for h in range(height, node.tip + 1))
        self.send(node.index, dst, SyncBlocks(blocks), delay=SYNC_DELAY_MS)

    # ------------------------------------------------------------ running

    def step(self) -> bool:
        if not self._events:
            return False
        ev = heapq.heappop(self._events)
        self.now = max(self.now, ev.time)
        node = self.nodes[ev.node]
        if ev.kind == "restart":
            self.restart(ev.node)
            return True
        if not node.up or (ev.incarnation != -1 and ev.incarnation != node.incarnation):
            return True
        if ev.kind == "deliver":
            if not self.connected(ev.src, ev.node):
                self.held.append((ev.src, ev.node, ev.data))
                return True
            self.delivered += 1
            origin = f"n{ev.src}"
            data = ev.data
            if isinstance(data, Proposal):
                node.feed(ProposalReceived(self.now, data, origin))
            elif isinstance(data, Vote):
                node.feed(VoteReceived(self.now, data, origin))
            elif isinstance(data, SyncBlocks):
                node.on_sync(data)
            elif isinstance(data, Block):
                node.feed(BlockReceived(self.now, data, origin))
        elif ev.kind == "timeout":
            t = ev.data
            node.feed(TimeoutFired(self.now, t.step, t.height, t.round))
        elif ev.kind == "input":
            node.feed(_restamp(ev.data, self.now))
        elif ev.kind == "start" and node.tip + 1 == ev.data:
            node.feed(node.start_input())
        return True

    def run(self, until: Callable[[], bool], *, max_ms: int = 120_000) -> bool:
        """Process events until `until()` holds (True) or `max_ms` of virtual time pass (False)."""
        deadline = self.now + max_ms
        while not until():
            if not self._events or self._events[0].time > deadline:
                return False
            self.step()
        return True

    def run_for(self, ms: int) -> None:
        deadline = self.now + ms
        while self._events and self._events[0].time <= deadline:
            self.step()
        self.now = deadline

    # ------------------------------------------------------------ checks

    def all_reached(self, height: int, nodes: Iterable[int] | None = None) -> Callable[[], bool]:
        chosen = list(range(len(self.nodes))) if nodes is None else list(nodes)
        return lambda: all(self.nodes[i].tip >= height for i in chosen)

    def honest(self) -> list[Node]:
        return [n for n in self.nodes if n.honest]

    def check_agreement(self) -> dict[int, bytes]:
        """No two honest nodes store different blocks at one height; returns the chain."""
        chain: dict[int, bytes] = {}
        for node in self.honest():
            for h, (block, _) in node.chain.items():
                seen = chain.setdefault(h, block.hash)
                assert seen == block.hash, f"honest nodes disagree at height {h}"
        return chain

    def check_no_double_sign(self) -> None:
        """No honest node ever broadcast or persisted two different messages for one
        (height, round, step), across all its restarts."""
        for node in self.honest():
            seen: dict[tuple[str, int, int, int], Proposal | Vote] = {}
            for msg in node.signed + node.persisted:
                key = (
                    ("proposal", msg.height, msg.round, 0)
                    if isinstance(msg, Proposal)
                    else ("vote", msg.height, msg.round, int(msg.type))
                )
                first = seen.setdefault(key, msg)
                assert first == msg, f"{node.name} double-signed {key}"


def _restamp(inp: Any, now: int) -> Any:
    if isinstance(inp, BlockBuilt):
        return BlockBuilt(now, inp.height, inp.round, inp.block)
    if isinstance(inp, BlockValidity):
        return BlockValidity(now, inp.height, inp.block_hash, inp.valid, inp.reason)
    raise TypeError(type(inp))


# ---------------------------------------------------------------- Byzantine behaviour


def alternative_block(block: Block, salt: int) -> Block:
    """The same header fields with one more transaction: valid, and a different hash."""
    h = block.header
    return make_block(
        chain_id=h.chain_id,
        height=h.height,
        time_ms=h.time_ms,
        prev_hash=h.prev_hash,
        app_hash=h.app_hash,
        validators_hash=h.validators_hash,
        proposer=h.proposer,
        txs=(*block.txs, make_tx(10_000_000 + salt)),
        last_commit=block.last_commit,
        evidence=block.evidence,
    )


def others(net: Net, node: Node) -> list[int]:
    return [d for d in range(len(net.nodes)) if d != node.index]


class EquivocatingProposer:
    """Signs a second block for each proposal and sends it to `side_b`."""

    def __init__(self, side_b: Iterable[int]) -> None:
        self.side_b = set(side_b)

    def outgoing(self, net: Net, node: Node, msg: Proposal | Vote) -> list[tuple[int, Proposal | Vote]]:
        if not isinstance(msg, Proposal):
            return [(d, msg) for d in others(net, node)]
        alt = alternative_block(msg.block, msg.round)
        twin = Proposal.create(node.key, CHAIN_ID, msg.height, msg.round, msg.pol_round, alt, msg.timestamp_ms)
        return [(d, twin if d in self.side_b else msg) for d in others(net, node)]


class DoubleVoter:
    """Sends every vote together with a conflicting one (block ↔ nil) to every peer."""

    def outgoing(self, net: Net, node: Node, msg: Proposal | Vote) -> list[tuple[int, Proposal | Vote]]:
        if not isinstance(msg, Vote):
            return [(d, msg) for d in others(net, node)]
        other_hash = None if msg.block_hash is not None else hashlib.sha256(b"bogus").digest()
        twin = Vote.create(node.key, CHAIN_ID, msg.type, msg.height, msg.round, other_hash, msg.timestamp_ms)
        out: list[tuple[int, Proposal | Vote]] = []
        for d in others(net, node):
            pair = [msg, twin]
            net.rng.shuffle(pair)
            out.extend((d, m) for m in pair)
        return out


class Coalition:
    """Byzantine validators acting together: every block one of them proposes has
    a twin shown to `side_b`, and their votes for a block go to `side_b` as votes
    for its twin. Everyone else sees the original."""

    def __init__(self, side_b: Iterable[int]) -> None:
        self.side_b = set(side_b)
        self.twin: dict[bytes, bytes] = {}

    def member(self) -> Strategy:
        return _CoalitionMember(self)


class _CoalitionMember:
    def __init__(self, coalition: Coalition) -> None:
        self.c = coalition

    def outgoing(self, net: Net, node: Node, msg: Proposal | Vote) -> list[tuple[int, Proposal | Vote]]:
        if isinstance(msg, Proposal):
            alt = alternative_block(msg.block, msg.round)
            self.c.twin[msg.block.hash] = alt.hash
            other: Proposal | Vote = Proposal.create(
                node.key, CHAIN_ID, msg.height, msg.round, msg.pol_round, alt, msg.timestamp_ms
            )
        elif msg.block_hash is not None and msg.block_hash in self.c.twin:
            twin_hash = self.c.twin[msg.block_hash]
            other = Vote.create(node.key, CHAIN_ID, msg.type, msg.height, msg.round, twin_hash, msg.timestamp_ms)
        else:
            other = msg
        return [(d, other if d in self.c.side_b else msg) for d in others(net, node)]
