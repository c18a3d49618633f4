"""libp2p network layer of an ekklesia node: gossip topics, sync streams, peer management.

Public API (the node runtime is written against these names only)::

    Network, NetworkConfig, TopicKind, GossipMessage, Verdict, message_id, topic_name
    ReqRespLimits, ScoreParams, RateLimits, Limit, Rate, rate_limits_from, load_or_create_node_key, peer_id_of
    NetworkError, NetworkNotRunning, ListenAddressInUse, PayloadTooLarge, RequestError, PeerUnavailable,
    RequestTimeout, ResponseTooLarge, ProtocolViolation, RemoteError, NodeKeyError

See docs/network.md.
"""

from .config import DEFAULT_PENALTIES, NetworkConfig, TopicKind, rate_limits_from, topic_name
from .errors import (
    ListenAddressInUse,
    NetworkError,
    NetworkNotRunning,
    PayloadTooLarge,
    PeerUnavailable,
    ProtocolViolation,
    RemoteError,
    RequestError,
    RequestTimeout,
    ResponseTooLarge,
)
from .keys import NodeKeyError, load_or_create_node_key, peer_id_of
from .network import GossipMessage, GossipValidator, IncomingChannel, Network, Verdict, message_id
from .ratelimit import Limit, Rate, RateLimits
from .reqresp import ReqRespLimits, RequestHandler, sync_protocol_id
from .scores import ScoreParams

__all__ = [
    "DEFAULT_PENALTIES",
    "GossipMessage",
    "GossipValidator",
    "IncomingChannel",
    "Limit",
    "ListenAddressInUse",
    "Network",
    "NetworkConfig",
    "NetworkError",
    "NetworkNotRunning",
    "NodeKeyError",
    "PayloadTooLarge",
    "PeerUnavailable",
    "ProtocolViolation",
    "Rate",
    "RateLimits",
    "RemoteError",
    "ReqRespLimits",
    "RequestError",
    "RequestHandler",
    "RequestTimeout",
    "ResponseTooLarge",
    "ScoreParams",
    "TopicKind",
    "Verdict",
    "load_or_create_node_key",
    "message_id",
    "peer_id_of",
    "rate_limits_from",
    "sync_protocol_id",
    "topic_name",
]
