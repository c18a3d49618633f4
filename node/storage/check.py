"""The startup check: the stored chain, state and app hash must agree.

A committed block and everything it changes are one atomic batch, so after any
crash the store is at some block boundary. What this check finds is therefore
damage or a bug: unreadable records, a head that points at a missing block, an app
hash that does not chain. It never repairs anything; it raises with the key or
height involved and the remedy, and leaves the bytes as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from node.storage import layout as L
from node.storage.backend import Backend
from node.storage.errors import CorruptStore, GenesisMismatch, IncompatibleStore
from node.storage.records import ChainHead, StoreIdentity, TxLocation
from node.storage.view import StateView
from protocol.errors import DecodeError
from protocol.kv import KVReader
from protocol.types import ZERO_HASH, Block, Commit, Tx
from protocol.wire import Struct

S = TypeVar("S", bound=Struct)
StateHasher = Callable[[KVReader], bytes]


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the check read, for the store to cache. All None/1 for an empty store."""

    identity: StoreIdentity | None
    head: ChainHead | None
    base: int


def decode_record(backend: Backend, key: bytes, cls: type[S], what: str) -> S | None:
    raw = backend.get(key)
    if raw is None:
        return None
    try:
        return cls.decode(raw)
    except DecodeError as exc:
        raise CorruptStore(f"{what} (key {key!r}) cannot be decoded: {exc.reason}") from None


def require(value: S | None, key: bytes, what: str) -> S:
    if value is None:
        raise CorruptStore(f"{what} (key {key!r}) is missing")
    return value


def decode_height_value(raw: bytes, key: bytes, what: str) -> int:
    try:
        return L.read_u64(raw)
    except ValueError as exc:
        raise CorruptStore(f"{what} (key {key!r}) is malformed: {exc}") from None


def decode_pending_tx(key: bytes, raw: bytes) -> Tx:
    try:
        tx = Tx.decode(raw)
    except DecodeError as exc:
        raise CorruptStore(f"pending tx {key!r} cannot be decoded: {exc.reason}") from None
    if L.pending_tx_key(tx.hash) != key:
        raise CorruptStore(f"pending tx {key!r} is stored under another tx's hash")
    return tx


def read_block(backend: Backend, height: int) -> Block | None:
    return decode_record(backend, L.block_key(height), Block, f"block {height}")


def read_commit(backend: Backend, height: int) -> Commit | None:
    return decode_record(backend, L.commit_key(height), Commit, f"commit {height}")


def load_and_check(
    backend: Backend,
    *,
    chain_id: str | None = None,
    genesis_hash: bytes | None = None,
    verify_state: StateHasher | None = None,
    deep: bool = False,
) -> Loaded:
    schema_raw = backend.get(L.META_SCHEMA)
    if schema_raw is None:
        # A new store; after `unsafe_reset` it may already hold consensus records (the
        # sign-state carried over), which are not chain data.
        for key, _ in backend.iterate(b""):
            if not key.startswith((L.SIGN_STATE, L.WAL)):
                raise CorruptStore(
                    f"the store holds data ({key[:40]!r}) but no schema record; "
                    "it was not written by ekklesia or lost its metadata"
                )
        return Loaded(None, None, 1)
    try:
        schema = L.read_u32(schema_raw)
    except ValueError as exc:
        raise CorruptStore(f"the schema record is malformed: {exc}") from None
    if schema != L.SCHEMA_VERSION:
        raise IncompatibleStore(
            f"the store has schema version {schema}; this ekklesia reads version {L.SCHEMA_VERSION}"
        )
    identity = require(
        decode_record(backend, L.META_IDENTITY, StoreIdentity, "the store identity"),
        L.META_IDENTITY,
        "the store identity",
    )
    if chain_id is not None and identity.chain_id != chain_id:
        raise GenesisMismatch(f"the store is for chain {identity.chain_id!r}, not {chain_id!r}")
    if genesis_hash is not None and identity.genesis_hash != genesis_hash:
        raise GenesisMismatch(
            f"the store was initialised from genesis {identity.genesis_hash.hex()}, "
            f"not {genesis_hash.hex()}"
        )
    head = require(
        decode_record(backend, L.META_HEAD, ChainHead, "the chain head"),
        L.META_HEAD,
        "the chain head",
    )
    base_raw = backend.get(L.META_BASE)
    base = 1 if base_raw is None else decode_height_value(base_raw, L.META_BASE, "the prune base")

    _check_head(backend, identity, head, base)
    if deep:
        _check_all(backend, head, base)
    if verify_state is not None:
        computed = verify_state(StateView(backend))
        if computed != head.app_hash:
            raise CorruptStore(
                f"the governance state hashes to {computed.hex()}, but the app hash recorded "
                f"at height {head.height} is {head.app_hash.hex()}"
            )
    return Loaded(identity, head, base)


