"""Per-peer rate limits: token buckets, with the clock passed in.

Nothing here touches libp2p or trio, so it is tested with plain numbers. The network
layer asks `PeerRateLimiter.admit` before it spends anything on a message from a peer
(signature check, decoding, the node's validation callback, forwarding) or on a request,
and drops what is over the limit; `penalty_due` paces the penalty to one per peer and
kind per `penalty_interval`, weighted by how far over its rate the peer is, so a peer
that stays over its limit is banned (in ~10 s when a little over, ~2 s when far over)
while a short excess costs it little (its score recovers; see scores.py).

A bucket holds at most `burst` tokens and gains `per_s` per second; a message takes
one token from its message bucket and ``len(data)`` from its byte bucket, both or
neither. An idle peer's buckets are full, which is also what a peer never seen has,
so `prune` forgets them without changing any decision: reconnecting (or waiting to
be forgotten) gains a peer nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_s`` units per second on average, up to ``burst`` at once. ``per_s == 0``: no limit."""

    per_s: float
    burst: float

    @property
    def unlimited(self) -> bool:
        return self.per_s == 0

    @classmethod
    def over(cls, per_s: float, seconds: float) -> Rate:
        """A rate whose burst is ``seconds`` worth of it."""
        return cls(per_s, per_s * seconds)

    def problem(self) -> str | None:
        if not (math.isfinite(self.per_s) and math.isfinite(self.burst)) or self.per_s < 0 or self.burst < 0:
            return f"rate and burst must be finite and >= 0, got {self.per_s}/s burst {self.burst}"
        if self.per_s > 0 and self.burst < 1:
            return f"a limited rate needs a burst of at least 1, got {self.burst}"
        return None


UNLIMITED = Rate(0, 0)


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit on one kind of traffic from one peer: messages and bytes per second."""

    msgs: Rate = UNLIMITED
    bytes: Rate = UNLIMITED


class TokenBucket:
    __slots__ = ("burst", "per_s", "tokens", "updated")

    def __init__(self, rate: Rate, now: float) -> None:
        self.per_s = float(rate.per_s)
        self.burst = float(rate.burst)
        self.tokens = self.burst
        self.updated = now

    def refill(self, now: float) -> float:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_s)
            self.updated = now
        return self.tokens

    def full(self, now: float) -> bool:
        return self.refill(now) >= self.burst


@dataclass(slots=True)
class _PeerKind:
    msgs: TokenBucket | None
    bytes: TokenBucket | None
    last_penalty: float = -math.inf
    over: int = 0  # messages refused since the last penalty
    over_bytes: int = 0  # and their bytes


MAX_PENALTY_WEIGHT = 10.0

# The defaults, also those of node.config.P2PSection (a test checks they agree).
DEFAULT_GOSSIP_MSGS_PER_S = 200
DEFAULT_TXS_BYTES_PER_S = 1024 * 1024
DEFAULT_CONSENSUS_BYTES_PER_S = 4 * 1024 * 1024
DEFAULT_REQUESTS_PER_S = 200
DEFAULT_BURST_S = 5


def _gossip_limit(bytes_per_s: int) -> Limit:
    return Limit(Rate.over(DEFAULT_GOSSIP_MSGS_PER_S, DEFAULT_BURST_S), Rate.over(bytes_per_s, DEFAULT_BURST_S))


def _txs_limit() -> Limit:
    return _gossip_limit(DEFAULT_TXS_BYTES_PER_S)


def _consensus_limit() -> Limit:
    return _gossip_limit(DEFAULT_CONSENSUS_BYTES_PER_S)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits of a `Network`: gossip per topic kind, requests, penalty pacing.

    Defaults are sized for honest traffic with a wide margin (docs/deploy.md, "Per-peer
    limits"): in a 4-validator testnet at 2,000 tx/s a peer forwards well under 100
    gossip messages and ~1 MB per second per topic, and a syncing node sends fewer than
    ~50 requests per second. Bursts hold ``DEFAULT_BURST_S`` seconds of each rate.
    """

    txs: Limit = field(default_factory=_txs_limit)
    consensus: Limit = field(default_factory=_consensus_limit)
    requests: Rate = field(default_factory=lambda: Rate.over(DEFAULT_REQUESTS_PER_S, DEFAULT_BURST_S))
    penalty_interval: float = 1.0  # at most one "rate_limited" penalty per peer and kind per interval

    def problems(self, max_message_bytes: int) -> list[str]:
        found = []
        for name, limit in (("txs", self.txs), ("consensus", self.consensus)):
            for unit, rate in (("msgs", limit.msgs), ("bytes", limit.bytes)):
                if problem := rate.problem():
                    found.append(f"rate_limits.{name}.{unit}: {problem}")
            if not limit.bytes.unlimited and limit.bytes.burst < max_message_bytes:
                found.append(
                    f"rate_limits.{name}.bytes: a burst of {limit.bytes.burst:g} bytes is below the largest "
                    f"gossip message ({max_message_bytes}), which could then never pass"
                )
        if problem := self.requests.problem():
            found.append(f"rate_limits.requests: {problem}")
        if not (self.penalty_interval > 0 and math.isfinite(self.penalty_interval)):
            found.append("rate_limits.penalty_interval must be > 0")
        return found


