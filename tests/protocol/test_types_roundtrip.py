"""Every wire type: decode(encode(x)) == x, and the encoding is the canonical
msgpack array of the fields in documented order."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgpack_reference import ref_pack
from protocol_strategies import ALL_TYPES, budget, example_instances
from wire_mutations import wire_tree

from protocol.wire import Struct

TYPES = list(ALL_TYPES)
ids = [c.__name__ for c in TYPES]


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(60)
@given(data=st.data())
def test_round_trip(cls: type[Struct], data: st.DataObject) -> None:
    value = data.draw(ALL_TYPES[cls])
    encoded = value.encode()
    decoded = cls.decode(encoded)
    assert decoded == value
    assert type(decoded) is cls
    assert decoded.encode() == encoded


@pytest.mark.parametrize("cls", TYPES, ids=ids)
@budget(60)
@given(data=st.data())
def test_encoding_is_the_canonical_array_of_fields(cls: type[Struct], data: st.DataObject) -> None:
    value = data.draw(ALL_TYPES[cls])
    encoded = value.encode()
    assert encoded == ref_pack(wire_tree(value))
    assert value.digest() == hashlib.sha256(encoded).digest()


@pytest.mark.parametrize("cls", TYPES, ids=ids)
def test_fully_populated_example_round_trips(cls: type[Struct]) -> None:
    value: Any = example_instances()[cls]
    assert type(value) is cls
    assert cls.decode(value.encode()) == value
    assert value.encode() == ref_pack(wire_tree(value))
