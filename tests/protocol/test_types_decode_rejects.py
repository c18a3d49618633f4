"""Every wire type refuses truncated, extended, oversized, wrongly typed and corrupted
input with DecodeError — and never with any other exception.

A corrupted input may happen to be another valid encoding (a flipped bit inside a
signature, say); then it must decode to a *different* value that re-encodes to
exactly the corrupted bytes.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from protocol_strategies import ALL_TYPES, budget, example_instances
from wire_mutations import field_positions, get, replaced, struct_positions, wrong_values

from protocol import codec
from protocol.errors import DecodeError
from protocol.wire import Struct

TYPES = list(ALL_TYPES)
ids = [c.__name__ for c in TYPES]


def decode_or_none(cls: type[Struct], data: bytes) -> Struct | None:
    """The decoded value, or None on DecodeError. Any other exception propagates."""
    try:
        return cls.decode(data)
    except DecodeError:
        return None


def assert_rejected_or_distinct(cls: type[Struct], original: Struct, data: bytes) -> None:
    decoded = decode_or_none(cls, data)
    if decoded is not None:
        assert decoded != original
        assert decoded.encode() == data


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(50)
@given(data=st.data())
def test_truncated_input_is_rejected(cls: type[Struct], data: st.DataObject) -> None:
    encoded = data.draw(ALL_TYPES[cls]).encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        cls.decode(encoded[:cut])


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(50)
@given(data=st.data(), suffix=st.binary(min_size=1, max_size=9))
def test_trailing_bytes_are_rejected(cls: type[Struct], data: st.DataObject, suffix: bytes) -> None:
    encoded = data.draw(ALL_TYPES[cls]).encode()
    with pytest.raises(DecodeError):
        cls.decode(encoded + suffix)


@pytest.mark.parametrize("cls", TYPES, ids=ids)
def test_every_struct_needs_its_exact_field_count(cls: type[Struct]) -> None:
    """An extra or a missing field in the struct itself or any struct nested in it."""
    instance = example_instances()[cls]
    tree = instance.to_wire()
    checked = 0
    for path, inner_cls in struct_positions(cls, tree):
        fields = get(tree, path)
        assert len(fields) == len(inner_cls.wire_fields())
        for bad in ([*fields, 0], [*fields, None], fields[:-1], []):
            with pytest.raises(DecodeError):
                cls.decode(codec.pack(replaced(tree, path, bad)))
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(30)
@given(data=st.data())
def test_input_over_the_size_limit_is_rejected(cls: type[Struct], data: st.DataObject) -> None:
    encoded = data.draw(ALL_TYPES[cls]).encode()
    assert cls.decode(encoded, max_size=len(encoded)) is not None
    with pytest.raises(DecodeError, match="exceeds the limit"):
        cls.decode(encoded, max_size=len(encoded) - 1)


@pytest.mark.parametrize("cls", TYPES, ids=ids)
def test_default_size_limit_is_enforced(cls: type[Struct]) -> None:
    with pytest.raises(DecodeError, match="exceeds the limit"):
        cls.decode(b"\x00" * (cls.MAX_BYTES + 1))


@pytest.mark.parametrize("cls", TYPES, ids=ids)
def test_every_field_refuses_every_wrong_type(cls: type[Struct]) -> None:
    """Exhaustive over a fully populated instance: each field (and each sequence item),
    replaced by each value its wire type must refuse."""
    tree = example_instances()[cls].to_wire()
    tried = 0
    for path, spec in field_positions(cls, tree):
        for bad in wrong_values(spec):
            mutated = codec.pack(replaced(tree, path, bad))
            with pytest.raises(DecodeError):
                cls.decode(mutated, max_size=len(mutated))
            tried += 1
    assert tried >= 6 * len(cls.wire_fields())


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(40)
@given(data=st.data())
def test_random_field_with_a_wrong_type_is_rejected(cls: type[Struct], data: st.DataObject) -> None:
    tree = data.draw(ALL_TYPES[cls]).to_wire()
    path, spec = data.draw(st.sampled_from(list(field_positions(cls, tree))))
    bad = data.draw(st.sampled_from(wrong_values(spec)))
    mutated = codec.pack(replaced(tree, path, bad))
    with pytest.raises(DecodeError):
        cls.decode(mutated, max_size=len(mutated))


# Arbitrary values of the msgpack model, to graft anywhere into a valid tree.
any_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=70)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=10,
)


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(50)
@given(data=st.data(), graft=any_values)
def test_any_grafted_value_decodes_or_is_rejected(
    cls: type[Struct], data: st.DataObject, graft: Any
) -> None:
    original = data.draw(ALL_TYPES[cls])
    tree = original.to_wire()
    paths = [(), *(p for p, _ in field_positions(cls, tree))]
    path = data.draw(st.sampled_from(paths))
    assume(get(tree, path) != graft)
    mutated = codec.pack(replaced(tree, path, graft))
    assert_rejected_or_distinct(cls, original, mutated)


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(60)
@given(data=st.data())
def test_a_flipped_bit_is_rejected_or_decodes_to_another_value(
    cls: type[Struct], data: st.DataObject
) -> None:
    original = data.draw(ALL_TYPES[cls])
    encoded = original.encode()
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
    flipped = bytearray(encoded)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert_rejected_or_distinct(cls, original, bytes(flipped))


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(60)
@given(data=st.data())
def test_corrupted_bytes_are_rejected_or_decode_to_another_value(
    cls: type[Struct], data: st.DataObject
) -> None:
    """Overwrite, insert or delete a short run of bytes anywhere in a valid encoding."""
    original = data.draw(ALL_TYPES[cls])
    encoded = original.encode()
    at = data.draw(st.integers(0, len(encoded)))
    cut = data.draw(st.integers(0, min(4, len(encoded) - at)))
    new = data.draw(st.binary(max_size=4))
    corrupted = encoded[:at] + new + encoded[at + cut :]
    assume(corrupted != encoded)
    assert_rejected_or_distinct(cls, original, corrupted)


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(100)
@given(garbage=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(
    cls: type[Struct], garbage: bytes
) -> None:
    decoded = decode_or_none(cls, garbage)
    if decoded is not None:
        assert decoded.encode() == garbage
