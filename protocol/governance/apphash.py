"""The app hash: a hash chain over each block's sorted write set.

    ws_digest(H) = SHA-256 over every write of block H in key order, except the
                   app-hash key itself, each written as
                   u32(len(key)) key u32(len(value)) value   (a put)
                   u32(len(key)) key ff ff ff ff             (a delete)
                   with big-endian u32 lengths
    app_hash(H)  = SHA-256(pack(["ekklesia/app/v1", app_hash(H-1), H, ws_digest(H)]))

with app_hash(-1) = 32 zero bytes and H = 0 for genesis. Equal on honest nodes
because write sets are sorted and built only from block contents; it changes with
every block because the height and `m/height` enter it. It commits to the whole
history of state changes, not to a Merkle root of the current state, so it proves
agreement but gives no per-key proofs.
"""

from __future__ import annotations

import hashlib

from protocol import codec
from protocol.governance import keys
from protocol.kv import KVReader, WriteSet

DOMAIN = "ekklesia/app/v1"
ZERO = bytes(32)


_DELETED = b"\xff\xff\xff\xff"


def write_set_digest(write_set: WriteSet) -> bytes:
    # Length-prefixed rather than msgpack: unambiguous, and cheap for the thousands
    # of writes a busy block makes.
    h = hashlib.sha256()
    for k, v in write_set:
        if k != keys.META_APP_HASH:
            h.update(len(k).to_bytes(4, "big"))
            h.update(k)
            if v is None:
                h.update(_DELETED)
            else:
                h.update(len(v).to_bytes(4, "big"))
                h.update(v)
    return h.digest()


def chain(prev: bytes, height: int, write_set: WriteSet) -> bytes:
    return hashlib.sha256(codec.pack([DOMAIN, prev, height, write_set_digest(write_set)])).digest()


def app_hash(state: KVReader) -> bytes:
    """The app hash stored by the last applied block (or genesis)."""
    raw = state.get(keys.META_APP_HASH)
    if raw is None:
        raise LookupError("the state has no app hash: genesis was not applied")
    return raw
