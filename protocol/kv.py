"""The key-value view that the governance state machine reads and writes.

State lives behind four operations (get, put, delete, ordered prefix scan) so the
node can back it with LevelDB and the simulator with memory. A block is executed
against an `Overlay`: reads fall through to the committed store, writes stay in
the overlay, and `write_set()` hands the caller one sorted batch to apply
atomically (and to hash into the app hash).

Keys and values are bytes; keys order as unsigned bytes (LevelDB's default). An
overlay may also hold a record as a wire struct (`put_record`), encoded only when
someone reads its bytes: the sender of every tx is written two or three times per
block (nonce, fee, amount) and read back as the struct it was, so encoding each
write cost more than the writes themselves.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Protocol

from protocol.wire import Struct

# A write set: (key, value) pairs sorted by key; value None means delete.
WriteSet = list[tuple[bytes, bytes | None]]


def _raw(value: bytes | Struct | None) -> bytes | None:
    return value.encode() if isinstance(value, Struct) else value


class KVReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) whose key starts with `prefix`, in ascending key order."""
        ...


class KVStore(KVReader, Protocol):
    def apply(self, writes: WriteSet) -> None:
        """Apply a write set atomically."""
        ...


class MemoryKV:
    """A KVStore in memory: a dict plus a sorted key list for scans."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        i = bisect.bisect_left(self._keys, prefix)
        # Snapshot the slice so callers may write while iterating.
        keys = []
        while i < len(self._keys) and self._keys[i].startswith(prefix):
            keys.append(self._keys[i])
            i += 1
        for k in keys:
            yield k, self._data[k]

    def apply(self, writes: WriteSet) -> None:
        for key, value in writes:
            if value is None:
                if self._data.pop(key, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, key)]
            else:
                if key not in self._data:
                    bisect.insort(self._keys, key)
                self._data[key] = value

    def __len__(self) -> int:
        return len(self._data)


class Overlay:
    """Uncommitted writes over a reader. Reads see the writes; `write_set()` returns
    them sorted by key. Overlays nest (an overlay over an overlay) so a single
    transaction's writes can be discarded when it fails."""

    def __init__(self, base: KVReader) -> None:
        self.base = base
        self._writes: dict[bytes, bytes | Struct | None] = {}

    def get(self, key: bytes) -> bytes | None:
        return _raw(self.get_record(key))

    def get_record(self, key: bytes) -> bytes | Struct | None:
        """What `key` holds: bytes, or the struct a `put_record` left (not encoded)."""
        kv: KVReader = self
        while type(kv) is Overlay:  # iterative: a tx's overlay sits on the block's
            writes = kv._writes
            if key in writes:
                return writes[key]
            kv = kv.base
        return kv.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._writes[key] = value

    def put_record(self, key: bytes, record: Struct) -> None:
        """Write `record`, whose encoding is the value; the encoding is made on demand."""
        self._writes[key] = record

    def records(self) -> list[Struct]:
        """The structs written with `put_record` and still held as such."""
        return [v for v in self._writes.values() if isinstance(v, Struct)]

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        mine = sorted((k, _raw(v)) for k, v in self._writes.items() if k.startswith(prefix))
        base = iter(list(self.base.scan(prefix)))
        j = 0
        nxt = next(base, None)
        while nxt is not None or j < len(mine):
            if j < len(mine) and (nxt is None or mine[j][0] <= nxt[0]):
                key, value = mine[j]
                j += 1
                if nxt is not None and nxt[0] == key:
                    nxt = next(base, None)
                if value is not None:
                    yield key, value
            else:
                assert nxt is not None
                yield nxt
                nxt = next(base, None)

    def write_set(self) -> WriteSet:
        return sorted((k, _raw(v)) for k, v in self._writes.items())

    def merge_into_parent(self) -> None:
        """Push these writes into the base, which must itself be an Overlay."""
        if not isinstance(self.base, Overlay):
            raise TypeError("merge_into_parent needs an Overlay as base")
        self.base._writes.update(self._writes)
        self._writes.clear()

    def __len__(self) -> int:
        return len(self._writes)
