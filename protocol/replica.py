"""A replica: consensus engine + mempool + governance state machine as one pure unit.

This is the code every ekklesia validator runs, whether under trio and libp2p
(`node/`) or under virtual time (`simulations/`). It answers the engine's
application questions itself — build a block, validate a block, execute a decided
block — from the committed state it is given to read, so the host only does IO:

    inputs                                  actions (execute in order)
    Boot / StartConsensus / StopConsensus   Broadcast(proposal | vote | evidence)
    ConsensusMessage(msg, origin)           ScheduleTimeout(step, height, round, delay)
    Timeout(step, height, round)            PersistSignState / WalAppend (sync before
    TxsReceived(txs, origin)                    the Broadcast that follows)
    BlockStored(height)                     CommitBlock(block, commit, result)
    SyncedBlock(block, commit, origin)      RequestBlock(height, round, hash)
    BlockFetched(block, origin)             TxAdmitted(...), Penalise(origin, reason)
    Tick (about every second)               GossipTxs(txs): re-offer what stays pending
                                            PersistPendingTxs(txs) (sync before the
                                                TxAdmitted acks that follow)
                                            ForgetPendingTxs(hashes)

A proposal may come compact (`protocol.compact`: its txs named by hash, as the
host gossips it). The replica rebuilds it from its mempool and the gossiped txs it
refused, and hands the engine the full proposal; one it cannot rebuild is checked
(proposer, signature, tx root) and waits, bounded, for its txs: it goes on when
`TxsReceived` brings them, or, still incomplete at a `Tick` 0.5 s on, is fetched
whole with a `RequestBlock` (answered by a full `ConsensusMessage` or `BlockFetched`).

The host applies `CommitBlock` to its store (the state `KVReader` the replica reads
must then show the new state) and answers with `BlockStored`; only then does the
replica start the next height. A replica in sync mode runs no engine and never
signs: it only verifies and applies `SyncedBlock`s until the host starts consensus.

Transactions a client submitted to this node (origin `LOCAL`) are acknowledged only
once stored: the accepted ones of a submission go out as one `PersistPendingTxs`
before their `TxAdmitted` acks, so an acked tx survives a crash of this node even
when its gossip reached nobody. They stay stored while they are pending here and are
forgotten (`ForgetPendingTxs`) when a block commits them or makes them stale. `Boot`
hands the stored ones back; the replica re-checks their envelope (signatures, chain,
nonce, fee) against the committed state once it leaves sync mode, re-admits and
re-gossips the valid ones (one whose kind would now fail is committed as a failure),
forgets the invalid ones, and keeps one whose earlier nonce is missing here ("parked") until that
nonce arrives or is passed. At most `max_local_pending_txs` / `_bytes` are held: a
submission beyond that is refused, never acked unstored. Txs received by gossip are
not stored: the node that acked them holds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from protocol import crypto
from protocol.compact import CompactProposal, WaitingRoom
from protocol.consensus import messages as cm
from protocol.consensus.config import ConsensusConfig
from protocol.consensus.engine import Engine
from protocol.consensus.signstate import SignState
from protocol.consensus.step import Step
from protocol.consensus.wal import WalRecord
from protocol.errors import InvariantViolation, ValidationError
from protocol.governance import queries
from protocol.governance.app import BlockResult, apply_block, check_tx
from protocol.governance.apphash import app_hash
from protocol.governance.codes import Code
from protocol.governance.validator_set import validators_for
from protocol.kv import KVReader
from protocol.limits import MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_EVIDENCE
from protocol.mempool import LOCAL_PENDING_MAX_BYTES, LOCAL_PENDING_MAX_TXS, Mempool, MempoolLimits
from protocol.types import Block, Commit, DuplicateVoteEvidence, Proposal, Tx, Vote, make_block
from protocol.validators import verify_commit

# Results a proposer could only produce by including garbage: the block is invalid.
_PROPOSER_FAULTS = frozenset({Code.WRONG_CHAIN, Code.BAD_SIGNATURE})
EVIDENCE_POOL_MAX = 1_000
REGOSSIP_AGE_MS = 3_000  # a pending tx is offered to peers again after this long
REGOSSIP_MAX = 2_000  # txs per tick (one gossip batch)
LOCAL = "local"  # origin of transactions submitted to this node directly
DEFAULT_MAX_BLOCK_TXS = 5_000
# Compact proposals waiting for transactions this node has not received (yet).
COMPACT_PENDING_MAX = 8
COMPACT_FETCH_AFTER_MS = 500  # then the full proposal is asked for (at the next Tick)
COMPACT_REFETCH_MS = 2_000
# Gossiped txs this node refused (a nonce gap, a full pool) may still be in a
# proposal: kept to rebuild compact proposals without a fetch.
HEARD_MAX = 10_000


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    chain_id: str
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)
    mempool: MempoolLimits = field(default_factory=MempoolLimits)
    max_block_txs: int = DEFAULT_MAX_BLOCK_TXS
    max_block_bytes: int = 2 * 1024 * 1024
    max_local_pending_txs: int = LOCAL_PENDING_MAX_TXS  # acked local txs stored and not yet committed
    max_local_pending_bytes: int = LOCAL_PENDING_MAX_BYTES

    def __post_init__(self) -> None:
        if not 0 < self.max_block_txs <= MAX_BLOCK_TXS or not 0 < self.max_block_bytes <= MAX_BLOCK_BYTES - 64 * 1024:
            raise ValueError("block limits exceed the protocol's hard limits")
        if self.max_local_pending_txs < 1 or self.max_local_pending_bytes < 1:
            raise ValueError("the local pending tx limits must be positive")


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Boot:
    """The node (re)started. `last_block`/`last_commit`: the stored head (None at
    genesis). With `catching_up` the replica starts in sync mode. `pending_txs`: the
    stored local txs (every `PersistPendingTxs` not followed by a `ForgetPendingTxs`)."""

    now_ms: int
    last_block: Block | None
    last_commit: Commit | None
    sign_state: SignState | None
    wal: Sequence[WalRecord]
    catching_up: bool = False
    pending_txs: Sequence[Tx] = ()


@dataclass(frozen=True, slots=True)
class StartConsensus:
    """Leave sync mode: start the engine at the height after the stored head."""

    now_ms: int
    last_block: Block | None
    last_commit: Commit | None
    sign_state: SignState | None
    wal: Sequence[WalRecord]


@dataclass(frozen=True, slots=True)
class StopConsensus:
    """Enter sync mode (the node fell behind): drop the engine, refuse new txs."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class ConsensusMessage:
    now_ms: int
    message: Proposal | CompactProposal | Vote | DuplicateVoteEvidence
    origin: str