class PeerRateLimiter:
    """Token buckets per (peer, kind). Kinds are the keys of ``limits``."""

    def __init__(self, limits: Mapping[str, Limit], *, penalty_interval: float = 1.0) -> None:
        self._limits = dict(limits)
        self._penalty_interval = penalty_interval
        self._state: dict[tuple[str, str], _PeerKind] = {}

    def admit(self, peer: str, kind: str, size: int, now: float) -> bool:
        """Take one message of ``size`` bytes from the peer's buckets for ``kind``.

        False (nothing taken) if either bucket lacks the tokens: drop the message.
        """
        limit = self._limits.get(kind)
        if limit is None or (limit.msgs.unlimited and limit.bytes.unlimited):
            return True
        key = (peer, kind)
        st = self._state.get(key)
        if st is None:
            st = self._state[key] = _PeerKind(
                None if limit.msgs.unlimited else TokenBucket(limit.msgs, now),
                None if limit.bytes.unlimited else TokenBucket(limit.bytes, now),
            )
        if (st.msgs is not None and st.msgs.refill(now) < 1) or (
            st.bytes is not None and st.bytes.refill(now) < size
        ):
            st.over += 1
            st.over_bytes += size
            return False
        if st.msgs is not None:
            st.msgs.tokens -= 1
        if st.bytes is not None:
            st.bytes.tokens -= size
        return True

    def penalty_due(self, peer: str, kind: str, now: float) -> float:
        """After a refused message: 0 if no penalty is due yet (at most one per
        ``penalty_interval``), else the penalty's weight. The first one weighs 1; later
        ones weigh how many times its rate the peer was refused since the previous
        penalty (messages or bytes per second over the limit's rate, whichever is more),
        between 1 and ``MAX_PENALTY_WEIGHT``: a peer a little over its limit is banned
        after ~10 penalties, one sending ten times its rate or more after ~2."""
        st = self._state.get((peer, kind))
        if st is None or now - st.last_penalty < self._penalty_interval:
            return 0.0
        elapsed, st.last_penalty = now - st.last_penalty, now
        refused, refused_bytes, st.over, st.over_bytes = st.over, st.over_bytes, 0, 0
        if not math.isfinite(elapsed):
            return 1.0
        limit = self._limits[kind]
        ratio = 0.0
        if not limit.msgs.unlimited:
            ratio = refused / elapsed / limit.msgs.per_s
        if not limit.bytes.unlimited:
            ratio = max(ratio, refused_bytes / elapsed / limit.bytes.per_s)
        return min(MAX_PENALTY_WEIGHT, max(1.0, ratio))

    def prune(self, now: float) -> int:
        """Forget peers whose buckets are all full again (as if never seen). Returns how many."""
        gone = [
            k
            for k, st in self._state.items()
            if (st.msgs is None or st.msgs.full(now))
            and (st.bytes is None or st.bytes.full(now))
            and now - st.last_penalty >= self._penalty_interval
        ]
        for k in gone:
            del self._state[k]
        return len(gone)

    def tracked(self) -> int:
        return len(self._state)
