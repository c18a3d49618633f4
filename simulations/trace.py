"""The event trace of a simulation and its hash.

Every observable event (commit, round change, fault, delivery summary...) is
recorded as a flat tuple of ints, strings and bytes. The trace hash is a SHA-256
chain over the canonical msgpack encoding of each event, so two runs with the same
seed give the same hash in any process, whatever its PYTHONHASHSEED.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from protocol import codec

Event = tuple[Any, ...]


class Trace:
    def __init__(self, keep: bool = True) -> None:
        self._h = hashlib.sha256(b"ekklesia/sim-trace/v1")
        self.count = 0
        self.keep = keep
        self.events: list[Event] = []

    def record(self, t_ms: int, node: str, kind: str, *details: Any) -> None:
        event = (t_ms, node, kind, *details)
        self._h.update(codec.pack(list(event)))
        self.count += 1
        if self.keep:
            self.events.append(event)

    @property
    def hash(self) -> str:
        return self._h.hexdigest()

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def write_jsonl(self, path: Path) -> None:
        with path.open("w") as f:
            for t_ms, node, kind, *details in self.events:
                f.write(
                    json.dumps(
                        {"t_ms": t_ms, "node": node, "kind": kind, "details": [_jsonable(d) for d in details]},
                        sort_keys=True,
                    )
                )
                f.write("\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