@dataclass(frozen=True, slots=True)
class Timeout:
    now_ms: int
    step: Step
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class TxsReceived:
    now_ms: int
    txs: Sequence[Tx]
    origin: str  # LOCAL for submissions to this node, else the peer


@dataclass(frozen=True, slots=True)
class BlockStored:
    now_ms: int
    height: int


@dataclass(frozen=True, slots=True)
class SyncedBlock:
    now_ms: int
    block: Block
    commit: Commit
    origin: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Periodic (about every second): re-offer transactions that stay pending."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class BlockFetched:
    now_ms: int
    block: Block
    origin: str


Input = (
    Boot | StartConsensus | StopConsensus | ConsensusMessage | Timeout | TxsReceived | BlockStored | SyncedBlock
    | BlockFetched | Tick
)

# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Proposal | Vote | DuplicateVoteEvidence


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """Store atomically: block, commit, the result's write set, tx results, app hash."""

    block: Block
    commit: Commit
    result: BlockResult
    synced: bool


@dataclass(frozen=True, slots=True)
class TxAdmitted:
    tx: Tx
    tx_hash: bytes
    accepted: bool
    reason: str
    origin: str


@dataclass(frozen=True, slots=True)
class GossipTxs:
    """Offer these pending transactions to peers again (one batch)."""

    txs: tuple[Tx, ...]


@dataclass(frozen=True, slots=True)
class Penalise:
    origin: str
    reason: str
    culprit: bytes | None = None


@dataclass(frozen=True, slots=True)
class PersistPendingTxs:
    """Add these locally submitted txs to the stored pending set, durably (one synced
    batch), before the `TxAdmitted` acks that follow."""

    txs: tuple[Tx, ...]


@dataclass(frozen=True, slots=True)
class ForgetPendingTxs:
    """Remove these tx hashes from the stored pending set (committed, stale or invalid).
    Durability at the host's pace: a forget lost in a crash is redone after the boot."""

    hashes: tuple[bytes, ...]


