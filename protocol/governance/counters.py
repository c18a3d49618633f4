"""Sequential ids for proposals, unions and credentials (the first of each is 1)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated

from protocol.governance import keys
from protocol.governance.context import need, save
from protocol.kv import KVReader, Overlay
from protocol.wire import U64, Struct


class Counter(enum.IntEnum):
    PROPOSAL = 0
    UNION = 1
    CREDENTIAL = 2


@dataclass(frozen=True, slots=True)
class Counters(Struct):
    """The last id handed out of each kind (0: none yet)."""

    proposal: Annotated[int, U64]
    union: Annotated[int, U64]
    credential: Annotated[int, U64]


def next_id(kv: Overlay, which: Counter) -> int:
    cur = list(need(kv, keys.META_COUNTERS, Counters).to_wire())
    cur[which] += 1
    save(kv, keys.META_COUNTERS, Counters(*cur))
    return int(cur[which])


def last_id(kv: KVReader, which: Counter) -> int:
    return int(need(kv, keys.META_COUNTERS, Counters).to_wire()[which])
