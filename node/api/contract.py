"""What the HTTP API needs from a running node. `node.runtime.Node` implements it;
the API never reaches into the node's internals, so it cannot make protocol decisions."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from protocol.kv import KVReader
from protocol.types import Block, Commit, Tx


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a transaction stands. `status`: "pending" (in this node's mempool),
    "committed", "rejected" (refused on admission, with `reason`), "unknown"."""

    hash: bytes
    status: str
    reason: str = ""
    height: int | None = None
    index: int | None = None
    code: int | None = None  # execution result code when committed (0 = ok)
    info: str = ""  # execution result reason when committed
    retry: bool = False  # refused for the node's load, not for the tx: submit again later


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """Published to subscribers: kind "block" (data: height, hash, time_ms, txs,
    app_hash) or "tx" (data: hash, height, index, code, info)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class NodeAPI(Protocol):
    chain_id: str
    node_id: str  # libp2p peer id

    def status(self) -> dict[str, Any]:
        """At least: chain_id, node_id, height, latest_block_hash (hex), app_hash (hex),
        latest_block_time_ms, syncing, peers (count), validator (address hex or None),
        moniker, round, step, mempool_size."""
        ...

    def block(self, height: int) -> tuple[Block, Commit] | None: ...

    def latest_height(self) -> int: ...

    def tx(self, tx_hash: bytes) -> tuple[TxStatus, Tx | None]: ...

    async def submit_tx(self, tx: Tx, *, wait_commit: bool, timeout_s: float) -> TxStatus:
        """Admit to the mempool (and gossip); with wait_commit, return once the tx is
        in a stored block or `timeout_s` passed (then status stays "pending")."""
        ...

    async def submit_txs(self, txs: list[Tx]) -> list[TxStatus]:
        """Admit many transactions at once (no waiting): one status per tx, in order."""
        ...

    def state(self) -> KVReader:
        """The committed governance state, for `protocol.governance.queries`."""
        ...

    def validators(self, height: int | None = None) -> list[tuple[bytes, int]]: ...

    def peers(self) -> list[str]: ...

    def subscribe(self, kinds: Collection[str]) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[NodeEvent]]:
        """A bounded channel of the events of `kinds`; a slow subscriber loses events,
        never blocks the node."""
        ...

    def metrics_text(self) -> bytes:
        """Prometheus exposition of this node's metrics."""
        ...

    # Admin controls (only routed when api.admin_enabled): partition tests.
    async def admin_block_peer(self, peer_id: str) -> None: ...

    async def admin_unblock_peer(self, peer_id: str) -> None: ...


