"""Consensus timeouts on the trio clock: the engine asks for "fire after d ms", this
turns each request into one input at its deadline, in deadline order."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

import trio


class Timers:
    def __init__(self, fire: Callable[[Any], None]) -> None:
        self._fire = fire
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._changed = trio.Event()

    def schedule(self, delay_ms: int, payload: Any) -> None:
        deadline = trio.current_time() + delay_ms / 1000
        heapq.heappush(self._heap, (deadline, next(self._seq), payload))
        self._changed.set()

    def clear(self) -> None:
        self._heap.clear()
        self._changed.set()

    def __len__(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        while True:
            self._changed = trio.Event()
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, payload = heapq.heappop(self._heap)
                self._fire(payload)
            deadline = self._heap[0][0] if self._heap else float("inf")
            with trio.move_on_at(deadline):
                await self._changed.wait()
