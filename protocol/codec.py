"""Canonical msgpack: the one byte representation of every wire and storage value.

The canonical form is what `msgpack` produces with bin/str distinction on and the
smallest encoding of every integer and length. Values are built only from
``None``, ``bool``, ``int`` (−2^63 … 2^64−1), ``bytes``, ``str`` and arrays.
There are no maps, floats or extension types: a struct is a positional array, so
"field order" and "field count" are the whole schema.

Decoding is strict. It checks the size first, then lets msgpack parse with length
limits, rejects trailing bytes, floats, maps, ext types and excessive depth, and
finally re-encodes: input that does not equal the re-encoding (a non-minimal
integer, a str8 where a fixstr fits, ...) is rejected. Every failure raises
`DecodeError` with a reason and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import msgpack

from protocol.errors import DecodeError
from protocol.limits import MAX_DEPTH

Value = None | bool | int | bytes | str | list[Any] | tuple[Any, ...]

I64_MIN = -(2**63)  # the integer range of the model: msgpack's int64 and uint64
U64_MAX = 2**64 - 1

T = TypeVar("T")


# msgpack.packb builds a Packer with a 256 KiB buffer for every call; in a busy node
# that allocation (and glibc giving the memory back) cost ~2 us per packed struct,
# five times the packing itself. A Packer per call with a small buffer (grown as
# needed) stays cheap and shares nothing between threads.
_PACK_BUFFER = 512


def _packb(value: Any) -> bytes:
    return msgpack.Packer(use_bin_type=True, buf_size=_PACK_BUFFER).pack(value)  # type: ignore[no-any-return]


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise DecodeError(f"extension type {code} is not allowed")


def pack(value: Value) -> bytes:
    """Encode a value canonically. Raises `DecodeError` for values outside the model
    (so that a caller never produces bytes it would refuse to read back)."""
    _check_value(value, 0, encode=True)
    try:
        return _packb(value)
    except UnicodeEncodeError:  # a str holding lone surrogates has no UTF-8 form
        raise DecodeError("string is not valid UTF-8") from None


def pack_tree(value: Value) -> bytes:
    """Encode a tree built by the typed struct layer, whose `Spec`s already checked
    every leaf (`wire.Struct.encode`): the generic walk of `pack` would repeat it."""
    try:
        return _packb(value)
    except UnicodeEncodeError:
        raise DecodeError("string is not valid UTF-8") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"cannot encode: {exc}") from None


def unpack(data: bytes, max_size: int) -> Any:
    """Decode canonical bytes of at most `max_size` bytes into a value tree (lists)."""
    return unpack_with(data, max_size, _checked_tree)[0]


def unpack_with(data: bytes, max_size: int, schema: Callable[[Any], T]) -> tuple[T, bytes]:
    """Decode with `schema` in place of the generic walk of `unpack`: parse, let
    `schema` check the value tree and build its result, then require that the input
    was the canonical encoding. `schema` must type-check every leaf (which also bounds
    the depth), as `wire.Struct.from_wire` does. Returns its result and the input as
    bytes."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    value = unpack_unchecked(data, max_size)
    out = schema(value)
    require_canonical(value, data)
    return out, data


def _checked_tree(value: Any) -> Any:
    _check_value(value, 0, encode=False)
    return value


def unpack_unchecked(data: bytes, max_size: int) -> Any:
    """Parse with the size and length limits only (see `unpack_with`)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {max_size}")
    if not data:
        raise DecodeError("empty input")
    # No string, byte string or array can be longer than the input that holds it;
    # bounding lengths by the input (not by `max_size`) keeps msgpack from
    # preallocating a huge array for a few bytes that merely claim one.
    limit = len(data)
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=limit,
            max_map_len=0,
            max_ext_len=0,
            ext_hook=_reject_ext,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after the value") from None
    except UnicodeDecodeError:
        raise DecodeError("string is not valid UTF-8") from None
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise DecodeError(f"malformed msgpack: {type(exc).__name__}: {exc}") from None


def require_canonical(value: Any, data: bytes) -> None:
    """`data` is the one canonical encoding of `value` (minimal ints and lengths)."""
    try:
        again = _packb(value)
    except (TypeError, ValueError, OverflowError) as exc:  # floats pass; depth is the caller's check
        raise DecodeError(f"cannot re-encode: {exc}") from None
    if again != data:
        raise DecodeError("non-canonical encoding")


def array_header(n: int) -> bytes:
    """The msgpack array header `packb` writes for `n` items (fixarray, array16, array32)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _check_value(value: Any, depth: int, *, encode: bool) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | bytes | str):
        return
    if isinstance(value, int):
        if not I64_MIN <= value <= U64_MAX:
            raise DecodeError("integer out of the 64-bit range")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_value(item, depth + 1, encode=encode)
        return
    if isinstance(value, float):
        raise DecodeError("floats are not allowed")
    if isinstance(value, dict):
        raise DecodeError("maps are not allowed")
    raise DecodeError(f"type {type(value).__name__} cannot be encoded")
