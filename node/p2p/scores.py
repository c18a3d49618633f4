"""Peer penalties, bans and dial backoff: plain bookkeeping with the clock passed in.

Nothing here touches libp2p or trio, so it is tested with a fake clock. The network
layer asks it whether a peer may connect and acts on what ``penalise`` returns.

A score starts at 0, only penalties move it (down), and it recovers towards 0 with a
half-life, so an honest peer that once sent something odd is forgiven while a peer that
keeps misbehaving crosses ``ban_threshold`` and is banned for ``ban_duration`` seconds,
after which its score restarts at 0.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScoreParams:
    ban_threshold: float = -100.0
    ban_duration: float = 600.0
    half_life: float = 300.0  # seconds for a negative score to recover halfway to 0
    floor: float = -1000.0  # scores never go below this (bounds recovery time)


@dataclass
class _Entry:
    score: float = 0.0
    updated: float = 0.0
    banned_until: float | None = None
    reasons: dict[str, int] = field(default_factory=dict)


class PeerScores:
    def __init__(self, params: ScoreParams | None = None) -> None:
        self.params = params or ScoreParams()
        self._entries: dict[str, _Entry] = {}

    def score(self, peer_id: str, now: float) -> float:
        e = self._entries.get(peer_id)
        if e is None:
            return 0.0
        self._decay(e, now)
        return e.score

    def penalise(self, peer_id: str, reason: str, amount: float, now: float) -> bool:
        """Lower the peer's score by ``amount`` (>= 0). True if this call banned it."""
        if amount < 0 or not math.isfinite(amount):
            raise ValueError(f"penalty must be a finite non-negative number, got {amount}")
        e = self._entries.setdefault(peer_id, _Entry(updated=now))
        self._decay(e, now)
        e.score = max(self.params.floor, e.score - amount)
        e.reasons[reason] = e.reasons.get(reason, 0) + 1
        if self._banned(e, now):
            return False
        if e.score <= self.params.ban_threshold:
            e.banned_until = now + self.params.ban_duration
            return True
        return False

    def is_banned(self, peer_id: str, now: float) -> bool:
        e = self._entries.get(peer_id)
        return e is not None and self._banned(e, now)

    def banned_until(self, peer_id: str, now: float) -> float | None:
        e = self._entries.get(peer_id)
        if e is None or not self._banned(e, now):
            return None
        return e.banned_until

    def reasons(self, peer_id: str) -> dict[str, int]:
        e = self._entries.get(peer_id)
        return dict(e.reasons) if e else {}

    def snapshot(self, now: float) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for pid, e in self._entries.items():
            self._decay(e, now)
            out[pid] = {
                "score": round(e.score, 3),
                "banned": self._banned(e, now),
                "reasons": dict(e.reasons),
            }
        return out

    def forget_recovered(self, now: float) -> None:
        """Drop entries that are unbanned and back near 0 (bounds memory)."""
        for pid in [p for p, e in self._entries.items() if self._forgettable(e, now)]:
            del self._entries[pid]

    def _forgettable(self, e: _Entry, now: float) -> bool:
        self._decay(e, now)
        return not self._banned(e, now) and e.score > -0.5

    def _banned(self, e: _Entry, now: float) -> bool:
        if e.banned_until is None:
            return False
        if now >= e.banned_until:
            # cool-off served: start again from a clean slate
            e.banned_until = None
            e.score = 0.0
            e.updated = now
            return False
        return True

    def _decay(self, e: _Entry, now: float) -> None:
        dt = now - e.updated
        if dt > 0 and e.score < 0 and e.banned_until is None:
            e.score *= 0.5 ** (dt / self.params.half_life)
        e.updated = max(e.updated, now)


@dataclass
class Backoff:
    """Exponential dial backoff with jitter, per peer."""

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.2
    _failures: dict[str, int] = field(default_factory=dict)
    _next: dict[str, float] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    def ready(self, peer_id: str, now: float) -> bool:
        return now >= self._next.get(peer_id, 0.0)

    def next_attempt(self, peer_id: str) -> float:
        return self._next.get(peer_id, 0.0)

    def failed(self, peer_id: str, now: float) -> float:
        n = self._failures.get(peer_id, 0)
        self._failures[peer_id] = n + 1
        delay = float(min(self.cap, self.base * 2.0 ** min(n, 60)))
        delay *= 1.0 + self.jitter * (2 * self._rng.random() - 1)
        self._next[peer_id] = now + delay
        return delay

    def succeeded(self, peer_id: str) -> None:
        self.reset(peer_id)

    def reset(self, peer_id: str) -> None:
        self._failures.pop(peer_id, None)
        self._next.pop(peer_id, None)

    def failures(self, peer_id: str) -> int:
        return self._failures.get(peer_id, 0)
