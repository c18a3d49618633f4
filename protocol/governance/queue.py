"""End-of-block work: proposal activation, tallies and executions, residency
expiries, union notice periods.

Each item is a key ``q/ due(8) kind(1) id``: at the end of block H every item with
due <= H runs, in key order — (due height, kind, id). Work scheduled while the
queue runs with a due height <= H runs in the same block, after what sorts
before it; an item that an earlier one unscheduled does not run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from protocol.errors import InvariantViolation
from protocol.governance import keys
from protocol.governance.context import Ctx
from protocol.kv import Overlay

MAX_ITEMS_PER_BLOCK = 1_000_000  # a guard against a handler that reschedules itself forever


class QKind(enum.IntEnum):
    PROPOSAL = 1
    RESIDENCY = 2
    UNION = 3


def schedule(kv: Overlay, due: int, kind: QKind, item: bytes) -> None:
    kv.put(keys.queue(due, kind, item), b"")


def unschedule(kv: Overlay, due: int, kind: QKind, item: bytes) -> None:
    k = keys.queue(due, kind, item)
    if kv.get(k) is None:
        raise InvariantViolation(f"no queue entry {k!r} to remove")
    kv.delete(k)


Worker = Callable[[Ctx, int, bytes], None]  # (ctx, due height, item id)


def run_due(c: Ctx, workers: dict[QKind, Worker]) -> int:
    """Run every item due at or before the block height; returns how many ran."""
    done = 0
    while True:
        batch: list[bytes] = []
        for k, _ in c.kv.scan(keys.QUEUE):
            if keys.read_u64(k[2:10]) > c.height:
                break
            batch.append(k)
        if not batch:
            return done
        for k in batch:
            if c.kv.get(k) is None:  # an earlier item of the batch unscheduled it
                continue
            c.kv.delete(k)
            workers[QKind(k[10])](c, keys.read_u64(k[2:10]), k[11:])
            done += 1
            if done > MAX_ITEMS_PER_BLOCK:
                raise InvariantViolation("end-of-block queue does not drain")
