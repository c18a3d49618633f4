"""Structured values the store writes, as canonical wire structs: one encoding per
value, and a decoder that checks field count, types and bounds, so a damaged record
is reported instead of half-read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NamedTuple, Protocol

from protocol.limits import MAX_CHAIN_ID
from protocol.wire import HASH, U32, U64, Str, Struct

MAX_TX_INFO = 512  # bytes of a transaction result's human-readable info


@dataclass(frozen=True, slots=True)
class StoreIdentity(Struct):
    """Which chain this store belongs to; written once, by `init_genesis`."""

    chain_id: Annotated[str, Str(MAX_CHAIN_ID)]
    genesis_hash: Annotated[bytes, HASH]


@dataclass(frozen=True, slots=True)
class ChainHead(Struct):
    """The last committed height, its block hash and the app hash after executing it.
    Height 0 is the genesis state (block hash all zeros)."""

    height: Annotated[int, U64]
    block_hash: Annotated[bytes, HASH]
    app_hash: Annotated[bytes, HASH]


@dataclass(frozen=True, slots=True)
class TxLocation(Struct):
    """Where a committed transaction is and how it ended (code 0 is success by
    convention of the state machine; the store does not interpret it)."""

    height: Annotated[int, U64]
    index: Annotated[int, U32]
    code: Annotated[int, U32]
    info: Annotated[str, Str(MAX_TX_INFO)]


class TxOutcome(Protocol):
    """What `NodeStore.commit_block` reads of a transaction's outcome (the governance
    state machine's own results qualify: no copy per tx)."""

    @property
    def code(self) -> int: ...

    @property
    def info(self) -> str: ...


class TxResult(NamedTuple):
    """One transaction's outcome as handed to `NodeStore.commit_block`."""

    code: int
    info: str = ""