Action = (
    Broadcast | cm.ScheduleTimeout | cm.PersistSignState | cm.WalAppend | cm.RequestBlock | CommitBlock
    | TxAdmitted | GossipTxs | Penalise | cm.Ignored | PersistPendingTxs | ForgetPendingTxs
)


class Replica:
    def __init__(
        self,
        config: ReplicaConfig,
        state: KVReader,
        key: crypto.Keypair | None,
        cache: crypto.VerifyCache | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.key = key
        self.cache = cache if cache is not None else crypto.VerifyCache()
        self.mempool = Mempool(
            stateless_check=self._stateless_check,
            stateful_check=self._stateful_check,
            account_nonce=lambda pk: queries.account_nonce(self.state, pk),
            limits=config.mempool,
        )
        self.engine: Engine | None = None
        self.head: Block | None = None
        self.head_commit: Commit | None = None
        self._results: dict[bytes, BlockResult] = {}  # executed blocks of the current height
        self._committing: tuple[Block, Commit] | None = None  # handed to the host, not yet stored
        self._evidence: dict[bytes, DuplicateVoteEvidence] = {}
        # Local txs stored by the host (hash -> tx, encoded size); each is in the mempool
        # or parked: restored and not re-admitted yet, or waiting for an earlier nonce.
        self._stored_txs: dict[bytes, tuple[Tx, int]] = {}
        self._stored_bytes = 0
        self._parked: dict[bytes, Tx] = {}
        self.waiting = WaitingRoom(self.mempool.get, max_waiting=COMPACT_PENDING_MAX, max_heard=HEARD_MAX,
                                   fetch_after_ms=COMPACT_FETCH_AFTER_MS, refetch_ms=COMPACT_REFETCH_MS)
        self.now_ms = 0

    # ------------------------------------------------------------ queries

    @property
    def height(self) -> int:
        """The last stored height (0 at genesis)."""
        return self.head.height if self.head is not None else 0

    @property
    def syncing(self) -> bool:
        return self.engine is None

    @property
    def committing(self) -> bool:
        """A CommitBlock was handed to the host and its BlockStored has not come back."""
        return self._committing is not None

    @property
    def stored_txs(self) -> int:
        """Local txs the host holds for this replica (acked, not yet committed)."""
        return len(self._stored_txs)

    @property
    def parked_txs(self) -> int:
        """Stored local txs not in the mempool (restored and waiting for an earlier nonce)."""
        return len(self._parked)

    def current_messages(self) -> list[Proposal | Vote]:
        return self.engine.messages() if self.engine is not None else []

    def find_block(self, height: int, block_hash: bytes) -> Block | None:
        """A block proposed at the current height (to answer a peer's RequestBlock)."""
        for m in self.current_messages():
            if isinstance(m, Proposal) and m.height == height and m.block.hash == block_hash:
                return m.block
        return None

    # ------------------------------------------------------------ entry point

    def handle(self, inp: Input) -> list[Action]:
        self.now_ms = inp.now_ms
        out: list[Action] = []
        match inp:
            case Boot():
                self.head, self.head_commit = inp.last_block, inp.last_commit
                self._restore_txs(inp.pending_txs)
                if inp.catching_up:
                    self.mempool.syncing = True
                    # Re-checked when consensus starts; peers that are caught up can take them now.
                    self._gossip(list(self._parked.values()), out)
                else:
                    self._start_engine(inp.sign_state, inp.wal, out)
            case StartConsensus():
                self.head, self.head_commit = inp.last_block, inp.last_commit
                if self.engine is None:
                    self._start_engine(inp.sign_state, inp.wal, out)
            case StopConsensus():
                self.engine = None
                self.mempool.syncing = True
                self._results.clear()
                self.waiting.clear()
            case ConsensusMessage():
                self._on_message(inp, out)
            case Timeout():
                if self.engine is not None:
                    self._drive(self.engine.handle(cm.TimeoutFired(inp.now_ms, inp.step, inp.height, inp.round)), out)
            case TxsReceived():
                self._on_txs(inp, out)
            case BlockStored():
                self._on_stored(inp, out)
            case SyncedBlock():
                self._on_synced(inp, out)
            case Tick():
                self._retry_parked(out)
                # Txs that did not come by gossip in good time: the host fetches the
                # whole proposal from peers (it pulls the height's proposals and votes).
                for cp in self.waiting.due(inp.now_ms):
                    out.append(cm.RequestBlock(cp.height, cp.round, cp.block_hash))
                stale = self.mempool.stale(inp.now_ms, REGOSSIP_AGE_MS, REGOSSIP_MAX)
                if stale:
                    out.append(GossipTxs(tuple(stale)))
            case BlockFetched():
                if self.engine is not None and not self._fetched_for_waiting(inp, out):
                    self._drive(self.engine.handle(cm.BlockReceived(inp.now_ms, inp.block, inp.origin)), out)
        return out

    # ------------------------------------------------------------ engine

    def _start_request(self) -> cm.StartHeight:
        h = self.height + 1
        head = self.head
        return cm.StartHeight(
            now_ms=self.now_ms,
            height=h,
            validators=validators_for(self.state, h),
            prev_block_hash=head.hash if head is not None else bytes(32),
            prev_block_time_ms=head.header.time_ms if head is not None else queries.last_time_ms(self.state),
            last_commit=self.head_commit,
            last_validators=validators_for(self.state, h - 1) if h > 1 else None,
            prev_block_empty=head is not None and not head.txs,
            txs_available=len(self.mempool) > 0,
        )

    def _start_engine(self, sign_state: SignState | None, wal: Sequence[WalRecord], out: list[Action]) -> None:
        self.mempool.syncing = False
        self._retry_parked(out)  # before the first height, so it knows whether txs wait
        self.engine = Engine(
            chain_id=self.config.chain_id,
            key=self.key,
            config=self.config.consensus,
            cache=self.cache,
            sign_state=sign_state,
        )
        self._drive(self.engine.restore(self._start_request(), wal), out)

    def _drive(self, actions: list[cm.Action], out: list[Action]) -> None:
        """Execute the engine's application questions here; pass IO to the host in order."""
        engine = self.engine
        assert engine is not None
        for a in actions:
            match a:
                case cm.BuildBlock():
                    block = self._build(a)
                    self._drive(engine.handle(cm.BlockBuilt(self.now_ms, a.height, a.round, block)), out)
                case cm.ValidateBlock():
                    reason = self._validate(a.block)
                    answer = cm.BlockValidity(self.now_ms, a.height, a.block.hash, reason is None, reason or "")
                    self._drive(engine.handle(answer), out)
                case cm.Decide():
                    self._decide(a.block, a.commit, out, synced=False)
                case cm.ReportEvidence():
                    if self._add_evidence(a.evidence):
                        out.append(Broadcast(a.evidence))
                case cm.Rejected():
                    out.append(Penalise(a.origin, f"{a.code.value}: {a.reason}", a.culprit))
                case cm.Broadcast():
                    out.append(Broadcast(a.message))
                case _:
                    out.append(a)

    def _on_message(self, inp: ConsensusMessage, out: list[Action]) -> None:
        msg = inp.message
        if isinstance(msg, DuplicateVoteEvidence):
            if not msg.verify(self.config.chain_id, self.cache):
                out.append(Penalise(inp.origin, "evidence with bad signatures"))
            else:
                self._add_evidence(msg)
            return
        if self.engine is None:
            out.append(cm.Ignored(cm.IgnoreCode.NO_HEIGHT, "syncing", inp.origin, msg.height))
            return
        if isinstance(msg, CompactProposal):
            self._on_compact(msg, inp.origin, out)
            return
        inner: cm.Input
        if isinstance(msg, Proposal):
            if msg.block.hash in self.waiting and msg.block.check_structure() is None:
                self.waiting.drop(msg.block.hash)  # a full copy came (a pull answered), not an altered one
            inner = cm.ProposalReceived(inp.now_ms, msg, inp.origin)
        else:
            inner = cm.VoteReceived(inp.now_ms, msg, inp.origin)
        self._drive(self.engine.handle(inner), out)

    # ------------------------------------------------------------ application

    def _build(self, req: cm.BuildBlock) -> Block:
        txs = self.mempool.reap(self.config.max_block_bytes, self.config.max_block_txs)
        evidence = tuple(
            sorted(
                (e for e in self._evidence.values() if e.height < req.height),
                key=lambda e: (e.height, e.digest()),
            )[:MAX_EVIDENCE]
        )
        return make_block(
            chain_id=self.config.chain_id,
            height=req.height,
            time_ms=req.time_ms,
            prev_hash=req.prev_hash,
            app_hash=app_hash(self.state),
            validators_hash=req.validators_hash,
            proposer=req.proposer,
            txs=tuple(txs),
            last_commit=req.last_commit,
            evidence=evidence,
        )

    def _execute(self, block: Block) -> BlockResult | str:
        cached = self._results.get(block.hash)
        if cached is not None:
            return cached
        if block.header.app_hash != app_hash(self.state):
            return "app hash differs from this node's state"
        if len(block.encode()) > MAX_BLOCK_BYTES:
            return "block exceeds the size limit"
        try:
            result = apply_block(self.state, block, cache=self.cache)
        except ValidationError as exc:
            return exc.reason
        for i, r in enumerate(result.tx_results):
            if r.code in _PROPOSER_FAULTS:
                return f"tx {i} is not admissible: {r.reason}"
        self._results[block.hash] = result
        return result

    def _validate(self, block: Block) -> str | None:
        result = self._execute(block)
        return result if isinstance(result, str) else None

    def _decide(self, block: Block, commit: Commit, out: list[Action], *, synced: bool) -> None:
        if block.height != self.height + 1 or self._committing is not None:
            return  # already stored or being stored (sync and consensus raced)
        result = self._execute(block)
        if isinstance(result, str):
            # +2/3 of the validators committed a block this state machine refuses:
            # this node's state has diverged. Continuing would fork it silently.
            raise InvariantViolation(f"decided block {block.hash.hex()} at {block.height} fails here: {result}")
        self._committing = (block, commit)
        out.append(CommitBlock(block, commit, result, synced))

    def _on_stored(self, inp: BlockStored, out: list[Action]) -> None:
        pending = self._committing
        if pending is None or pending[0].height != inp.height:
            raise InvariantViolation(f"stored height {inp.height} was not being committed")
        self._committing = None
        block, commit = pending
        self.head, self.head_commit = block, commit
        self._results.clear()
        self.waiting.drop_before(block.height + 1, 0)
        evicted = self.mempool.update(block.txs)
        if self._stored_txs:
            self._after_block(block, evicted, out)
        for ev in block.evidence:
            self._evidence.pop(ev.digest(), None)
        if self.engine is not None:
            self._drive(self.engine.handle(self._start_request()), out)

    # ------------------------------------------------------------ sync

    def _on_synced(self, inp: SyncedBlock, out: list[Action]) -> None:
        block, commit = inp.block, inp.commit
        if block.height != self.height + 1 or self._committing is not None:
            return
        reason = block.check_structure()
        vals = validators_for(self.state, block.height)
        expected_prev = self.head.hash if self.head is not None else bytes(32)
        if reason is None and block.header.chain_id != self.config.chain_id:
            reason = "block for another chain"
        if reason is None and block.header.prev_hash != expected_prev:
            reason = "block does not extend this node's chain"
        if reason is None and block.header.validators_hash != vals.hash:
            reason = "validators hash differs from the state's validator set"
        if reason is None:
            reason = verify_commit(commit, self.config.chain_id, vals, block.hash, block.height, self.cache)
        if reason is not None:
            out.append(Penalise(inp.origin, f"synced block {block.height}: {reason}"))
            return
        self._decide(block, commit, out, synced=True)

    # ------------------------------------------------------------ transactions

    def _stateless_check(self, tx: Tx) -> str | None:
        if tx.chain_id != self.config.chain_id:
            return f"tx is for chain {tx.chain_id!r}"
        return None if tx.verify_signatures(self.cache) else "a signature does not verify"

    def _stateful_check(self, tx: Tx) -> str | None:
        r = check_tx(self.state, tx, self.cache)
        return None if r.ok else r.reason

    def _envelope_check(self, tx: Tx) -> str | None:
        r = check_tx(self.state, tx, self.cache, standing=False)
        return None if r.ok else r.reason

    def _on_txs(self, inp: TxsReceived, out: list[Action]) -> None:
        had = len(self.mempool)
        if inp.origin == LOCAL:
            self._on_local_txs(inp, out)
        else:
            forged = 0
            for tx in inp.txs:
                adm = self.mempool.add(tx, inp.now_ms)
                out.append(TxAdmitted(tx, adm.tx_hash, adm.accepted, adm.reason, inp.origin))
                if adm.accepted:
                    self._parked.pop(adm.tx_hash, None)  # a peer held one of ours too
                elif adm.reason == "a signature does not verify":
                    forged += 1
                elif adm.reason != "duplicate transaction":
                    self.waiting.hear(adm.tx_hash, tx)
            if forged:  # one penalty per batch: a batch of forgeries is one offence, not thousands
                out.append(Penalise(inp.origin, f"gossiped {forged} tx(s) with a bad signature"))
        if self.waiting:
            for full, origin in self.waiting.arrived(inp.txs):
                if self.engine is not None:
                    self._drive(self.engine.handle(cm.ProposalReceived(inp.now_ms, full, origin)), out)
        if had == 0 and len(self.mempool) > 0 and self.engine is not None:
            self._drive(self.engine.handle(cm.TxsAvailable(inp.now_ms)), out)

    def _on_local_txs(self, inp: TxsReceived, out: list[Action]) -> None:
        """Admit, then store the accepted ones in one batch, then ack: persist before ack."""
        answers: list[TxAdmitted] = []
        persist: list[Tx] = []
        count, size = len(self._stored_txs), self._stored_bytes
        for tx in inp.txs:
            tx_hash = tx.hash
            stored = tx_hash in self._stored_txs
            n = len(tx.encode())
            if not stored and (count >= self.config.max_local_pending_txs
                               or size + n > self.config.max_local_pending_bytes):
                reason = (f"this node already holds {count} unconfirmed transactions of its clients "
                          f"({size} bytes), its limit; retry later")
                answers.append(TxAdmitted(tx, tx_hash, False, reason, LOCAL))
                continue
            adm = self.mempool.add(tx, inp.now_ms, local=True)
            answers.append(TxAdmitted(tx, adm.tx_hash, adm.accepted, adm.reason, LOCAL))
            if adm.accepted:
                self._parked.pop(tx_hash, None)  # a restored tx submitted again
                if not stored:
                    persist.append(tx)
                    self._stored_txs[tx_hash] = (tx, n)
                    count, size = count + 1, size + n
        self._stored_bytes = size
        if persist:
            out.append(PersistPendingTxs(tuple(persist)))
        out.extend(answers)

    # ------------------------------------------------------------ stored local transactions

    def _restore_txs(self, txs: Sequence[Tx]) -> None:
        """Take the host's stored local txs back; they wait, parked, for the mempool to
        accept work (at once, or when consensus starts after block sync)."""
        for tx in txs:
            h = tx.hash
            if h not in self._stored_txs:
                n = len(tx.encode())
                self._stored_txs[h] = (tx, n)
                self._stored_bytes += n
                self._parked[h] = tx

    def _retry_parked(self, out: list[Action]) -> None:
        """Re-check parked txs against the committed state, in nonce order per sender:
        admit and gossip the valid ones, forget the stale and invalid ones, keep those
        whose earlier nonce is missing here or that the full pool refused for now.
        Only the envelope is re-checked (signatures, chain, nonce, fee): each was acked
        to a client, so one whose kind would now fail (a vote on a proposal that closed
        meanwhile) is still committed, as a failure that tells the client why."""
        if not self._parked or self.mempool.syncing:
            return
        admitted: list[Tx] = []
        forget: list[bytes] = []
        for tx in sorted(self._parked.values(), key=lambda t: (t.sender, t.nonce)):
            h = tx.hash
            if h in self.mempool:
                del self._parked[h]
                continue
            expected = self.mempool.pending_nonce(tx.sender)
            if tx.nonce > expected:
                continue  # the sender's earlier nonce is not here (yet)
            adm = (self.mempool.add(tx, self.now_ms, local=True, stateful=self._envelope_check)
                   if tx.nonce == expected else None)
            if adm is not None and adm.accepted:
                del self._parked[h]
                admitted.append(tx)
            elif adm is None or not adm.transient:
                forget.append(h)  # its nonce is used, or it no longer passes the checks
        self._forget(forget, out)
        self._gossip(admitted, out)

    def _after_block(self, block: Block, evicted: int, out: list[Action]) -> None:
        """Forget the stored txs the block committed or made stale (the mempool dropped
        them); a block may also let parked txs in."""
        gone = [tx.hash for tx in block.txs if tx.hash in self._stored_txs]
        if evicted:
            done = set(gone)
            gone += [
                h for h in self._stored_txs if h not in self.mempool and h not in self._parked and h not in done
            ]
        self._forget(gone, out)
        self._retry_parked(out)

    def _forget(self, hashes: list[bytes], out: list[Action]) -> None:
        for h in hashes:
            self._parked.pop(h, None)
            entry = self._stored_txs.pop(h, None)
            if entry is not None:
                self._stored_bytes -= entry[1]
        if hashes:
            out.append(ForgetPendingTxs(tuple(hashes)))

    @staticmethod
    def _gossip(txs: list[Tx], out: list[Action]) -> None:
        for i in range(0, len(txs), REGOSSIP_MAX):
            out.append(GossipTxs(tuple(txs[i : i + REGOSSIP_MAX])))

    # ------------------------------------------------------------ compact proposals

    def _on_compact(self, cp: CompactProposal, origin: str, out: list[Action]) -> None:
        """Rebuild the proposal from the txs held here and hand it to the engine, which
        checks it like any proposal; if some are missing, wait for them (bounded)."""
        engine = self.engine
        assert engine is not None
        full = cp.rebuild_from(self.waiting.lookup)
        if full is not None:
            self._drive(engine.handle(cm.ProposalReceived(self.now_ms, full, origin)), out)
            return
        if cp.block_hash in self.waiting:
            return
        if not engine.expects_proposal(cp.height, cp.round, cp.proposer):
            self._unexpected_compact(cp, origin, out)
            return
        st = engine.state
        assert st is not None
        # What may wait: this round's proposal and the next one's, or the next height's
        # first. A proposer signing far-future rounds cannot crowd out the current one.
        if cp.round > (st.round + 1 if cp.height == st.height else 0):
            out.append(cm.Ignored(cm.IgnoreCode.ROUND_LIMIT, f"round {cp.round} is too far ahead to wait for its txs",
                                  origin, cp.height))
            return
        if self.waiting.holds_round(cp.height, cp.round):
            return
        reason = cp.check(self.config.chain_id, self.cache)
        if reason is not None:
            out.append(Penalise(origin, f"compact proposal: {reason}"))
            return
        self.waiting.drop_before(st.height, st.round)
        if self.waiting.full:
            out.append(cm.Ignored(cm.IgnoreCode.BUFFER_FULL, "compact proposals waiting for txs", origin, cp.height))
            return
        self.waiting.wait(cp, origin, self.now_ms)

    def _unexpected_compact(self, cp: CompactProposal, origin: str, out: list[Action]) -> None:
        """What the engine would answer the full proposal (which cannot be rebuilt here)."""
        st = self.engine.state if self.engine is not None else None
        assert st is not None
        if cp.height < st.height or (cp.height == st.height and st.step == Step.COMMITTED):
            out.append(cm.Ignored(cm.IgnoreCode.STALE_HEIGHT, f"height {cp.height} is decided", origin, cp.height))
        elif cp.height == st.height:
            out.append(Penalise(origin, f"wrong_proposer: not the proposer of round {cp.round}"))
        else:  # ahead: this node is behind (a next-height proposer outside today's set, too)
            reason = f"proposal for height {cp.height} at {st.height}"
            out.append(cm.Ignored(cm.IgnoreCode.FUTURE_HEIGHT, reason, origin, cp.height))

    def _fetched_for_waiting(self, inp: BlockFetched, out: list[Action]) -> bool:
        found = self.waiting.fetched(inp.block)
        if found is None:
            return False
        if isinstance(found, str):
            out.append(Penalise(inp.origin, found))  # it stays waiting: an honest copy may come
            return True
        assert self.engine is not None
        self._drive(self.engine.handle(cm.ProposalReceived(self.now_ms, found[0], found[1])), out)
        return True

    # ------------------------------------------------------------ evidence

    def _add_evidence(self, ev: DuplicateVoteEvidence) -> bool:
        key = ev.digest()
        if key in self._evidence or len(self._evidence) >= EVIDENCE_POOL_MAX:
            return False
        self._evidence[key] = ev
        return True

