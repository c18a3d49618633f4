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

    def encode_part(self, value: Any) -> bytes:
        """The canonical bytes of one field value (see `Struct.ENCODE_BY_PARTS`)."""
        return codec.pack_tree(self.to_wire(value))


# Decoding passes this placeholder as the path of a field and, only when a field
# fails, puts the real path in its place: building "Block.txs[812].nonce" for every
# field of every tx cost more than checking it.
HERE = "\0"


def _relocated(exc: DecodeError, path: str) -> DecodeError:
    reason = exc.reason
    return DecodeError(path + reason[1:] if reason.startswith(HERE) else reason)


def _unencodable(what: str, value: Any) -> DecodeError:
    # Raised while encoding: a caller built a struct its peers would refuse to read.
    return DecodeError(f"cannot encode {type(value).__name__} {value!r:.60} as {what}")


class Int(Spec):
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def to_wire(self, value: Any) -> int:
        # IntEnum members are ints (result codes); bool is not a wire integer. Only the
        # codec's 64-bit range is checked here, as `codec.pack` did: tests and tools
        # build out-of-spec structs on purpose to see them refused by decoders.
        if not isinstance(value, int) or type(value) is bool or not codec.I64_MIN <= value <= codec.U64_MAX:
            raise _unencodable("64-bit integer", value)
        return value

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
    def to_wire(self, value: Any) -> bool:
        if type(value) is not bool:
            raise _unencodable("bool", value)
        return value

    def from_wire(self, value: Any, path: str) -> bool:
        if type(value) is not bool:
            raise DecodeError(f"{path}: expected bool, got {type(value).__name__}")
        return value


BOOL = Bool()


