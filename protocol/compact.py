"""Compact proposals: a proposal as it travels on gossip, its transactions named by hash.

Every validator has already received a proposal's transactions in the tx batches
that came before it, so sending them again doubles the bytes a block costs on the
wire and the decoding at every receiver (at 2,000 tx/s, a 2,900-tx proposal was
~500 KB gossiped through py-libp2p, which costs per byte as well as per message,
and it capped blocks at one gossip message). A `CompactProposal` carries the
header, the last commit, the evidence and the hash of every transaction; the
receiver rebuilds the `Proposal` from the transactions it holds.

The proposer's signature covers the block hash, which is the header's digest, and
the header commits to the transactions through `tx_root`: a compact proposal is
checked (signature, tx root) before anyone waits for its transactions, and a
rebuilt proposal is the very proposal the proposer signed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from protocol import crypto, merkle
from protocol.limits import MAX_BLOCK_TXS, MAX_EVIDENCE
from protocol.types import (
    Block,
    BlockHeader,
    Commit,
    DuplicateVoteEvidence,
    PolRound,
    Proposal,
    Round,
    Tx,
    check_proposal_rounds,
)
from protocol.wire import HASH, PUBKEY, SIGNATURE, U64, Nested, Optional, Seq, Struct, struct_list

# Header, last commit of 256 validators, 64 pieces of evidence, 10,000 hashes.
MAX_COMPACT_PROPOSAL_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class CompactProposal(Struct):
    MAX_BYTES = MAX_COMPACT_PROPOSAL_BYTES
    ENCODE_BY_PARTS = True

    height: Annotated[int, U64]
    round: Round
    pol_round: PolRound
    header: Annotated[BlockHeader, Nested(BlockHeader)]
    tx_hashes: Annotated[tuple[bytes, ...], Seq(HASH, MAX_BLOCK_TXS)]
    last_commit: Annotated[Commit | None, Optional(Nested(Commit))]
    evidence: Annotated[tuple[DuplicateVoteEvidence, ...], struct_list(DuplicateVoteEvidence, MAX_EVIDENCE)]
    proposer: Annotated[bytes, PUBKEY]
    timestamp_ms: Annotated[int, U64]
    signature: Annotated[bytes, SIGNATURE]

    def __post_init__(self) -> None:
        check_proposal_rounds(self.height, self.round, self.pol_round, self.header.height)

    @staticmethod
    def of(p: Proposal) -> CompactProposal:
        b = p.block
        return CompactProposal(
            p.height, p.round, p.pol_round, b.header, tuple(tx.hash for tx in b.txs), b.last_commit, b.evidence,
            p.proposer, p.timestamp_ms, p.signature,
        )

    @property
    def block_hash(self) -> bytes:
        return self.header.digest()

    def signing_payload(self) -> bytes:
        return Proposal.payload(self.height, self.round, self.pol_round, self.block_hash, self.proposer,
                                self.timestamp_ms)

    def check(self, chain_id: str, cache: crypto.VerifyCache | None = None) -> str | None:
        """None if the proposer signed this and the hashes are the header's transactions;
        otherwise why not. Cheap next to waiting: a hash per transaction, one signature."""
        if self.header.chain_id != chain_id:
            return f"proposal for chain {self.header.chain_id!r}"
        if len(set(self.tx_hashes)) != len(self.tx_hashes):
            return "a transaction appears twice"
        if merkle.root(list(self.tx_hashes)) != self.header.tx_root:
            return "tx root does not match the transaction hashes"
        if not crypto.verify(self.proposer, chain_id, crypto.KIND_PROPOSAL, self.signing_payload(), self.signature,
                             cache):
            return "bad proposal signature"
        return None

    def missing(self, lookup: Callable[[bytes], Tx | None]) -> list[bytes]:
        return [h for h in self.tx_hashes if lookup(h) is None]

    def rebuild(self, txs: Sequence[Tx]) -> Proposal:
        """The full proposal, given this proposal's transactions in order (their hashes
        must be `tx_hashes`: the caller found them by those hashes)."""
        block = Block(self.header, tuple(txs), self.last_commit, self.evidence)
        return Proposal(self.height, self.round, self.pol_round, block, self.proposer, self.timestamp_ms,
                        self.signature)

    def rebuild_from(self, lookup: Callable[[bytes], Tx | None]) -> Proposal | None:
        txs = []
        for h in self.tx_hashes:
            tx = lookup(h)
            if tx is None:
                return None
            txs.append(tx)
        return self.rebuild(txs)


@dataclass(slots=True)
class _Waiting:
    proposal: CompactProposal
    origin: str
    since_ms: int
    missing: set[bytes]
    asked_ms: int | None = None


class WaitingRoom:
    """A replica's checked compact proposals whose transactions are not all here (yet),
    and the gossiped transactions it refused (a nonce gap, a full pool), which a
    proposal may still hold. Bounded: `max_waiting` proposals, `max_heard` txs."""

    def __init__(self, pool: Callable[[bytes], Tx | None], *, max_waiting: int, max_heard: int,
                 fetch_after_ms: int, refetch_ms: int) -> None:
        self._pool = pool
        self._waiting: dict[bytes, _Waiting] = {}  # block hash -> proposal
        self._heard: OrderedDict[bytes, Tx] = OrderedDict()
        self.max_waiting, self.max_heard = max_waiting, max_heard
        self.fetch_after_ms, self.refetch_ms = fetch_after_ms, refetch_ms
        self.waits = 0  # proposals that ever waited (a count for metrics)

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._waiting

    @property
    def full(self) -> bool:
        return len(self._waiting) >= self.max_waiting

    def lookup(self, tx_hash: bytes) -> Tx | None:
        tx = self._pool(tx_hash)
        return tx if tx is not None else self._heard.get(tx_hash)

    def hear(self, tx_hash: bytes, tx: Tx) -> None:
        self._heard[tx_hash] = tx
        if len(self._heard) > self.max_heard:
            self._heard.popitem(last=False)

    def holds_round(self, height: int, round: int) -> bool:
        """A proposal for (height, round) waits already (a proposer's second one for the
        same round is equivocation: it waits for no one)."""
        return any(w.proposal.height == height and w.proposal.round == round for w in self._waiting.values())

    def wait(self, cp: CompactProposal, origin: str, now_ms: int) -> None:
        if self.full:
            raise ValueError("the waiting room is full")
        self._waiting[cp.block_hash] = _Waiting(cp, origin, now_ms, set(cp.missing(self.lookup)))
        self.waits += 1

    def arrived(self, txs: Sequence[Tx]) -> list[tuple[Proposal, str]]:
        """The proposals these transactions completed, with their origins (no longer waiting)."""
        done = []
        for key, w in list(self._waiting.items()):
            if not any(tx.hash in w.missing for tx in txs):
                continue
            w.missing = {h for h in w.missing if self.lookup(h) is None}
            if not w.missing:
                full = w.proposal.rebuild_from(self.lookup)
                del self._waiting[key]
                if full is not None:  # None only if a pool tx left meanwhile; a fetch covers it
                    done.append((full, w.origin))
        return done

    def due(self, now_ms: int) -> list[CompactProposal]:
        """Proposals to fetch whole now: their txs did not come by gossip in good time."""
        out = []
        for w in self._waiting.values():
            wait = self.fetch_after_ms if w.asked_ms is None else self.refetch_ms
            if now_ms - (w.since_ms if w.asked_ms is None else w.asked_ms) >= wait:
                w.asked_ms = now_ms
                out.append(w.proposal)
        return out

    def fetched(self, block: Block) -> tuple[Proposal, str] | str | None:
        """A fetched block: the proposal it completes and its origin, a reason if it
        claims a waiting proposal's hash with other transactions (it stays waiting), or
        None if nothing waits for it."""
        w = self._waiting.get(block.hash)
        if w is None:
            return None
        if tuple(tx.hash for tx in block.txs) != w.proposal.tx_hashes:
            return "fetched block does not hold the proposal's transactions"
        del self._waiting[block.hash]
        return w.proposal.rebuild(block.txs), w.origin

    def drop(self, block_hash: bytes) -> None:
        self._waiting.pop(block_hash, None)

    def drop_before(self, height: int, round: int) -> None:
        """Forget proposals for rounds before (height, round): the engine has moved on."""
        for key in [k for k, w in self._waiting.items() if (w.proposal.height, w.proposal.round) < (height, round)]:
            del self._waiting[key]

    def clear(self) -> None:
        self._waiting.clear()
