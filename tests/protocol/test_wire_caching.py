"""Structs cache their encoding and digest; these tests pin what the cache may and
may not change: bytes equal a fresh encode, errors still name the exact field, and
an invalid value is refused when encoding rather than sent to peers."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pytest
from protocol_strategies import key

from protocol import codec, messages
from protocol.consensus.signstate import SignState
from protocol.consensus.wal import WalRecord
from protocol.errors import DecodeError
from protocol.types import ZERO_HASH, Block, Proposal, Tx, make_block
from protocol.wire import BOOL, U32, U64, Bytes, Nested, Optional, Str, Struct


def _txs(n: int) -> tuple[Tx, ...]:
    return tuple(Tx.create(key(1), "c", i, "transfer", bytes([i % 256])) for i in range(n))


def _block(n: int) -> Block:
    return make_block(chain_id="c", height=2, time_ms=1, prev_hash=ZERO_HASH, app_hash=bytes(32),
                      validators_hash=bytes(32), proposer=key(1).public_key, txs=_txs(n))


def test_encode_by_parts_equals_packing_the_whole_tree() -> None:
    b = _block(40)  # more than 15 txs: an array16 header
    p = Proposal.create(key(1), "c", 2, 0, -1, b, 7)
    assert b.encode() == codec.pack(b.to_wire())
    assert p.encode() == codec.pack(p.to_wire())
    assert messages.encode_tagged(p) == codec.pack([1, p.to_wire()])
    batch = messages.TxBatch(b.txs)
    assert batch.encode() == codec.pack(batch.to_wire())
    for rec in (WalRecord.of(p), WalRecord.of(b), SignState.of("c", p, -1, None), SignState.of("c", p, 0, b.hash)):
        assert rec.encode() == codec.pack(rec.to_wire())
        assert type(rec).decode(rec.encode()) == rec


def test_decoded_structs_reencode_to_the_bytes_they_came_from() -> None:
    p = Proposal.create(key(1), "c", 2, 0, -1, _block(20), 7)
    data = messages.encode_tagged(p)
    q = messages.decode_consensus(data)
    assert isinstance(q, Proposal) and q == p
    for tx, orig in zip(q.block.txs, p.block.txs, strict=True):
        assert tx.encode() == codec.pack(orig.to_wire()) and tx.hash == orig.hash
    assert q.block.hash == p.block.hash


def test_a_field_error_still_names_its_full_path() -> None:
    tree = _block(5).to_wire()
    tree[1][3][2] = "seven"  # the nonce of the fourth tx
    with pytest.raises(DecodeError) as exc:
        Block.from_wire(tree)
    assert exc.value.reason == "Block.txs[3].nonce: expected integer, got str"
    with pytest.raises(DecodeError) as exc:
        Block.decode(codec.pack(tree))
    assert exc.value.reason.startswith("Block.txs[3].nonce: ")


def test_a_value_outside_the_codec_model_is_refused_on_encode() -> None:
    tx = _txs(1)[0]
    for bad in (dataclasses.replace(tx, nonce=2**64), dataclasses.replace(tx, nonce=1.0),
                dataclasses.replace(tx, signature="sig"), dataclasses.replace(tx, kind=b"transfer")):
        with pytest.raises(DecodeError):
            bad.encode()


def test_a_non_canonical_message_is_refused_even_though_the_schema_accepts_it() -> None:
    tx = _txs(1)[0]
    data = tx.encode()
    # nonce 0 as a uint8 (0xcc 0x00) instead of a positive fixint: the same value, non-minimal
    tree = tx.to_wire()
    head = codec.pack(tree[:2])[1:]
    bad = bytes([0x97]) + head + b"\xcc\x00" + codec.pack(tree[3:])[1:]
    assert bad != data and codec.unpack_unchecked(bad, 1000) == tree
    with pytest.raises(DecodeError, match="non-canonical"):
        Tx.decode(bad)



class Colour(enum.IntEnum):
    RED = 3


@dataclass(frozen=True, slots=True)
class Painted(Struct):
    colour: Annotated[int, U32]


def test_int_enum_members_encode_as_their_integer() -> None:
    assert Painted(Colour.RED).encode() == codec.pack([3])
    with pytest.raises(DecodeError):
        Painted(True).encode()  # a bool is not a wire integer


class Label(bytes):
    pass


@dataclass(frozen=True, slots=True)
class Mixed(Struct):
    n: Annotated[int, U64]
    flag: Annotated[bool, BOOL]
    raw: Annotated[bytes, Bytes(max=8)]
    text: Annotated[str, Str(8)]
    maybe: Annotated[int | None, Optional(U64)]
    inner: Annotated[Painted, Nested(Painted)]


@dataclass(frozen=True, slots=True)
class MixedMore(Mixed):
    extra: Annotated[int, U64] = 0


def _outcome(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except DecodeError as exc:
        return ("error", exc.reason)


@pytest.mark.parametrize("fields", [
    dict(n=1, flag=True, raw=b"ab", text="x", maybe=None, inner=Painted(1)),
    dict(n=2**64 - 1, flag=False, raw=b"", text="", maybe=5, inner=Painted(Colour.RED)),
    dict(n=Colour.RED, flag=True, raw=Label(b"ab"), text="x", maybe=Colour.RED, inner=Painted(1)),
    dict(n=True, flag=True, raw=b"ab", text="x", maybe=None, inner=Painted(1)),
    dict(n=2**64, flag=True, raw=b"ab", text="x", maybe=None, inner=Painted(1)),
    dict(n=-(2**63) - 1, flag=True, raw=b"ab", text="x", maybe=None, inner=Painted(1)),
    dict(n=1, flag=1, raw=b"ab", text="x", maybe=None, inner=Painted(1)),
    dict(n=1, flag=True, raw="ab", text=b"x", maybe=None, inner=Painted(1)),
    dict(n=1, flag=True, raw=b"ab", text="x", maybe=1.5, inner=Painted(1)),
    dict(n=1, flag=True, raw=b"ab", text="x", maybe=None, inner=Painted(True)),
])
def test_compiled_encoders_give_what_every_spec_gives(fields: dict[str, object]) -> None:
    """The straight-line encoder a struct class gets on first use returns the very
    list, or raises the very error, of running every field through its Spec."""
    for obj in (Mixed(**fields), MixedMore(**fields, extra=9)):  # type: ignore[arg-type]
        assert _outcome(obj.to_wire) == _outcome(obj._to_wire_checked)
        assert _outcome(obj.encode) == _outcome(lambda o=obj: codec.pack_tree(o._to_wire_checked()))
    wire = _outcome(MixedMore(**fields, extra=9)._to_wire_checked)  # type: ignore[arg-type]
    assert isinstance(wire, tuple) or len(wire) == 7  # type: ignore[arg-type]  # the subclass's own fields


@pytest.mark.parametrize("tree", [
    [1, True, b"ab", "x", None, [3]],
    [2**64 - 1, False, b"", "", 5, [0]],
    [2**64, True, b"ab", "x", None, [3]],
    [-1, True, b"ab", "x", None, [3]],
    [True, True, b"ab", "x", None, [3]],
    [1, 1, b"ab", "x", None, [3]],
    [1, True, b"123456789", "x", None, [3]],
    [1, True, b"ab", "\u00e9" * 5, None, [3]],  # 10 UTF-8 bytes in 5 characters
    [1, True, b"ab", "x" * 8, None, [3]],
    [1, True, b"ab", "x", "5", [3]],
    [1, True, b"ab", "x", None, [2**32]],
    [1, True, b"ab", "x", None, 3],
    [1, True, b"ab", "x", None],
    "not a list",
])
def test_compiled_decoders_give_what_every_spec_gives(tree: object) -> None:
    """The straight-line decoder a struct class gets on first use accepts exactly what
    the Spec path accepts, builds the same struct, and refuses with the same reason."""
    assert _outcome(lambda: Mixed.from_wire(tree)) == _outcome(lambda: Mixed._from_wire_checked(tree))
    longer = [*tree, 9] if isinstance(tree, list) else tree
    got = _outcome(lambda: MixedMore.from_wire(longer))
    assert got == _outcome(lambda: MixedMore._from_wire_checked(longer))
    assert isinstance(got, tuple) or type(got) is MixedMore
