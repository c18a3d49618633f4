"""Discrete-event scheduler in virtual time (integer milliseconds).

Events at the same instant run in the order they were scheduled (a sequence
number breaks ties), so a run is a pure function of its seed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(order=True, slots=True)
class _Item:
    at_ms: int
    seq: int
    fn: Callable[..., None] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Handle:
    __slots__ = ("_item",)

    def __init__(self, item: _Item) -> None:
        self._item = item

    def cancel(self) -> None:
        self._item.cancelled = True


class Scheduler:
    def __init__(self, max_events: int = 50_000_000) -> None:
        self.now_ms = 0
        self._queue: list[_Item] = []
        self._seq = 0
        self.events_run = 0
        self.max_events = max_events

    def at(self, at_ms: int, fn: Callable[..., None], *args: Any) -> Handle:
        if at_ms < self.now_ms:
            raise ValueError(f"cannot schedule in the past ({at_ms} < {self.now_ms})")
        item = _Item(at_ms, self._seq, fn, args)
        self._seq += 1
        heapq.heappush(self._queue, item)
        return Handle(item)

    def after(self, delay_ms: int, fn: Callable[..., None], *args: Any) -> Handle:
        return self.at(self.now_ms + max(0, delay_ms), fn, *args)

    def pending(self) -> int:
        return len(self._queue)

    def run_until(self, end_ms: int, stop: Callable[[], bool] | None = None) -> None:
        """Run events up to and including `end_ms`; then time stands at `end_ms`."""
        while self._queue and self._queue[0].at_ms <= end_ms:
            item = heapq.heappop(self._queue)
            if item.cancelled:
                continue
            self.now_ms = item.at_ms
            self.events_run += 1
            if self.events_run > self.max_events:
                raise RuntimeError(f"event budget of {self.max_events} exhausted at {self.now_ms} ms")
            item.fn(*item.args)
            if stop is not None and stop():
                return
        self.now_ms = max(self.now_ms, end_ms)
