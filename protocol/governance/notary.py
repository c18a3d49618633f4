"""Notary: anyone may record that a document hash existed at a block.

A record stores the notariser's key (and identity, if the key is one's current
key), the block height and time, the tx hash and its index in the block. Its proof
is the block's height and hash plus a Merkle inclusion proof of the tx hash under
the header's tx root (RFC 6962): `prove` builds one from the block, `verify_proof`
checks one against a header the verifier trusts (e.g. from a light client).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from protocol import merkle
from protocol.governance import keys
from protocol.governance.context import Ctx, save
from protocol.governance.identity import identity_of_key
from protocol.kv import KVReader
from protocol.types import Block, BlockHeader
from protocol.wire import HASH, PUBKEY, U32, U64, Nested, Optional, Str, Struct

MAX_METADATA = 256


@dataclass(frozen=True, slots=True)
class Notarise(Struct):
    doc_hash: Annotated[bytes, HASH]
    metadata: Annotated[str, Str(MAX_METADATA)]


@dataclass(frozen=True, slots=True)
class NotaryRecord(Struct):
    doc_hash: Annotated[bytes, HASH]
    notariser: Annotated[bytes, PUBKEY]
    identity: Annotated[bytes | None, Optional(HASH)]
    height: Annotated[int, U64]
    time_ms: Annotated[int, U64]
    tx_hash: Annotated[bytes, HASH]
    tx_index: Annotated[int, U32]
    metadata: Annotated[str, Str(MAX_METADATA)]


@dataclass(frozen=True, slots=True)
class NotaryProof(Struct):
    height: Annotated[int, U64]
    block_hash: Annotated[bytes, HASH]
    tx_hash: Annotated[bytes, HASH]
    inclusion: Annotated[merkle.InclusionProof, Nested(merkle.InclusionProof)]


def notarise(c: Ctx, body: Notarise) -> None:
    ident = identity_of_key(c.kv, c.sender)
    rec = NotaryRecord(
        doc_hash=body.doc_hash,
        notariser=c.sender,
        identity=None if ident is None else ident.id,
        height=c.height,
        time_ms=c.time_ms,
        tx_hash=c.tx_hash,
        tx_index=c.tx_index,
        metadata=body.metadata,
    )
    save(c.kv, keys.notary(body.doc_hash, c.height, c.tx_index), rec)
    c.emit("notary.recorded", doc_hash=body.doc_hash.hex(), height=c.height, index=c.tx_index)


def records(kv: KVReader, doc_hash: bytes) -> list[NotaryRecord]:
    """Every record of `doc_hash`, oldest first."""
    return [NotaryRecord.decode(v) for _, v in kv.scan(keys.NOTARY + doc_hash)]


def prove(block: Block, record: NotaryRecord) -> NotaryProof:
    """The proof of `record` from the block it names (the node reads it from its store)."""
    if block.height != record.height or not 0 <= record.tx_index < len(block.txs):
        raise ValueError("the record is not from this block")
    hashes = [tx.hash for tx in block.txs]
    if hashes[record.tx_index] != record.tx_hash:
        raise ValueError("the block's tx at the record's index is another tx")
    return NotaryProof(block.height, block.hash, record.tx_hash, merkle.prove(hashes, record.tx_index))


def verify_proof(proof: NotaryProof, header: BlockHeader, record: NotaryRecord | None = None) -> bool:
    """`proof` puts its tx in the block `header` describes (and, given `record`,
    the record's tx is that tx)."""
    if record is not None and (record.tx_hash, record.height) != (proof.tx_hash, proof.height):
        return False
    return (
        header.height == proof.height
        and header.digest() == proof.block_hash
        and merkle.verify_inclusion(proof.tx_hash, proof.inclusion, header.tx_root)
    )
