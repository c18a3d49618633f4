"""The codec writes exactly the documented canonical form and reads nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgpack_reference import non_canonical_forms, ref_pack
from protocol_strategies import budget

from protocol import codec
from protocol.errors import DecodeError

I64_MIN = -(2**63)
U64_MAX = 2**64 - 1

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(I64_MIN, U64_MAX),
    st.binary(max_size=300),
    st.text(max_size=40),
)
# Values of the model, kept within the depth limit (12) by construction.
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=30)


def normalise(value: object) -> object:
    """Tuples come back as lists."""
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def typed(value: object) -> object:
    """A form of `value` in which equality also compares types (so True != 1)."""
    if isinstance(value, list | tuple):
        return ("array", [typed(v) for v in value])
    return (type(value).__name__, value)


@budget(300)
@given(values)
def test_pack_is_the_reference_canonical_encoding(value: object) -> None:
    assert codec.pack(value) == ref_pack(value)  # type: ignore[arg-type]


@budget(300)
@given(values)
def test_round_trip(value: object) -> None:
    data = codec.pack(value)  # type: ignore[arg-type]
    assert codec.unpack(data, len(data)) == normalise(value)


def test_tuple_and_list_encode_alike() -> None:
    assert codec.pack((1, (b"x", "y"))) == codec.pack([1, [b"x", "y"]])


# Each boundary of msgpack's integer formats, with the byte the canonical form starts with.
INT_EDGES = [
    (0, "00"), (127, "7f"), (128, "cc80"), (255, "ccff"), (256, "cd0100"),
    (65535, "cdffff"), (65536, "ce00010000"), (2**32 - 1, "ceffffffff"),
    (2**32, "cf0000000100000000"), (U64_MAX, "cfffffffffffffffff"),
    (-1, "ff"), (-32, "e0"), (-33, "d0df"), (-128, "d080"), (-129, "d1ff7f"),
    (-32768, "d18000"), (-32769, "d2ffff7fff"), (-(2**31), "d280000000"),
    (-(2**31) - 1, "d3ffffffff7fffffff"), (I64_MIN, "d38000000000000000"),
]


@pytest.mark.parametrize(("n", "hex_"), INT_EDGES)
def test_integer_edges_have_the_shortest_encoding(n: int, hex_: str) -> None:
    assert codec.pack(n).hex() == hex_
    assert codec.unpack(bytes.fromhex(hex_), 16) == n


# U64_MAX, -(2**31) - 1 and I64_MIN have a single form: nothing wider exists.
WIDENABLE = [n for n, _ in INT_EDGES if n not in (U64_MAX, -(2**31) - 1, I64_MIN)]


@pytest.mark.parametrize("n", [*WIDENABLE, 1, 5, 200, 1000, 70000, -5, -200])
def test_every_wider_integer_form_is_rejected(n: int) -> None:
    forms = list(non_canonical_forms(n))
    assert forms
    for form in forms:
        with pytest.raises(DecodeError, match="non-canonical"):
            codec.unpack(form, 16)


def test_one_as_uint16_is_rejected() -> None:
    with pytest.raises(DecodeError, match="non-canonical"):
        codec.unpack(b"\xcd\x00\x01", 3)


@pytest.mark.parametrize("n", [2**64, -(2**63) - 1, 2**100, -(2**100)])
def test_integers_outside_64_bits_cannot_be_packed(n: int) -> None:
    with pytest.raises(DecodeError, match="64-bit"):
        codec.pack(n)


@pytest.mark.parametrize(
    "value",
    ["", "a", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "é" * 40, b"", b"z" * 255,
     b"z" * 256, [], [0] * 15, [0] * 16, [[], [[]]]],
)
def test_longer_length_headers_are_rejected(value: object) -> None:
    assert list(non_canonical_forms(value))
    for form in non_canonical_forms(value):
        with pytest.raises(DecodeError, match="non-canonical"):
            codec.unpack(form, len(form))


def test_fixstr_written_as_str8_is_rejected() -> None:
    with pytest.raises(DecodeError, match="non-canonical"):
        codec.unpack(b"\xd9\x03abc", 5)


def test_str_and_bin_are_distinct_values() -> None:
    assert codec.unpack(b"\xa3abc", 4) == "abc"
    assert codec.unpack(b"\xc4\x03abc", 5) == b"abc"
    assert codec.pack("abc") != codec.pack(b"abc")


def test_booleans_are_not_integers() -> None:
    assert codec.pack(True) == b"\xc3" and codec.pack(False) == b"\xc2"
    assert codec.unpack(b"\xc3", 1) is True
    assert codec.unpack(b"\x01", 1) == 1 and codec.unpack(b"\x01", 1) is not True


@budget(300)
@given(st.binary(min_size=1, max_size=64))
def test_arbitrary_bytes_decode_only_to_a_canonical_value(data: bytes) -> None:
    try:
        value = codec.unpack(data, 64)
    except DecodeError:
        return
    assert codec.pack(value) == data


@budget(200)
@given(values, st.data())
def test_a_flipped_bit_gives_a_decode_error_or_another_canonical_value(
    value: object, data: st.DataObject
) -> None:
    encoded = codec.pack(value)  # type: ignore[arg-type]
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
    flipped = bytearray(encoded)
    flipped[bit // 8] ^= 1 << (bit % 8)
    try:
        decoded = codec.unpack(bytes(flipped), len(flipped))
    except DecodeError:
        return
    assert typed(decoded) != typed(value)
    assert codec.pack(decoded) == bytes(flipped)
