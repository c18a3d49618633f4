"""A tree of seeded PRNGs derived from one root seed.

Each consumer (the network, the fault schedule, the workload, every node) draws from
its own stream, so adding a draw in one place does not shift every other stream:
a scenario stays comparable across code changes that touch one part only.
"""

from __future__ import annotations

import hashlib
import random


class SeedTree:
    def __init__(self, seed: int, path: str = "root") -> None:
        self.seed = seed
        self.path = path

    def _derive(self, name: str) -> int:
        digest = hashlib.sha256(f"{self.seed}/{self.path}/{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def rng(self, name: str) -> random.Random:
        """An independent generator for `name` (same seed and name ⇒ same stream)."""
        return random.Random(self._derive(name))

    def child(self, name: str) -> SeedTree:
        return SeedTree(self.seed, f"{self.path}/{name}")
