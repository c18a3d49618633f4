"""Errors the network layer raises to its caller (the node runtime)."""

from __future__ import annotations


class NetworkError(Exception):
    """Base class of every error ``node.p2p`` raises on purpose."""


class NetworkNotRunning(NetworkError, RuntimeError):
    """The network is not started yet, or is stopping/stopped."""


class ListenAddressInUse(NetworkError, OSError):
    """Another socket already listens on a configured address.

    py-libp2p 0.8.1 listens with SO_REUSEPORT, so without this check a second node on
    the same port would start "successfully" and the kernel would split inbound
    connections between the two processes.
    """


class PayloadTooLarge(NetworkError, ValueError):
    """A payload is over a configured size cap; nothing was sent."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} of {size} bytes exceeds the limit of {limit} bytes")
        self.what = what
        self.size = size
        self.limit = limit


class RequestError(NetworkError):
    """A request/response exchange failed. ``peer_id`` is the peer asked."""

    def __init__(self, peer_id: str, message: str) -> None:
        super().__init__(f"request to {peer_id}: {message}")
        self.peer_id = peer_id


class PeerUnavailable(RequestError):
    """No usable connection to the peer (not connected, blocked, banned, or dial failed)."""


class RequestTimeout(RequestError):
    """No complete response within the timeout (the stream was reset)."""


class ResponseTooLarge(RequestError):
    """The peer announced a response over our ``max_response_bytes`` (stream reset)."""


class ProtocolViolation(RequestError):
    """The peer broke the framing (empty/unknown status, stream died mid-response)."""


class RemoteError(RequestError):
    """The peer answered with an error status instead of a response.

    ``code`` is one of the ``STATUS_*`` names in :mod:`node.p2p.reqresp` (without the
    prefix, lower case): ``handler_error``, ``no_handler``, ``response_too_large``,
    ``request_too_large``, ``timeout``, ``busy``.
    """

    def __init__(self, peer_id: str, code: str, detail: str) -> None:
        super().__init__(peer_id, f"remote error {code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
