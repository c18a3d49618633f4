"""Typed structs on top of the canonical codec.

A wire struct is a frozen, slotted dataclass whose fields carry their wire type in
``Annotated`` metadata; the struct encodes as an array of its fields in
declaration order. Decoding checks the exact field count and each field's type
and bounds, and builds nested structs, so a decoded object is always a valid
instance — code after a decoder never sees a half-checked value.

    @dataclass(frozen=True, slots=True)
    class Point(Struct):
        x: Annotated[int, U64]
        label: Annotated[str, Str(16)]
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import typing
from typing import Any, ClassVar, Self

from protocol import codec
from protocol.errors import DecodeError
from protocol.limits import MAX_STR


class Spec:
    """The wire type of one field: how to turn a value into codec values and back."""

    def to_wire(self, value: Any) -> Any:
        return value

    def from_wire(self, value: Any, path: str) -> Any:
        raise NotImplementedError


class Int(Spec):
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def from_wire(self, value: Any, path: str) -> int:
        if type(value) is not int:
            raise DecodeError(f"{path}: expected integer, got {type(value).__name__}")
        if not self.lo <= value <= self.hi:
            raise DecodeError(f"{path}: {value} outside [{self.lo}, {self.hi}]")
        return value


U8 = Int(0, 2**8 - 1)
U32 = Int(0, 2**32 - 1)
U64 = Int(0, 2**64 - 1)
I64 = Int(-(2**63), 2**63 - 1)


class Bool(Spec):
    def from_wire(self, value: Any, path: str) -> bool:
        if type(value) is not bool:
            raise DecodeError(f"{path}: expected bool, got {type(value).__name__}")
        return value


BOOL = Bool()


class Bytes(Spec):
    """Bytes of an exact `size`, or of at most `max` bytes."""

    def __init__(self, size: int | None = None, max: int = MAX_STR) -> None:
        self.size, self.max = size, max

    def from_wire(self, value: Any, path: str) -> bytes:
        if type(value) is not bytes:
            raise DecodeError(f"{path}: expected bytes, got {type(value).__name__}")
        if self.size is not None and len(value) != self.size:
            raise DecodeError(f"{path}: expected {self.size} bytes, got {len(value)}")
        if len(value) > self.max:
            raise DecodeError(f"{path}: {len(value)} bytes exceeds {self.max}")
        return value


HASH = Bytes(32)
PUBKEY = Bytes(32)
SIGNATURE = Bytes(64)


class Str(Spec):
    """A UTF-8 string of at most `max` bytes (not characters)."""

    def __init__(self, max: int = MAX_STR) -> None:
        self.max = max

    def from_wire(self, value: Any, path: str) -> str:
        if type(value) is not str:
            raise DecodeError(f"{path}: expected str, got {type(value).__name__}")
        if len(value.encode()) > self.max:
            raise DecodeError(f"{path}: string longer than {self.max} bytes")
        return value


class Enum(Spec):
    def __init__(self, cls: type[enum.IntEnum]) -> None:
        self.cls = cls

    def to_wire(self, value: Any) -> int:
        return int(value)

    def from_wire(self, value: Any, path: str) -> enum.IntEnum:
        if type(value) is not int:
            raise DecodeError(f"{path}: expected integer, got {type(value).__name__}")
        try:
            return self.cls(value)
        except ValueError:
            raise DecodeError(f"{path}: {value} is not a valid {self.cls.__name__}") from None


class Optional(Spec):
    """``None`` (msgpack nil) or a value of the inner spec."""

    def __init__(self, inner: Spec) -> None:
        self.inner = inner

    def to_wire(self, value: Any) -> Any:
        return None if value is None else self.inner.to_wire(value)

    def from_wire(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.from_wire(value, path)


class Seq(Spec):
    """An array of at most `max` items of one spec, held as a tuple."""

    def __init__(self, item: Spec, max: int) -> None:
        self.item, self.max = item, max

    def to_wire(self, value: Any) -> list[Any]:
        return [self.item.to_wire(v) for v in value]

    def from_wire(self, value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list:
            raise DecodeError(f"{path}: expected array, got {type(value).__name__}")
        if len(value) > self.max:
            raise DecodeError(f"{path}: {len(value)} items exceeds {self.max}")
        return tuple(self.item.from_wire(v, f"{path}[{i}]") for i, v in enumerate(value))


class Nested(Spec):
    def __init__(self, cls: type[Struct]) -> None:
        self.cls = cls

    def to_wire(self, value: Any) -> list[Any]:
        return value.to_wire()  # type: ignore[no-any-return]

    def from_wire(self, value: Any, path: str) -> Struct:
        return self.cls.from_wire(value, path)


_FieldList = tuple[tuple[str, Spec], ...]


class Struct:
    """Base of every wire struct. Subclasses are ``@dataclass(frozen=True, slots=True)``."""

    __slots__ = ()
    MAX_BYTES: ClassVar[int] = 64 * 1024
    _fields_cache: ClassVar[dict[type, _FieldList]] = {}

    @classmethod
    def wire_fields(cls) -> _FieldList:
        cached = Struct._fields_cache.get(cls)
        if cached is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            out = []
            for f in dataclasses.fields(cls):  # type: ignore[arg-type]
                if not f.init:  # derived caches are not part of the wire form
                    continue
                metadata = getattr(hints[f.name], "__metadata__", ())
                specs = [m for m in metadata if isinstance(m, Spec)]
                if len(specs) != 1:
                    raise TypeError(f"{cls.__name__}.{f.name} needs exactly one wire Spec")
                out.append((f.name, specs[0]))
            cached = Struct._fields_cache[cls] = tuple(out)
        return cached

    def to_wire(self) -> list[Any]:
        return [spec.to_wire(getattr(self, name)) for name, spec in self.wire_fields()]

    @classmethod
    def from_wire(cls, value: Any, path: str = "") -> Self:
        path = path or cls.__name__
        fields = cls.wire_fields()
        if type(value) is not list:
            raise DecodeError(f"{path}: expected array, got {type(value).__name__}")
        if len(value) != len(fields):
            raise DecodeError(f"{path}: expected {len(fields)} fields, got {len(value)}")
        kwargs = {
            name: spec.from_wire(v, f"{path}.{name}")
            for (name, spec), v in zip(fields, value, strict=True)
        }
        try:
            return cls(**kwargs)
        except DecodeError:
            raise
        except (ValueError, TypeError) as exc:  # __post_init__ consistency checks
            raise DecodeError(f"{path}: {exc}") from None

    def encode(self) -> bytes:
        return codec.pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes, max_size: int | None = None) -> Self:
        return cls.from_wire(codec.unpack(data, max_size or cls.MAX_BYTES))

    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding."""
        return hashlib.sha256(self.encode()).digest()


def struct_list(cls: type[Struct], max: int) -> Seq:
    return Seq(Nested(cls), max)