def _check_head(backend: Backend, identity: StoreIdentity, head: ChainHead, base: int) -> None:
    h = head.height
    recorded = backend.get(L.app_hash_key(h))
    if recorded != head.app_hash:
        raise CorruptStore(
            f"the head's app hash {head.app_hash.hex()} differs from the app hash stored for "
            f"height {h} ({recorded.hex() if recorded is not None else 'missing'})"
        )
    if backend.get(L.block_key(h + 1)) is not None:
        raise CorruptStore(f"a block is stored at height {h + 1}, above the head at {h}")
    if h == 0:
        if base != 1 or head.block_hash != ZERO_HASH:
            raise CorruptStore("the genesis head has a block hash or prune base it cannot have")
        return
    if not 1 <= base <= h:
        raise CorruptStore(f"the prune base {base} is outside the stored chain 1..{h}")
    _check_height(backend, identity, h, head.block_hash, base)
    if base < h:
        require(read_block(backend, base), L.block_key(base), f"block {base} (the prune base)")


def _check_height(
    backend: Backend, identity: StoreIdentity, h: int, block_hash: bytes, base: int
) -> Block:
    """Block h is present, is the expected block, is indexed, carries the app hash and
    previous hash the store recorded, and has its commit."""
    block = require(read_block(backend, h), L.block_key(h), f"block {h}")
    if block.height != h or block.hash != block_hash:
        raise CorruptStore(
            f"block stored at height {h} is block {block.hash.hex()} at height {block.height}, "
            f"expected {block_hash.hex()}"
        )
    if block.header.chain_id != identity.chain_id:
        raise CorruptStore(f"block {h} is for chain {block.header.chain_id!r}")
    index_raw = backend.get(L.hash_index_key(block_hash))
    if (
        index_raw is None
        or decode_height_value(index_raw, L.hash_index_key(block_hash), "hash index") != h
    ):
        raise CorruptStore(f"the hash index does not point block {block_hash.hex()} at height {h}")
    commit = require(read_commit(backend, h), L.commit_key(h), f"commit {h}")
    if commit.height != h or commit.block_hash != block_hash:
        raise CorruptStore(f"the commit stored at height {h} is not for block {block_hash.hex()}")
    prev_app = backend.get(L.app_hash_key(h - 1))
    if prev_app is not None and block.header.app_hash != prev_app:
        raise CorruptStore(
            f"block {h} builds on app hash {block.header.app_hash.hex()}, but the state after "
            f"height {h - 1} has app hash {prev_app.hex()}"
        )
    if h == 1 and block.header.prev_hash != ZERO_HASH:
        raise CorruptStore("block 1 has a previous block hash")
    if h - 1 >= base:
        prev = require(read_block(backend, h - 1), L.block_key(h - 1), f"block {h - 1}")
        if block.header.prev_hash != prev.hash:
            raise CorruptStore(f"block {h} does not chain onto block {h - 1}")
    return block


def _check_all(backend: Backend, head: ChainHead, base: int) -> None:
    """Read every record once: every LevelDB block checksum, every height's block,
    commit, index and app hash, every tx index entry and pending tx. O(store size)."""
    for _ in backend.iterate(b""):
        pass
    identity = require(
        decode_record(backend, L.META_IDENTITY, StoreIdentity, "the store identity"),
        L.META_IDENTITY,
        "the store identity",
    )
    expected_hash = head.block_hash
    for h in range(head.height, base - 1, -1):  # walk back along prev_hash links
        block = _check_height(backend, identity, h, expected_hash, base)
        if backend.get(L.app_hash_key(h)) is None:
            raise CorruptStore(f"the app hash of height {h} is missing")
        expected_hash = block.header.prev_hash
    for key, raw in backend.iterate(L.TX):
        try:
            loc = TxLocation.decode(raw)
        except DecodeError as exc:
            raise CorruptStore(f"tx index entry {key!r} cannot be decoded: {exc.reason}") from None
        if not base <= loc.height <= head.height:
            raise CorruptStore(f"tx index entry {key!r} points at height {loc.height}, not stored")
    for key, raw in backend.iterate(L.PENDING_TX):
        decode_pending_tx(key, raw)
