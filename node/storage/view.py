"""The governance state as the state machine sees it: a `KVReader` over the s/ keys."""

from __future__ import annotations

from collections.abc import Iterator

from node.storage.backend import Backend
from node.storage.layout import STATE
from protocol.kv import WriteSet

# Entries of the committed-state read cache: about 10 MB at this bound. Every mempool
# admission reads the chain's parameters and the sender's account, and every block
# reads them again; from LevelDB that cost ~4 % of a validator's CPU under load.
STATE_CACHE_ENTRIES = 65_536


class StateCache:
    """Committed state values by key (None: known absent), kept equal to the store
    by `NodeStore`, the only writer, which passes every committed write set to
    `applied`. Bounded: it starts over when full."""

    def __init__(self, limit: int = STATE_CACHE_ENTRIES) -> None:
        self.limit = limit
        self._values: dict[bytes, bytes | None] = {}

    def __contains__(self, key: bytes) -> bool:
        return key in self._values

    def __getitem__(self, key: bytes) -> bytes | None:
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def remember(self, key: bytes, value: bytes | None) -> None:
        if len(self._values) >= self.limit:
            self._values.clear()
        self._values[key] = value

    def applied(self, writes: WriteSet) -> None:
        """A write set is now committed: the blocks' keys are read again soon."""
        for key, value in writes:
            self.remember(key, value)

    def clear(self) -> None:
        self._values.clear()


class StateView:
    """Reads committed state. Keys are the state machine's own (without the s/
    namespace); scans are in ascending key order. It reads the live store, so use it
    between commits (the node executes one block at a time)."""

    def __init__(self, backend: Backend, cache: StateCache | None = None) -> None:
        self._backend = backend
        self._cache = cache

    def get(self, key: bytes) -> bytes | None:
        cache = self._cache
        if cache is None:
            return self._backend.get(STATE + key)
        if key in cache:
            return cache[key]
        value = self._backend.get(STATE + key)
        cache.remember(key, value)
        return value

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cut = len(STATE)
        for key, value in self._backend.iterate(STATE + prefix):
            yield key[cut:], value
