r"""The key layout of the node's single LevelDB. `docs/storage.md` is its specification.

Every key starts with a one-letter namespace and a slash. Heights are 8-byte
big-endian so that byte order is height order: a prefix scan walks blocks, commits
and WAL records in height order, and pruning deletes one contiguous range.

    a/ H            app hash after executing block H (a/0: the genesis app hash)
    b/ H            Block (canonical encoding)
    c/ H            Commit that committed block H (the node's own "seen" commit)
    g/sign_state    the consensus engine's sign-state (opaque bytes)
    h/ block hash   H (8 bytes)
    m/schema        schema version (4 bytes)
    m/identity      StoreIdentity (chain id, genesis hash)
    m/head          ChainHead (last height, its block hash, app hash after it)
    m/base          lowest retained height after pruning (8 bytes; absent means 1)
    p/ tx hash      a tx a client submitted to this node, acked and not yet committed (Tx)
    s/ state key    governance state value
    t/ tx hash      TxLocation (height, index, result code, info)
    w/ H seq        consensus WAL record number `seq` (4 bytes) at height H
    \xff\xffend     end-of-store marker (LevelDB backend only, see backend.py)
"""

from __future__ import annotations

SCHEMA_VERSION = 1

APP_HASH = b"a/"
BLOCK = b"b/"
COMMIT = b"c/"
SIGN_STATE = b"g/sign_state"
HASH_INDEX = b"h/"
META_SCHEMA = b"m/schema"
META_IDENTITY = b"m/identity"
META_HEAD = b"m/head"
META_BASE = b"m/base"
PENDING_TX = b"p/"
STATE = b"s/"
TX = b"t/"
WAL = b"w/"

# Keys at or above this are reserved for the backend; every namespace sorts below it.
RESERVED = b"\xff"

_U64_MAX = 2**64 - 1
_U32_MAX = 2**32 - 1


def u64(n: int) -> bytes:
    if not 0 <= n <= _U64_MAX:
        raise ValueError(f"{n} is outside the u64 range")
    return n.to_bytes(8, "big")


def read_u64(raw: bytes) -> int:
    if len(raw) != 8:
        raise ValueError(f"expected 8 bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


def u32(n: int) -> bytes:
    if not 0 <= n <= _U32_MAX:
        raise ValueError(f"{n} is outside the u32 range")
    return n.to_bytes(4, "big")


def read_u32(raw: bytes) -> int:
    if len(raw) != 4:
        raise ValueError(f"expected 4 bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


def block_key(height: int) -> bytes:
    return BLOCK + u64(height)


def commit_key(height: int) -> bytes:
    return COMMIT + u64(height)


def app_hash_key(height: int) -> bytes:
    return APP_HASH + u64(height)


def hash_index_key(block_hash: bytes) -> bytes:
    return HASH_INDEX + block_hash


def tx_key(tx_hash: bytes) -> bytes:
    return TX + tx_hash


def pending_tx_key(tx_hash: bytes) -> bytes:
    return PENDING_TX + tx_hash


def state_key(key: bytes) -> bytes:
    return STATE + key


def wal_prefix(height: int) -> bytes:
    return WAL + u64(height)


def wal_key(height: int, seq: int) -> bytes:
    return WAL + u64(height) + u32(seq)


def wal_height(key: bytes) -> int:
    """The height part of a w/ key."""
    return read_u64(key[len(WAL) : len(WAL) + 8])