class Bytes(Spec):
    """Bytes of an exact `size`, or of at most `max` bytes."""

    def __init__(self, size: int | None = None, max: int = MAX_STR) -> None:
        self.size, self.max = size, max

    def to_wire(self, value: Any) -> bytes:
        if not isinstance(value, bytes):
            raise _unencodable("bytes", value)
        return value

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

    def to_wire(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _unencodable("str", value)
        return value

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

    def encode_part(self, value: Any) -> bytes:
        return b"\xc0" if value is None else self.inner.encode_part(value)

    def from_wire(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.from_wire(value, path)


class Seq(Spec):
    """An array of at most `max` items of one spec, held as a tuple."""

    def __init__(self, item: Spec, max: int) -> None:
        self.item, self.max = item, max

    def to_wire(self, value: Any) -> list[Any]:
        return [self.item.to_wire(v) for v in value]

    def encode_part(self, value: Any) -> bytes:
        if not isinstance(self.item, Nested):
            return super().encode_part(value)
        part = self.item.encode_part
        return codec.array_header(len(value)) + b"".join([part(v) for v in value])

    def from_wire(self, value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list:
            raise DecodeError(f"{path}: expected array, got {type(value).__name__}")
        if len(value) > self.max:
            raise DecodeError(f"{path}: {len(value)} items exceeds {self.max}")
        item = self.item
        out = []
        for v in value:
            try:
                out.append(item.from_wire(v, HERE))
            except DecodeError as exc:
                raise _relocated(exc, f"{path}[{len(out)}]") from None
        return tuple(out)


class Nested(Spec):
    def __init__(self, cls: type[Struct]) -> None:
        self.cls = cls

    def to_wire(self, value: Any) -> list[Any]:
        if not isinstance(value, self.cls):
            raise _unencodable(self.cls.__name__, value)
        return value.to_wire()

    def encode_part(self, value: Any) -> bytes:
        if not isinstance(value, self.cls):
            raise _unencodable(self.cls.__name__, value)
        return value.encode()

    def from_wire(self, value: Any, path: str) -> Struct:
        return self.cls.from_wire(value, path)


_FieldList = tuple[tuple[str, Spec], ...]


class Struct:
    """Base of every wire struct. Subclasses are ``@dataclass(frozen=True, slots=True)``."""

    # Encoding and digest are computed once per (immutable) instance: a tx is hashed
    # and measured many times on its way through mempool, gossip and blocks.
    __slots__ = ("_sig_ok_for", "_wire_bytes", "_wire_digest")
    _wire_bytes: bytes
    _wire_digest: bytes
    _sig_ok_for: str
    MAX_BYTES: ClassVar[int] = 64 * 1024
    # Encode field by field, reusing the nested structs' cached encodings (blocks,
    # batches), instead of packing one tree of the whole object.
    ENCODE_BY_PARTS: ClassVar[bool] = False
    # Keep the encoding of instances decoded inside a larger message (txs in a block).
    KEEP_ENCODING: ClassVar[bool] = False
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
        cls = type(self)
        if "to_wire" not in cls.__dict__:  # first use: install this class's own encoder
            cls.to_wire = _compile_to_wire(cls)  # type: ignore[method-assign]
            return cls.to_wire(self)
        return self._to_wire_checked()

    def _to_wire_checked(self) -> list[Any]:
        """Every field through its Spec: the reference that compiled encoders fall back
        on, and the one that raises the precise error."""
        return [spec.to_wire(getattr(self, name)) for name, spec in self.wire_fields()]

    @classmethod
    def from_wire(cls, value: Any, path: str = "") -> Self:
        if "from_wire" not in cls.__dict__:  # first use: install this class's own decoder
            cls.from_wire = classmethod(_compile_from_wire(cls))  # type: ignore[assignment]
            return cls.from_wire(value, path)
        return cls._from_wire_checked(value, path)

    @classmethod
    def _from_wire_checked(cls, value: Any, path: str = "") -> Self:
        """Every field through its Spec: the reference that compiled decoders fall back
        on, and the one that raises the precise error (with the field's full path)."""
        path = path or cls.__name__
        fields = cls.wire_fields()
        if type(value) is not list:
            raise DecodeError(f"{path}: expected array, got {type(value).__name__}")
        if len(value) != len(fields):
            raise DecodeError(f"{path}: expected {len(fields)} fields, got {len(value)}")
        args: list[Any] = []
        for name, spec in fields:
            try:
                args.append(spec.from_wire(value[len(args)], HERE))
            except DecodeError as exc:
                raise _relocated(exc, f"{path}.{name}") from None
        try:
            obj = cls(*args)  # wire fields are the init fields, in order
            if cls.KEEP_ENCODING:
                # The value tree is exactly what `to_wire` would build, so this is the
                # struct's canonical encoding, at a tenth of the cost of `encode()` later.
                object.__setattr__(obj, "_wire_bytes", codec.pack_tree(value))
            return obj
        except DecodeError:
            raise
        except (ValueError, TypeError) as exc:  # __post_init__ consistency checks
            raise DecodeError(f"{path}: {exc}") from None

    def encode(self) -> bytes:
        # getattr with a default: a miss (every new struct) without raising AttributeError,
        # which cost twice the lookup.
        cached: bytes | None = getattr(self, "_wire_bytes", None)
        if cached is not None:
            return cached
        if self.ENCODE_BY_PARTS:
            fields = self.wire_fields()
            parts = [codec.array_header(len(fields))]
            parts += [spec.encode_part(getattr(self, name)) for name, spec in fields]
            data = b"".join(parts)
        else:
            data = codec.pack_tree(self.to_wire())  # the Specs checked every leaf
        object.__setattr__(self, "_wire_bytes", data)
        return data

    @classmethod
    def decode(cls, data: bytes, max_size: int | None = None) -> Self:
        obj, raw = codec.unpack_with(data, max_size or cls.MAX_BYTES, cls.from_wire)
        object.__setattr__(obj, "_wire_bytes", raw)
        return obj

    def _verified(self, chain_id: str) -> bool:
        """This instance's signatures were found valid for `chain_id` (signed structs
        remember it: the same object is checked on admission, in a proposal, in a block)."""
        return getattr(self, "_sig_ok_for", None) == chain_id

    def _set_verified(self, chain_id: str) -> None:
        object.__setattr__(self, "_sig_ok_for", chain_id)

    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding."""
        cached: bytes | None = getattr(self, "_wire_digest", None)
        if cached is not None:
            return cached
        d = hashlib.sha256(self.encode()).digest()
        object.__setattr__(self, "_wire_digest", d)
        return d


def _ready(spec: Spec, v: str) -> str | None:
    """A Python expression, true when the value named `v` is already what
    `spec.to_wire` would return unchanged; None if the spec must always be called."""
    t = type(spec)
    if t is Int:
        return f"(type({v}) is int and I64_MIN <= {v} <= U64_MAX)"
    if t is Bool:
        return f"type({v}) is bool"
    if t is Bytes:
        return f"type({v}) is bytes"
    if t is Str:
        return f"type({v}) is str"
    if t is Optional:
        inner = _ready(spec.inner, v)  # type: ignore[attr-defined]
        return None if inner is None else f"({v} is None or {inner})"
    return None


def _compile_to_wire(cls: type[Struct]) -> Any:
    """`cls.to_wire` as straight-line code: a field whose value is plainly of its wire
    type (the usual case) goes into the list as it is; anything else (an IntEnum in an
    integer field, a bytes subclass, a value out of range...) sends the whole struct
    through `_to_wire_checked`, which converts or raises exactly as before. Encoding
    an account this way costs about half as much."""
    env: dict[str, Any] = {"cls": cls, "I64_MIN": codec.I64_MIN, "U64_MAX": codec.U64_MAX}
    lines = ["def to_wire(self):", "    if type(self) is not cls:", "        return Struct.to_wire(self)"]
    ready: list[str] = []
    items: list[str] = []
    for i, (name, spec) in enumerate(cls.wire_fields()):
        v = f"v{i}"
        lines.append(f"    {v} = self.{name}")
        test = _ready(spec, v)
        if test is None:
            env[f"s{i}"] = spec
            items.append(f"s{i}.to_wire({v})")
        else:
            ready.append(test)
            items.append(v)
    if ready:
        lines.append(f"    if not ({' and '.join(ready)}):")
        lines.append("        return self._to_wire_checked()")
    lines.append(f"    return [{', '.join(items)}]")
    env["Struct"] = Struct
    exec("\n".join(lines), env)  # code built from this class's own field specs only
    return env["to_wire"]


def _accepts(spec: Spec, v: str) -> str | None:
    """A Python expression, true when the wire value named `v` is one `spec.from_wire`
    returns unchanged; None if the spec must always be called."""
    t = type(spec)
    if t is Int:
        return f"(type({v}) is int and {spec.lo} <= {v} <= {spec.hi})"  # type: ignore[attr-defined]
    if t is Bool:
        return f"type({v}) is bool"
    if t is Bytes:
        size, most = spec.size, spec.max  # type: ignore[attr-defined]
        exact = "" if size is None else f" and len({v}) == {size}"
        return f"(type({v}) is bytes{exact} and len({v}) <= {most})"
    if t is Str:
        most = spec.max  # type: ignore[attr-defined]
        # A character is at most 4 UTF-8 bytes: most strings need no encoding to measure.
        return f"(type({v}) is str and (len({v}) * 4 <= {most} or len({v}.encode()) <= {most}))"
    if t is Optional:
        inner = _accepts(spec.inner, v)  # type: ignore[attr-defined]
        return None if inner is None else f"({v} is None or {inner})"
    return None


def _compile_from_wire(cls: type[Struct]) -> Any:
    """`cls.from_wire` as straight-line code: each field's value is checked in place
    (or by its Spec, for nested structs, sequences and enums), and on any doubt the
    whole value goes through `_from_wire_checked`, which accepts or refuses it exactly
    as before and names the failing field. Decoding a tx this way costs about half."""
    fields = cls.wire_fields()
    env: dict[str, Any] = {
        "cls": cls, "HERE": HERE, "DecodeError": DecodeError, "pack_tree": codec.pack_tree,
        "base": Struct.from_wire.__func__,  # type: ignore[attr-defined]
        "slow": cls._from_wire_checked, "setattr": object.__setattr__,
    }
    lines = [
        "def from_wire(klass, value, path=''):",
        "    if klass is not cls:",
        "        return base(klass, value, path)",
        f"    if type(value) is not list or len(value) != {len(fields)}:",
        "        return slow(value, path)",
    ]
    called: list[str] = []
    for i, (_, spec) in enumerate(fields):
        v = f"v{i}"
        test = _accepts(spec, v)
        if test is None:
            env[f"s{i}"] = spec
            called.append(f"        {v} = s{i}.from_wire(value[{i}], HERE)")
        else:
            lines.append(f"    {v} = value[{i}]")
            lines.append(f"    if not {test}:")
            lines.append("        return slow(value, path)")
    lines.append("    try:")
    lines += called
    lines.append(f"        obj = cls({', '.join(f'v{i}' for i in range(len(fields)))})")
    lines.append("    except (DecodeError, ValueError, TypeError):")
    lines.append("        return slow(value, path)")
    if cls.KEEP_ENCODING:
        lines.append("    setattr(obj, '_wire_bytes', pack_tree(value))")
    lines.append("    return obj")
    exec("\n".join(lines), env)  # code built from this class's own field specs only
    return env["from_wire"]


def struct_list(cls: type[Struct], max: int) -> Seq:
    return Seq(Nested(cls), max)

