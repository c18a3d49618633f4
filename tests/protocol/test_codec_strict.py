"""Strict decoding: limits and everything outside the value model raise DecodeError."""

from __future__ import annotations

import struct

import pytest
from msgpack_reference import ref_pack

from protocol import codec
from protocol.errors import DecodeError
from protocol.limits import MAX_DEPTH


def nest(levels: int, leaf: object) -> object:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


# ---------------------------------------------------------------- size


def test_input_longer_than_the_limit_is_rejected_before_parsing() -> None:
    data = codec.pack([b"x" * 100])
    assert codec.unpack(data, len(data)) == [b"x" * 100]
    with pytest.raises(DecodeError, match="exceeds the limit"):
        codec.unpack(data, len(data) - 1)
    # Garbage is refused on size alone: the message names the size, not a parse error.
    with pytest.raises(DecodeError, match="exceeds the limit"):
        codec.unpack(b"\xc1" * 10, 9)


def test_empty_input_is_rejected() -> None:
    with pytest.raises(DecodeError, match="empty"):
        codec.unpack(b"", 10)


@pytest.mark.parametrize("data", ["\x01", 1, None, [1], object()])
def test_non_bytes_input_is_rejected(data: object) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        codec.unpack(data, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_bytes_like_input_is_accepted(wrap: type) -> None:
    assert codec.unpack(wrap(b"\x92\x01\xa1a"), 4) == [1, "a"]


# ---------------------------------------------------------------- depth


@pytest.mark.parametrize("leaf", [0, [], b"x"])
def test_depth_limit_applies_to_every_value(leaf: object) -> None:
    """The top-level value has depth 0 and an array's items one more than the array;
    no value may be deeper than MAX_DEPTH."""
    ok, deep = nest(MAX_DEPTH, leaf), nest(MAX_DEPTH + 1, leaf)
    data = ref_pack(ok)
    assert codec.unpack(data, 100) == ok
    assert codec.pack(ok) == data  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="nesting"):
        codec.unpack(ref_pack(deep), 100)
    with pytest.raises(DecodeError, match="nesting"):
        codec.pack(deep)  # type: ignore[arg-type]


def test_depth_beyond_the_parser_stack_is_a_decode_error() -> None:
    data = b"\x91" * 5000 + b"\xc0"
    with pytest.raises(DecodeError):
        codec.unpack(data, len(data))


# ---------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    "data",
    [
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 2^32-1 items, none present
        b"\xdc\x00\x10" + b"\x00" * 15,  # array16 of 16, one missing
        b"\xdb\x00\x00\x10\x00abc",  # str32 claiming 4096 bytes
        b"\xc6\x7f\xff\xff\xffab",  # bin32 claiming 2 GiB
        b"\xd9\x05abc",  # str8 claiming 5, holding 3
        b"\xcd\x01",  # uint16 cut short
    ],
)
def test_lengths_beyond_the_input_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.unpack(data, 1 << 20)


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        codec.unpack(b"\x01\x02", 2)
    with pytest.raises(DecodeError, match="trailing"):
        codec.unpack(codec.pack([1, "a"]) + b"\xc0", 100)


# ---------------------------------------------------------------- outside the model


@pytest.mark.parametrize(
    "data",
    [
        b"\xd4\x01\x00",  # fixext 1
        b"\xd5\x01\x00\x00",  # fixext 2
        b"\xd6\xff\x00\x00\x00\x00",  # fixext 4, type -1: a msgpack timestamp
        b"\xd7\xff" + bytes(8),  # fixext 8 timestamp
        b"\xd8\x05" + bytes(16),  # fixext 16
        b"\xc7\x00\x05",  # ext 8 of length 0
        b"\xc7\x00\xff",  # ext 8 of length 0, timestamp type
        b"\xc7\x0c\xff" + bytes(12),  # ext 8 timestamp96
        b"\xc8\x00\x01\x05\x00",  # ext 16
        b"\xc9\x00\x00\x00\x01\x05\x00",  # ext 32
        b"\x91\xd4\x01\x00",  # ext nested in an array
    ],
)
def test_extension_types_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.unpack(data, 100)


@pytest.mark.parametrize(
    "data",
    [b"\x80", b"\x81\x01\x02", b"\x81\xa1a\x01", b"\xde\x00\x00", b"\xdf\x00\x00\x00\x00",
     b"\x91\x80"],
)
def test_maps_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.unpack(data, 100)


@pytest.mark.parametrize(
    "data",
    [b"\xca" + struct.pack(">f", 1.0), b"\xcb" + struct.pack(">d", 0.0),
     b"\x92\x01\xcb" + struct.pack(">d", 2.5)],
)
def test_floats_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError, match="float"):
        codec.unpack(data, 100)


def test_the_reserved_byte_is_rejected() -> None:
    with pytest.raises(DecodeError):
        codec.unpack(b"\xc1", 1)


@pytest.mark.parametrize(
    "data",
    [b"\xa1\xff", b"\xa2\xc3\x28", b"\xa3\xed\xa0\x80", b"\xa2\xc0\xaf", b"\xa4\xf4\x90\x80\x80"],
    ids=["invalid byte", "bad continuation", "surrogate", "overlong", "beyond U+10FFFF"],
)
def test_strings_must_be_valid_utf8(data: bytes) -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        codec.unpack(data, 10)


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": 1}, {}, {1, 2}, bytearray(b"x"), object(), [1, [2.0]], "\ud800", 2**64,
     -(2**63) - 1],
)
def test_pack_refuses_values_outside_the_model(value: object) -> None:
    with pytest.raises(DecodeError):
        codec.pack(value)  # type: ignore[arg-type]
