"""Fan-out of node events (new blocks, tx results) to API subscribers.

Each subscriber gets its own bounded channel; a subscriber that does not keep up
loses events (counted) rather than slowing the node down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from node.api.contract import NodeEvent


class EventHub:
    def __init__(self, buffer: int = 256) -> None:
        self._buffer = buffer
        self._subscribers: set[trio.MemorySendChannel[NodeEvent]] = set()
        self.dropped = 0

    def publish(self, event: NodeEvent) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(send)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[trio.MemoryReceiveChannel[NodeEvent]]:
        send, receive = trio.open_memory_channel[NodeEvent](self._buffer)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()
            receive.close()

    def __len__(self) -> int:
        return len(self._subscribers)
