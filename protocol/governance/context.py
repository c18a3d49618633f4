"""What a handler runs against: the overlay it writes to, the block's height and
time, the current tx (if any), the parameters, and the list its events go to."""

from __future__ import annotations

from typing import TypeVar

from protocol.crypto import VerifyCache
from protocol.errors import DecodeError, InvariantViolation
from protocol.governance import keys
from protocol.governance.params import Params
from protocol.kv import KVReader, Overlay
from protocol.types import Tx
from protocol.wire import Struct

S = TypeVar("S", bound=Struct)


EventValue = str | int | bytes


def _render(v: EventValue) -> str:
    return v.hex() if isinstance(v, bytes) else str(v)


class Event:
    """Something that happened, for observers. Not part of the state or the app hash.

    `attrs` are (name, text) pairs; bytes values read as hex. They are rendered on
    first read: a block's events are built for every tx, and most are never read
    (rendering them up front cost a lone validator ~9 % of its thread)."""

    __slots__ = ("_attrs", "_raw", "type")

    def __init__(self, type: str, raw: tuple[tuple[str, EventValue], ...] = ()) -> None:
        self.type = type
        self._raw = raw
        self._attrs: tuple[tuple[str, str], ...] | None = None

    @property
    def attrs(self) -> tuple[tuple[str, str], ...]:
        if self._attrs is None:
            self._attrs = tuple((k, _render(v)) for k, v in self._raw)
        return self._attrs

    def get(self, name: str) -> str | None:
        for k, v in self.attrs:
            if k == name:
                return v
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.type, self.attrs) == (other.type, other.attrs)

    def __hash__(self) -> int:
        return hash((self.type, self.attrs))

    def __repr__(self) -> str:
        return f"Event({self.type!r}, {self.attrs!r})"


_MEMO_LIMIT = 65_536
_MEMO_MAX_BYTES = 16 * 1024 * 1024  # tx bodies are memoised too, and come from anyone
_memo: dict[tuple[type, bytes], Struct] = {}
_memo_bytes = 0


def _memo_put(cls: type, raw: bytes, rec: Struct) -> None:
    global _memo_bytes
    if len(_memo) >= _MEMO_LIMIT or _memo_bytes + len(raw) > _MEMO_MAX_BYTES:
        _memo.clear()
        _memo_bytes = 0
    _memo[(cls, raw)] = rec
    _memo_bytes += len(raw)


def decode(cls: type[S], raw: bytes) -> S:
    """`cls.decode(raw)`, memoised: decoding is a pure function of the bytes, and
    records that do not change (an identity, a proposal while it is voted on) are
    read many times, as is a tx body (at admission, then in its block). Raises
    DecodeError like `cls.decode`."""
    hit = _memo.get((cls, raw))
    if hit is not None:
        return hit  # type: ignore[return-value]
    rec = cls.decode(raw)
    _memo_put(cls, raw, rec)
    return rec


def remember(raw: bytes, rec: Struct) -> None:
    """Record that `raw` decodes to `rec`. Only for structs made of plain ints,
    bytes, strs and None, for which decode(encode(rec)) is `rec` with the very same
    field types (an IntEnum field could hold a bare int and differ after decoding)."""
    _memo_put(type(rec), raw, rec)


def load(kv: KVReader, key: bytes, cls: type[S]) -> S | None:
    raw = kv.get(key)
    if raw is None:
        return None
    try:
        return decode(cls, raw)
    except DecodeError as exc:
        raise InvariantViolation(f"state record {key!r} is not a valid {cls.__name__}: {exc.reason}") from None


def need(kv: KVReader, key: bytes, cls: type[S]) -> S:
    """A record the state machine itself guarantees exists."""
    rec = load(kv, key, cls)
    if rec is None:
        raise InvariantViolation(f"state record {key!r} ({cls.__name__}) is missing")
    return rec


def save(kv: Overlay, key: bytes, rec: Struct) -> None:
    kv.put(key, rec.encode())


def load_u64(kv: KVReader, key: bytes) -> int:
    raw = kv.get(key)
    return 0 if raw is None else keys.read_u64(raw)


class Ctx:
    """One unit of execution: a tx, or one piece of end-of-block work."""

    __slots__ = (
        "_tx_hash",
        "cache",
        "chain_id",
        "events",
        "height",
        "kv",
        "params",
        "time_ms",
        "tx",
        "tx_index",
        "tx_sender_address",
    )

    def __init__(
        self,
        kv: Overlay,
        *,
        height: int,
        time_ms: int,
        chain_id: str,
        params: Params,
        cache: VerifyCache | None = None,
        tx: Tx | None = None,
        tx_hash: bytes | None = None,
        tx_index: int = -1,
        tx_sender_address: bytes = b"",
    ) -> None:
        self.kv = kv
        self.height = height
        self.time_ms = time_ms
        self.chain_id = chain_id
        self.params = params
        self.cache = cache
        self.tx = tx
        self._tx_hash = tx_hash
        self.tx_index = tx_index
        self.tx_sender_address = tx_sender_address
        self.events: list[Event] = []

    def child(self, kv: Overlay) -> Ctx:
        """The same unit of execution over a nested overlay, with its own event list
        (dropped with the overlay if the work fails)."""
        return Ctx(
            kv,
            height=self.height,
            time_ms=self.time_ms,
            chain_id=self.chain_id,
            params=self.params,
            cache=self.cache,
            tx=self.tx,
            tx_hash=self._tx_hash,
            tx_index=self.tx_index,
            tx_sender_address=self.tx_sender_address,
        )

    @property
    def tx_hash(self) -> bytes:
        """The current tx's hash (b"" outside a tx); computed on first use, as most
        kinds never need it."""
        if self._tx_hash is None:
            self._tx_hash = b"" if self.tx is None else self.tx.hash
        return self._tx_hash

    @property
    def sender(self) -> bytes:
        if self.tx is None:
            raise InvariantViolation("a tx handler ran without a tx")
        return self.tx.sender

    def emit(self, type: str, **attrs: EventValue) -> None:
        self.events.append(Event(type, tuple(attrs.items())))
