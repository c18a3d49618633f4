"""The governance state as the state machine sees it: a `KVReader` over the s/ keys."""

from __future__ import annotations

from collections.abc import Iterator

from node.storage.backend import Backend
from node.storage.layout import STATE


class StateView:
    """Reads committed state. Keys are the state machine's own (without the s/
    namespace); scans are in ascending key order. It reads the live store, so use it
    between commits (the node executes one block at a time)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def get(self, key: bytes) -> bytes | None:
        return self._backend.get(STATE + key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cut = len(STATE)
        for key, value in self._backend.iterate(STATE + prefix):
            yield key[cut:], value
