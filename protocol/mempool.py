"""Mempool logic: admission, ordering, reaping and recheck of pending transactions.

Pure: the node owns the queue's lifetime and feeds it state through three callables,
so the same logic runs under the simulator. A transaction is admitted when

1. the pool accepts new work (not syncing, under its caps),
2. its hash was not seen recently (among the last `seen_cache` txs, give or take
   half: dedup survives a tx leaving the pool, so a gossip echo of a committed tx is
   not re-admitted),
3. its nonce is exactly the sender's next pending nonce (committed nonce plus the
   sender's pending txs): nonces are contiguous per sender, so a pool never holds a
   tx that cannot be included,
4. the stateless check passes (size, chain id, signatures — verified once, through
   the shared `VerifyCache`, so block execution does not verify it again),
5. the stateful check (the governance `check_tx` against committed state) passes.

Reaping takes senders round-robin in order of their oldest pending tx, each sender's
txs in nonce order, up to a byte and count budget — so one busy sender cannot starve
the rest and every reaped list is valid nonce-wise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from protocol.types import Tx

Check = Callable[[Tx], str | None]  # None = ok, else the reason for refusal

# The txs a node acknowledged to its own clients are stored until they leave its pool
# (protocol.replica, node.storage); past these bounds it refuses new submissions.
LOCAL_PENDING_MAX_TXS = 10_000
LOCAL_PENDING_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_txs: int = 20_000
    max_bytes: int = 64 * 1024 * 1024
    max_per_sender: int = 256
    seen_cache: int = 100_000


@dataclass(frozen=True, slots=True)
class Admission:
    accepted: bool
    reason: str = ""
    tx_hash: bytes = b""
    transient: bool = False  # refused for the pool's state (syncing, full), not for the tx: retry later


@dataclass(slots=True)
class _Entry:
    tx: Tx
    size: int
    seq: int  # arrival order, for round-robin fairness
    gossiped_ms: int  # when this node last offered it to peers
    local: bool  # submitted to this node by a client (this node re-offers it; peers re-offer theirs)


class _Recent:
    """The hashes of the last `capacity` txs that left or entered the pool, give or take
    half: two generations of sets, the older dropped whole when the newer is full. An
    OrderedDict of 100,000 hashes cost 10.5 MB besides the hashes; these sets ~4 MB."""

    def __init__(self, capacity: int) -> None:
        self._half = max(1, capacity // 2)
        self._new: set[bytes] = set()
        self._old: set[bytes] = set()

    def __contains__(self, key: bytes) -> bool:
        return key in self._new or key in self._old

    def __len__(self) -> int:
        return len(self._new) + len(self._old - self._new)

    def add(self, key: bytes) -> None:
        self._new.add(key)
        if len(self._new) >= self._half:
            self._old, self._new = self._new, set()


class Mempool:
    def __init__(
        self,
        *,
        stateless_check: Check,
        stateful_check: Check,
        account_nonce: Callable[[bytes], int],
        limits: MempoolLimits | None = None,
    ) -> None:
        self.limits = limits or MempoolLimits()
        self._stateless = stateless_check
        self._stateful = stateful_check
        self._account_nonce = account_nonce
        self._by_hash: dict[bytes, _Entry] = {}
        self._by_sender: dict[bytes, list[_Entry]] = {}  # each list in nonce order
        self._seen = _Recent(self.limits.seen_cache)
        self._bytes = 0
        self._seq = 0
        self.syncing = False

    # ------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> Tx | None:
        entry = self._by_hash.get(tx_hash)
        return entry.tx if entry is not None else None

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def pending_nonce(self, sender: bytes) -> int:
        entries = self._by_sender.get(sender)
        return entries[-1].tx.nonce + 1 if entries else self._account_nonce(sender)

    # ------------------------------------------------------------ admission

    def add(self, tx: Tx, now_ms: int = 0, *, local: bool = False, stateful: Check | None = None) -> Admission:
        """Admit `tx` if it is new, fits the caps, carries the sender's next nonce and
        passes the checks; `stateful` replaces the pool's state check for this call."""
        encoded = tx.encode()
        encoded_len = len(encoded)
        tx_hash = tx.hash  # cached on the instance, like its encoding
        if self.syncing:
            return Admission(False, "node is syncing; submit to a node that is caught up", tx_hash, True)
        if tx_hash in self._by_hash or tx_hash in self._seen:
            return Admission(False, "duplicate transaction", tx_hash)
        if len(self._by_hash) >= self.limits.max_txs or self._bytes + encoded_len > self.limits.max_bytes:
            return Admission(False, "mempool is full; retry later", tx_hash, True)
        entries = self._by_sender.get(tx.sender, [])
        if len(entries) >= self.limits.max_per_sender:
            return Admission(False, f"sender already has {len(entries)} pending transactions", tx_hash, True)
        # The nonce test is a state read; signatures cost ~70 µs: cheap refusals first.
        expected = self.pending_nonce(tx.sender)
        if tx.nonce != expected:
            return Admission(False, f"nonce {tx.nonce} is not the next one ({expected})", tx_hash)
        reason = self._stateless(tx)
        if reason is not None:
            return Admission(False, reason, tx_hash)
        reason = (stateful or self._stateful)(tx)
        if reason is not None:
            return Admission(False, reason, tx_hash)
        entry = _Entry(tx, encoded_len, self._seq, now_ms, local)
        self._seq += 1
        self._by_hash[tx_hash] = entry
        self._by_sender.setdefault(tx.sender, []).append(entry)
        self._bytes += encoded_len
        self._remember(tx_hash)
        return Admission(True, "", tx_hash)

    def _remember(self, tx_hash: bytes) -> None:
        self._seen.add(tx_hash)

    # ------------------------------------------------------------ proposing

    def reap(self, max_bytes: int, max_txs: int) -> list[Tx]:
        """Transactions for a proposal: fair across senders, nonce order within each."""
        queues = sorted(self._by_sender.values(), key=lambda es: es[0].seq)
        cursors = [0] * len(queues)
        out: list[Tx] = []
        budget = max_bytes
        active = list(range(len(queues)))
        while active and len(out) < max_txs:
            still = []
            for qi in active:
                entry = queues[qi][cursors[qi]]
                if entry.size > budget:
                    continue  # a sender's later nonces cannot skip this one
                out.append(entry.tx)
                budget -= entry.size
                cursors[qi] += 1
                if cursors[qi] < len(queues[qi]):
                    still.append(qi)
                if len(out) >= max_txs:
                    break
            active = still
        return out

    def stale(self, now_ms: int, age_ms: int, limit: int) -> list[Tx]:
        """This node's clients' pending txs not offered to peers for `age_ms`, marked as
        offered now. Gossip is fire-once and lossy: a peer that missed a tx also refuses
        the sender's later nonces, so a node re-offers what stays pending rather than be
        its only holder. Only the node a tx was submitted to re-offers it: when every
        node re-offered every slow tx, an overloaded network spent itself re-gossiping
        (at 2,000 tx/s offered, 19 KB on the wire per 154-byte tx)."""
        out: list[Tx] = []
        for sender in sorted(self._by_sender):
            for entry in self._by_sender[sender]:
                if entry.local and now_ms - entry.gossiped_ms >= age_ms:
                    entry.gossiped_ms = now_ms
                    out.append(entry.tx)
                    if len(out) >= limit:
                        return out
        return out

    # ------------------------------------------------------------ after a block

    def update(self, committed: Iterable[Tx]) -> int:
        """Drop committed txs, then every tx whose nonce the chain has passed or whose
        sender's earlier pending nonce vanished. Returns how many were evicted beyond
        the committed ones. Cheap: nonces only, no signature or state re-execution."""
        for tx in committed:
            self._remember(tx.hash)
            entry = self._by_hash.get(tx.hash)
            if entry is not None:
                self._drop(entry)
        evicted = 0
        for sender in sorted(self._by_sender):
            entries = self._by_sender[sender]
            expected = self._account_nonce(sender)
            keep: list[_Entry] = []
            for entry in entries:
                if entry.tx.nonce == expected:
                    keep.append(entry)
                    expected += 1
                else:
                    evicted += 1
                    self._by_hash.pop(entry.tx.hash, None)
                    self._bytes -= entry.size
            if keep:
                self._by_sender[sender] = keep
            else:
                del self._by_sender[sender]
        return evicted

    def _drop(self, entry: _Entry) -> None:
        del self._by_hash[entry.tx.hash]
        self._bytes -= entry.size
        entries = self._by_sender[entry.tx.sender]
        entries.remove(entry)
        if not entries:
            del self._by_sender[entry.tx.sender]

    def clear(self) -> None:
        self._by_hash.clear()
        self._by_sender.clear()
        self._bytes = 0
