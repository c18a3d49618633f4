"""A seeded network model with gossip semantics.

A broadcast reaches every node that the sender can reach over links that are up,
directly or relayed by other nodes (as gossip does), after a latency drawn per hop.
Each delivery may be dropped or duplicated with the configured probabilities, and
jitter reorders messages. Links are directed, so one-way cuts are expressible, and
any partition shape — isolate one, majority/minority, even split, bridge node,
overlapping majorities — is a set of cut links.

Probabilities are integer parts per million: no floats reach a decision.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class LinkModel:
    base_ms: int = 10
    jitter_ms: int = 20
    distribution: str = "uniform"  # "uniform" or "exponential" (jitter is the mean extra delay)
    drop_ppm: int = 0
    duplicate_ppm: int = 0

    def sample(self, rng: random.Random) -> int:
        if self.jitter_ms <= 0:
            return self.base_ms
        if self.distribution == "exponential":
            return self.base_ms + min(int(rng.expovariate(1 / self.jitter_ms)), 20 * self.jitter_ms)
        return self.base_ms + rng.randrange(self.jitter_ms + 1)


@dataclass(slots=True)
class NetStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    unreachable: int = 0


@dataclass
class Network:
    nodes: Sequence[str]
    rng: random.Random
    default: LinkModel = field(default_factory=LinkModel)
    links: dict[tuple[str, str], LinkModel] = field(default_factory=dict)
    stats: NetStats = field(default_factory=NetStats)

    def __post_init__(self) -> None:
        self.nodes = sorted(self.nodes)
        self._down: set[tuple[str, str]] = set()
        self._hops: dict[str, dict[str, int]] = {}

    # ------------------------------------------------------------ topology

    def _changed(self) -> None:
        self._hops.clear()

    def cut(self, a: str, b: str, *, one_way: bool = False) -> None:
        """Stop messages from a to b (and b to a unless one_way)."""
        self._down.add((a, b))
        if not one_way:
            self._down.add((b, a))
        self._changed()

    def restore(self, a: str, b: str) -> None:
        self._down.discard((a, b))
        self._down.discard((b, a))
        self._changed()

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Replace the topology: cut every link between different groups; nodes in no
        group are isolated. Groups may overlap (a node in two groups bridges them)."""
        self._down.clear()
        member: dict[str, set[int]] = {n: set() for n in self.nodes}
        for gi, group in enumerate(groups):
            for n in group:
                member[n].add(gi)
        for a in self.nodes:
            for b in self.nodes:
                if a != b and not member[a] & member[b]:
                    self._down.add((a, b))
        self._changed()

    def isolate(self, node: str) -> None:
        self.partition([[node], [n for n in self.nodes if n != node]])

    def heal(self) -> None:
        self._down.clear()
        self._changed()

    @property
    def partitioned(self) -> bool:
        return bool(self._down)

    def link_up(self, a: str, b: str) -> bool:
        return (a, b) not in self._down

    def _hop_counts(self, src: str) -> dict[str, int]:
        cached = self._hops.get(src)
        if cached is None:
            cached = {src: 0}
            queue = deque([src])
            while queue:
                a = queue.popleft()
                for b in self.nodes:
                    if b not in cached and (a, b) not in self._down:
                        cached[b] = cached[a] + 1
                        queue.append(b)
            self._hops[src] = cached
        return cached

    # ------------------------------------------------------------ traffic

    def _model(self, a: str, b: str) -> LinkModel:
        return self.links.get((a, b), self.default)

    def _deliver(self, src: str, dst: str, hops: int) -> list[int]:
        model = self._model(src, dst)
        self.stats.sent += 1
        if model.drop_ppm and self.rng.randrange(PPM) < model.drop_ppm:
            self.stats.dropped += 1
            return []
        delay = sum(model.sample(self.rng) for _ in range(hops))
        out = [delay]
        if model.duplicate_ppm and self.rng.randrange(PPM) < model.duplicate_ppm:
            self.stats.duplicated += 1
            out.append(delay + model.sample(self.rng))
        self.stats.delivered += len(out)
        return out

    def broadcast(self, src: str, targets: Iterable[str] | None = None) -> list[tuple[str, int]]:
        """(destination, delay ms) for every delivery of one gossip message from src."""
        hops = self._hop_counts(src) if self._down else None
        out: list[tuple[str, int]] = []
        for dst in sorted(targets) if targets is not None else self.nodes:
            if dst == src:
                continue
            h = 1 if hops is None else hops.get(dst)
            if h is None:
                self.stats.unreachable += 1
                continue
            out.extend((dst, d) for d in self._deliver(src, dst, h))
        return out

    def unicast(self, src: str, dst: str) -> list[int]:
        """Delays of the deliveries of one direct message (request/response streams
        need a direct connection, so relaying does not apply)."""
        if not self.link_up(src, dst):
            self.stats.unreachable += 1
            return []
        return self._deliver(src, dst, 1)
