"""RFC 6962 (Certificate Transparency) Merkle trees over byte-string leaves.

    leaf hash  = SHA-256(0x00 || leaf)
    node hash  = SHA-256(0x01 || left || right)
    MTH([])    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n

Leaves of a block's tx tree are the transactions' hashes. An inclusion proof is the
RFC's audit path; `verify_inclusion` follows RFC 9162 §2.1.3.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from protocol.wire import HASH, U64, Seq, Struct

MAX_PROOF_DEPTH = 64


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(x) for x in leaves]
    return _root_of_hashes(level)


def _root_of_hashes(hashes: list[bytes]) -> bytes:
    # Bottom-up pairing gives the RFC 6962 shape: a lone last node is promoted
    # unchanged, which is exactly the "largest power of two" split.
    while len(hashes) > 1:
        nxt = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        if len(hashes) % 2:
            nxt.append(hashes[-1])
        hashes = nxt
    return hashes[0]


@dataclass(frozen=True, slots=True)
class InclusionProof(Struct):
    index: Annotated[int, U64]
    tree_size: Annotated[int, U64]
    path: Annotated[tuple[bytes, ...], Seq(HASH, MAX_PROOF_DEPTH)]


def prove(leaves: Sequence[bytes], index: int) -> InclusionProof:
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} not in a tree of {len(leaves)}")
    return InclusionProof(index, len(leaves), tuple(_path(index, [leaf_hash(x) for x in leaves])))


def _path(m: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, hashes[:k]), _root_of_hashes(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _root_of_hashes(hashes[:k])]


def verify_inclusion(leaf: bytes, proof: InclusionProof, expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: recompute the root from the leaf and its audit path."""
    fn, sn = proof.index, proof.tree_size - 1
    if fn > sn:
        return False
    r = leaf_hash(leaf)
    for p in proof.path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root
