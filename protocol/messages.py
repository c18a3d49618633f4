"""Network messages: what travels on the gossip topics and the sync protocol.

Every message is a tagged union ``[tag, struct]`` in canonical msgpack; the tag
names the struct. Decoding goes through `decode_*` functions that return the
message or raise `DecodeError` — callers in `node` turn that into a rejection of
the peer, never an exception that unwinds the node.

Gossip topics
    txs        one `TxBatch` per message: transactions travel in batches because
               py-libp2p's gossip costs milliseconds of CPU per message.
    consensus  a `CompactProposal` (a proposal whose transactions are named by hash:
               they travelled in tx batches already), a `Vote` or a
               `DuplicateVoteEvidence`; a full `Proposal` is still understood.
Sync (request/response on a stream)
    `StatusRequest` → `StatusResponse`; `BlocksRequest` → `BlocksResponse`;
    `VotesRequest` → `VotesResponse`; any request may get an `ErrorResponse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from protocol import codec
from protocol.compact import CompactProposal
from protocol.errors import DecodeError
from protocol.limits import MAX_BLOCK_BYTES, MAX_CHAIN_ID, MAX_VALIDATORS
from protocol.types import Block, Commit, DuplicateVoteEvidence, Proposal, Tx, Vote
from protocol.wire import HASH, U32, U64, Nested, Str, Struct, struct_list

MAX_BATCH_TXS = 2_000
MAX_TX_BATCH_BYTES = 900 * 1024  # gossip drops anything of 1 MiB or more, silently
MAX_BLOCKS_PER_RESPONSE = 64
MAX_SYNC_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_SYNC_REQUEST_BYTES = 1024
MAX_VOTES_PER_RESPONSE = 4 * MAX_VALIDATORS
MAX_PROPOSALS_PER_RESPONSE = 4


@dataclass(frozen=True, slots=True)
class TxBatch(Struct):
    MAX_BYTES = MAX_TX_BATCH_BYTES
    ENCODE_BY_PARTS = True
    txs: Annotated[tuple[Tx, ...], struct_list(Tx, MAX_BATCH_TXS)]


@dataclass(frozen=True, slots=True)
class StatusRequest(Struct):
    chain_id: Annotated[str, Str(MAX_CHAIN_ID)]


@dataclass(frozen=True, slots=True)
class StatusResponse(Struct):
    chain_id: Annotated[str, Str(MAX_CHAIN_ID)]
    genesis_hash: Annotated[bytes, HASH]
    height: Annotated[int, U64]  # last committed height, 0 before the first block
    block_hash: Annotated[bytes, HASH]
    app_hash: Annotated[bytes, HASH]
    base_height: Annotated[int, U64]  # lowest height still stored (pruning)


@dataclass(frozen=True, slots=True)
class BlocksRequest(Struct):
    from_height: Annotated[int, U64]
    count: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class BlockWithCommit(Struct):
    block: Annotated[Block, Nested(Block)]
    commit: Annotated[Commit, Nested(Commit)]


@dataclass(frozen=True, slots=True)
class BlocksResponse(Struct):
    MAX_BYTES = MAX_SYNC_RESPONSE_BYTES
    ENCODE_BY_PARTS = True
    blocks: Annotated[tuple[BlockWithCommit, ...], struct_list(BlockWithCommit, MAX_BLOCKS_PER_RESPONSE)]


@dataclass(frozen=True, slots=True)
class VotesRequest(Struct):
    height: Annotated[int, U64]


@dataclass(frozen=True, slots=True)
class VotesResponse(Struct):
    """The proposals and votes a peer holds for the height asked about: how a node
    that lost gossip (a partition, a restart) catches up within a height. Gossip
    cannot do it: its de-duplication drops a re-published message for minutes."""

    MAX_BYTES = MAX_SYNC_RESPONSE_BYTES
    ENCODE_BY_PARTS = True
    proposals: Annotated[tuple[Proposal, ...], struct_list(Proposal, MAX_PROPOSALS_PER_RESPONSE)]
    votes: Annotated[tuple[Vote, ...], struct_list(Vote, MAX_VOTES_PER_RESPONSE)]


@dataclass(frozen=True, slots=True)
class ErrorResponse(Struct):
    code: Annotated[int, U32]
    message: Annotated[str, Str(256)]


CONSENSUS_TAGS: dict[int, type[Struct]] = {1: Proposal, 2: Vote, 3: DuplicateVoteEvidence, 4: CompactProposal}
SYNC_TAGS: dict[int, type[Struct]] = {
    10: StatusRequest,
    11: StatusResponse,
    12: BlocksRequest,
    13: BlocksResponse,
    14: VotesRequest,
    15: VotesResponse,
    19: ErrorResponse,
}
_TAG_OF = {cls: tag for table in (CONSENSUS_TAGS, SYNC_TAGS) for tag, cls in table.items()}
if not all(0 <= tag < 0x80 for tag in _TAG_OF.values()):  # encode_tagged writes each tag as one byte
    raise AssertionError("message tags must be positive fixints")


def encode_tagged(msg: Struct) -> bytes:
    # [tag, message]: every tag is a positive fixint, so this is the canonical form.
    return b"\x92" + bytes((_TAG_OF[type(msg)],)) + msg.encode()


def _decode_tagged(data: bytes, table: dict[int, type[Struct]], max_size: int) -> Any:
    def tagged(value: Any) -> Struct:
        if type(value) is not list or len(value) != 2 or type(value[0]) is not int:
            raise DecodeError("expected [tag, message]")
        cls = table.get(value[0])
        if cls is None:
            raise DecodeError(f"unknown message tag {value[0]}")
        return cls.from_wire(value[1])  # checks every leaf against the schema

    return codec.unpack_with(data, max_size, tagged)[0]


def decode_consensus(data: bytes) -> Proposal | CompactProposal | Vote | DuplicateVoteEvidence:
    return _decode_tagged(data, CONSENSUS_TAGS, MAX_BLOCK_BYTES + 4096)  # type: ignore[no-any-return]


def decode_sync(data: bytes) -> Struct:
    return _decode_tagged(data, SYNC_TAGS, MAX_SYNC_RESPONSE_BYTES)  # type: ignore[no-any-return]


def decode_tx_batch(data: bytes) -> TxBatch:
    return TxBatch.decode(data)
