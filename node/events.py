"""Fan-out of node events (new blocks, tx results) to API subscribers.

Each subscriber gets its own bounded channel of the kinds it asked for; a subscriber
that does not keep up loses events (counted) rather than slowing the node down. Only
kinds somebody wants are worth building: a node committing 2,000 tx/s to a block
subscriber built 2,000 tx events a second, which also crowded the blocks out of its
256-event channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import trio

from node.api.contract import NodeEvent


class EventHub:
    def __init__(self, buffer: int = 256) -> None:
        self._buffer = buffer
        self._subscribers: dict[trio.MemorySendChannel[NodeEvent], frozenset[str]] = {}
        self.dropped = 0

    def wants(self, kind: str) -> bool:
        """Some subscriber takes events of `kind`."""
        return any(kind in kinds for kinds in self._subscribers.values())

    def publish(self, event: NodeEvent) -> None:
        for send, kinds in list(self._subscribers.items()):
            if event.kind not in kinds:
                continue
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.pop(send, None)

    @asynccontextmanager
    async def subscribe(self, kinds: Collection[str]) -> AsyncIterator[trio.MemoryReceiveChannel[NodeEvent]]:
        send, receive = trio.open_memory_channel[NodeEvent](self._buffer)
        self._subscribers[send] = frozenset(kinds)
        try:
            yield receive
        finally:
            self._subscribers.pop(send, None)
            send.close()
            receive.close()

    def __len__(self) -> int:
        return len(self._subscribers)
