"""Configuration of the network layer (the ``[p2p]`` section of a node's config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .ratelimit import Limit, Rate, RateLimits
from .reqresp import ReqRespLimits
from .scores import ScoreParams

# pubsub frames carry signature, key, sender record and topic besides the payload, and
# py-libp2p 0.8.1 silently drops any outbound RPC of 1 MiB or more: stay far below it.
HARD_GOSSIP_LIMIT = 1024 * 1024 - 16 * 1024


class TopicKind(StrEnum):
    TXS = "txs"  # batches of transactions (batched by the caller)
    CONSENSUS = "consensus"  # proposals, votes, evidence


def topic_name(chain_id: str, kind: TopicKind | str) -> str:
    return f"ekklesia/{chain_id}/{TopicKind(kind).value}"


DEFAULT_PENALTIES: dict[str, float] = {
    "invalid_gossip": 20.0,  # the node's validation callback said no
    "validator_error": 20.0,  # the callback raised (treated as a rejection)
    "oversized_gossip": 50.0,
    "bad_response": 20.0,  # broken framing or unknown status
    "oversized_response": 20.0,
    "oversized_request": 20.0,
    "request_timeout": 5.0,
    # over a per-peer rate limit (gossip of its own messages, or requests): charged at
    # most once per second per peer and kind, times 1-10 by how far over (ratelimit.py),
    # so sustained flooding is a ban in ~10 s (a little over) to ~2 s (10x over or more)
    "rate_limited": 10.0,
    "manual": 10.0,  # default for Network.penalise(reason=<unknown>) without amount
}


@dataclass
class NetworkConfig:
    chain_id: str
    listen_addrs: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    # addresses to advertise instead of the listen addresses (e.g. a public IP)
    announce_addrs: tuple[str, ...] | None = None
    # "/ip4/…/tcp/…/p2p/<peer id>": always kept connected (re-dialled with backoff)
    bootstrap_peers: tuple[str, ...] = ()
    # None: an ephemeral key (tests); otherwise created 0600 on first start
    node_key_path: Path | None = None

    # peer bounds: dial known non-bootstrap peers while below min_peers, refuse
    # inbound connections (except from bootstrap peers) at max_peers
    min_peers: int = 4
    max_peers: int = 50
    dial_timeout: float = 5.0
    reconnect_backoff_base: float = 0.5
    reconnect_backoff_max: float = 30.0
    # a connection that drops sooner than this counts as a failed dial for backoff
    # (a peer that accepts and then refuses us must not be re-dialled in a tight loop)
    stable_after: float = 5.0

    # gossip
    max_gossip_bytes: int = 512 * 1024
    incoming_buffer: int = 1024  # per topic; messages beyond it are dropped and counted
    # per topic, payload bytes waiting for the node (1,024 proposals would be 512 MiB)
    incoming_buffer_bytes: int = 64 * 1024 * 1024
    # Each message reaches a node about `mesh_degree` times (see node.config p2p.mesh_degree).
    mesh_degree: int = 3
    mesh_degree_low: int = 2
    mesh_degree_high: int = 4
    heartbeat_interval: int = 1  # seconds (py-libp2p's default of 120 s is unusable)
    seen_ttl: int = 120  # seconds a payload hash is remembered for dedup
    deliver_own_messages: bool = False  # echo our own publishes on incoming()
    # cache verified signed peer records (each pubsub RPC carries one, and py-libp2p
    # re-verifies it every time); see node.p2p.record_cache
    cache_signed_records: bool = True
    # credit a yamux stream's receive window once half of it is consumed, not after
    # every read (py-libp2p sent 3-4 frames back per pubsub message); node.p2p.yamux_credit
    yamux_credit_hysteresis: bool = True

    # request/response
    request_timeout: float = 10.0  # default for Network.request()
    reqresp: ReqRespLimits = field(default_factory=ReqRespLimits)

    # per-peer limits on gossip (per topic kind) and requests; see node.p2p.ratelimit
    rate_limits: RateLimits = field(default_factory=RateLimits)

    # penalties
    scores: ScoreParams = field(default_factory=ScoreParams)
    penalties: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PENALTIES))

    def validate(self) -> None:
        if not self.chain_id or "/" in self.chain_id:
            raise ValueError(f"chain_id must be non-empty and contain no '/': {self.chain_id!r}")
        if not 0 <= self.min_peers <= self.max_peers:
            raise ValueError("need 0 <= min_peers <= max_peers")
        if not 0 < self.max_gossip_bytes <= HARD_GOSSIP_LIMIT:
            raise ValueError(
                f"max_gossip_bytes must be in (0, {HARD_GOSSIP_LIMIT}]: py-libp2p silently "
                "drops pubsub frames of 1 MiB or more"
            )
        if self.incoming_buffer < 1:
            raise ValueError("incoming_buffer must be >= 1")
        if self.incoming_buffer_bytes < self.max_gossip_bytes:
            raise ValueError("incoming_buffer_bytes must hold at least one message of max_gossip_bytes")
        if not 0 <= self.mesh_degree_low <= self.mesh_degree <= self.mesh_degree_high:
            raise ValueError("need mesh_degree_low <= mesh_degree <= mesh_degree_high")
        if self.heartbeat_interval < 1:
            raise ValueError("heartbeat_interval must be >= 1 s (py-libp2p takes an int)")
        if not self.listen_addrs:
            raise ValueError("listen_addrs is empty")
        if problems := self.rate_limits.problems(self.max_gossip_bytes):
            raise ValueError("; ".join(problems))


def rate_limits_from(p2p: Any) -> RateLimits:
    """`RateLimits` from the ``[p2p]`` config section (node.config.P2PSection; 0 = no limit)."""
    burst = p2p.peer_burst_s

    def gossip(msgs: int, nbytes: int) -> Limit:
        return Limit(Rate.over(msgs, burst), Rate.over(nbytes, burst))

    return RateLimits(
        txs=gossip(p2p.peer_txs_msgs_per_s, p2p.peer_txs_bytes_per_s),
        consensus=gossip(p2p.peer_consensus_msgs_per_s, p2p.peer_consensus_bytes_per_s),
        requests=Rate.over(p2p.peer_requests_per_s, burst),
    )
