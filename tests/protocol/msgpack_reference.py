"""An independent, spec-following encoder for ekklesia's canonical msgpack subset,
written from docs/wire-format.md §2 (not from `protocol.codec`), plus helpers that
produce every *non*-canonical way to write the same value.

Used to check that the codec's output is exactly the documented canonical form and
that the decoder refuses every other form.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any


def ref_pack(value: Any) -> bytes:
    """The canonical encoding: the shortest form of every integer and length."""
    if value is None:
        return b"\xc0"
    if value is False:
        return b"\xc2"
    if value is True:
        return b"\xc3"
    if isinstance(value, int):
        return _int_forms(value)[0]
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _str_header(len(data))[0] + data
    if isinstance(value, bytes):
        return _bin_header(len(value))[0] + value
    if isinstance(value, list | tuple):
        return _array_header(len(value))[0] + b"".join(ref_pack(v) for v in value)
    raise TypeError(f"{type(value).__name__} is outside the value model")


def _int_forms(n: int) -> list[bytes]:
    """All msgpack encodings of `n`, the canonical (shortest, unsigned for n ≥ 0) first."""
    forms: list[bytes] = []
    if 0 <= n <= 0x7F:
        forms.append(bytes([n]))
    if -32 <= n < 0:
        forms.append(struct.pack(">b", n))
    if n >= 0:
        for tag, fmt, hi in ((0xCC, ">B", 0xFF), (0xCD, ">H", 0xFFFF),
                             (0xCE, ">I", 0xFFFF_FFFF), (0xCF, ">Q", 2**64 - 1)):
            if n <= hi:
                forms.append(bytes([tag]) + struct.pack(fmt, n))
    for tag, fmt, bits in ((0xD0, ">b", 8), (0xD1, ">h", 16), (0xD2, ">i", 32), (0xD3, ">q", 64)):
        if -(2 ** (bits - 1)) <= n < 2 ** (bits - 1):
            forms.append(bytes([tag]) + struct.pack(fmt, n))
    if not forms:
        raise ValueError(f"{n} has no msgpack encoding")
    return forms


def _str_header(n: int) -> list[bytes]:
    forms = [bytes([0xA0 | n])] if n <= 31 else []
    if n <= 0xFF:
        forms.append(b"\xd9" + struct.pack(">B", n))
    if n <= 0xFFFF:
        forms.append(b"\xda" + struct.pack(">H", n))
    forms.append(b"\xdb" + struct.pack(">I", n))
    return forms


def _bin_header(n: int) -> list[bytes]:
    forms = [b"\xc4" + struct.pack(">B", n)] if n <= 0xFF else []
    if n <= 0xFFFF:
        forms.append(b"\xc5" + struct.pack(">H", n))
    forms.append(b"\xc6" + struct.pack(">I", n))
    return forms


def _array_header(n: int) -> list[bytes]:
    forms = [bytes([0x90 | n])] if n <= 15 else []
    if n <= 0xFFFF:
        forms.append(b"\xdc" + struct.pack(">H", n))
    forms.append(b"\xdd" + struct.pack(">I", n))
    return forms


def non_canonical_forms(value: Any) -> Iterator[bytes]:
    """Encodings of `value` that a lenient msgpack reader accepts but that differ from
    the canonical one: wider integers, longer length headers, at the top level."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        yield from _int_forms(value)[1:]
    elif isinstance(value, str):
        data = value.encode("utf-8")
        for header in _str_header(len(data))[1:]:
            yield header + data
    elif isinstance(value, bytes):
        for header in _bin_header(len(value))[1:]:
            yield header + value
    elif isinstance(value, list | tuple):
        body = b"".join(ref_pack(v) for v in value)
        for header in _array_header(len(value))[1:]:
            yield header + body
