"""Helpers that take a struct's wire tree apart: an independent flattening of a struct
into its documented array form, every field position with its wire type, and values
that the wire type must refuse."""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Iterator
from typing import Any

from protocol import wire
from protocol.wire import Spec, Struct

Path = tuple[int, ...]
I64_MIN, U64_MAX = -(2**63), 2**64 - 1


def wire_tree(value: Any) -> Any:
    """The documented array form of a struct, built from the dataclass fields (not from
    `Struct.to_wire`): fields in declaration order, tuples as arrays, enums as ints."""
    if isinstance(value, Struct):
        return [wire_tree(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init]  # type: ignore[arg-type]
    if isinstance(value, tuple):
        return [wire_tree(v) for v in value]
    if isinstance(value, enum.IntEnum):
        return int(value)
    return value


def field_positions(cls: type[Struct], tree: list[Any], path: Path = ()) -> Iterator[tuple[Path, Spec]]:
    """Every field (and every sequence item) inside `tree`, with its wire spec."""
    for i, (_, spec) in enumerate(cls.wire_fields()):
        yield from _positions(spec, tree[i], (*path, i))


def _positions(spec: Spec, value: Any, path: Path) -> Iterator[tuple[Path, Spec]]:
    yield path, spec
    yield from _inside(spec, value, path)


def _inside(spec: Spec, value: Any, path: Path) -> Iterator[tuple[Path, Spec]]:
    if isinstance(spec, wire.Optional):
        if value is not None:
            yield from _inside(spec.inner, value, path)
    elif isinstance(spec, wire.Nested):
        yield from field_positions(spec.cls, value, path)
    elif isinstance(spec, wire.Seq):
        for j, item in enumerate(value):
            yield from _positions(spec.item, item, (*path, j))


def struct_positions(cls: type[Struct], tree: list[Any]) -> Iterator[tuple[Path, type[Struct]]]:
    """The root and every nested struct inside `tree`, with its class."""
    yield (), cls
    for path, spec in field_positions(cls, tree):
        inner = spec.inner if isinstance(spec, wire.Optional) else spec
        if isinstance(inner, wire.Nested) and get(tree, path) is not None:
            yield path, inner.cls


def get(tree: Any, path: Path) -> Any:
    for i in path:
        tree = tree[i]
    return tree


def replaced(tree: Any, path: Path, new: Any) -> Any:
    out = copy.deepcopy(tree)
    if not path:
        return new
    get(out, path[:-1])[path[-1]] = new
    return out


def wrong_values(spec: Spec) -> list[Any]:
    """Values of the msgpack model that a field of wire type `spec` must refuse."""
    if isinstance(spec, wire.Optional):
        return [v for v in wrong_values(spec.inner) if v is not None]
    if isinstance(spec, wire.Enum):
        members = sorted(int(m) for m in spec.cls)
        return [members[0] - 1, members[-1] + 1, True, str(members[0]), None, b"\x01", []]
    if isinstance(spec, wire.Int):
        out: list[Any] = [True, False, str(spec.lo), spec.lo.to_bytes(8, "big", signed=True),
                          None, [], [spec.lo]]
        if spec.lo - 1 >= I64_MIN:
            out.append(spec.lo - 1)
        if spec.hi + 1 <= U64_MAX:
            out.append(spec.hi + 1)
        return out
    if isinstance(spec, wire.Bool):
        return [0, 1, None, "true", b"\x01", []]
    if isinstance(spec, wire.Bytes):
        n = spec.size if spec.size is not None else 3
        out = ["a" * n, n, None, [], True, [b"\x00" * n]]  # str where bytes are expected
        if spec.size is not None:
            out += [b"\x00" * (spec.size - 1), b"\x00" * (spec.size + 1), b""]
        else:
            out.append(b"\x00" * (spec.max + 1))
        return out
    if isinstance(spec, wire.Str):
        return [b"abc", 0, None, [], False, ["abc"], "x" * (spec.max + 1),
                "é" * (spec.max // 2 + 1)]  # over the limit in bytes, not in characters
    if isinstance(spec, wire.Seq):
        return [None, 0, b"", "", True, [None]]
    if isinstance(spec, wire.Nested):
        return [None, 0, b"", "x", True, [None] * len(spec.cls.wire_fields())]
    raise AssertionError(f"unknown spec {spec!r}")
