"""Discrete-event scheduler in virtual time (integer milliseconds).

Events at the same instant run in the order they were scheduled (a sequence
number breaks ties), so a run is a pure function of its seed. Queue entries are
plain tuples ``(at_ms, seq, fn, args)``: the sequence number is unique, so heap
comparisons never reach the callable, and tuple comparison is the fastest the
interpreter has (this queue sees every message delivery of a run).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class Handle:
    __slots__ = ("_cancelled", "_seq")

    def __init__(self, seq: int, cancelled: set[int]) -> None:
        self._seq = seq
        self._cancelled = cancelled

    def cancel(self) -> None:
        self._cancelled.add(self._seq)


class Scheduler:
    def __init__(self, max_events: int = 50_000_000) -> None:
        self.now_ms = 0
        self._queue: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._cancelled: set[int] = set()
        self.events_run = 0
        self.max_events = max_events

    def at(self, at_ms: int, fn: Callable[..., None], *args: Any) -> Handle:
        if at_ms < self.now_ms:
            raise ValueError(f"cannot schedule in the past ({at_ms} < {self.now_ms})")
        seq = self._seq
        self._seq = seq + 1
        heapq.heappush(self._queue, (at_ms, seq, fn, args))
        return Handle(seq, self._cancelled)

    def after(self, delay_ms: int, fn: Callable[..., None], *args: Any) -> Handle:
        return self.at(self.now_ms + max(0, delay_ms), fn, *args)

    def pending(self) -> int:
        return len(self._queue)

    def run_until(self, end_ms: int, stop: Callable[[], bool] | None = None) -> None:
        """Run events up to and including `end_ms`; then time stands at `end_ms`."""
        queue, cancelled, pop = self._queue, self._cancelled, heapq.heappop
        while queue and queue[0][0] <= end_ms:
            at_ms, seq, fn, args = pop(queue)
            if cancelled and seq in cancelled:
                cancelled.discard(seq)
                continue
            self.now_ms = at_ms
            self.events_run += 1
            if self.events_run > self.max_events:
                raise RuntimeError(f"event budget of {self.max_events} exhausted at {self.now_ms} ms")
            fn(*args)
            if stop is not None and stop():
                return
        self.now_ms = max(self.now_ms, end_ms)
