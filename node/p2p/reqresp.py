"""Request/response over libp2p streams (protocol ``/ekklesia/<chain_id>/sync/1``).

Wire format (both directions are sequences of frames on one stream)::

    frame    = uvarint(len(body)) || body
    request  = frame whose body is the caller's request bytes
    response = frame whose body is status (1 byte) || payload

``status`` 0 means ``payload`` is the handler's response; any other value is an error
whose payload is a short UTF-8 reason. A stream carries any number of request/response
pairs in strict alternation, so a client may keep it open and reuse it (that is what
this module does: a small per-peer pool of idle streams). Either side may close it when
idle; a request that finds its reused stream dead before any response byte arrived is
retried once on a fresh stream (requests are expected to be idempotent reads).

Limits: the client refuses to send a request over ``max_request_bytes`` and rejects a
response whose announced length is over ``max_response_bytes`` (+1 for the status byte)
without reading it; the server answers ``request_too_large`` to a request over its
limit and ``response_too_large`` instead of sending a handler result over its limit.
Per peer, the server answers ``busy`` (without running the handler) to requests over
its rate (a token bucket; staying over it costs the peer a paced ``rate_limited``
penalty) and to requests beyond ``max_handlers_per_peer`` running at once (no penalty).
The transport never interprets payloads.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
import trio
from libp2p.custom_types import TProtocol
from libp2p.io.exceptions import IncompleteReadError
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.utils.varint import encode_uvarint

from .errors import (
    PayloadTooLarge,
    PeerUnavailable,
    ProtocolViolation,
    RemoteError,
    RequestError,
    RequestTimeout,
    ResponseTooLarge,
)
from .ratelimit import UNLIMITED, Limit, PeerRateLimiter, Rate

if TYPE_CHECKING:
    from libp2p.abc import IHost, INetStream

RequestHandler = Callable[[str, bytes], Awaitable[bytes]]

STATUS_OK = 0
STATUS_HANDLER_ERROR = 1
STATUS_NO_HANDLER = 2
STATUS_RESPONSE_TOO_LARGE = 3
STATUS_REQUEST_TOO_LARGE = 4
STATUS_TIMEOUT = 5
STATUS_BUSY = 6
STATUS_NAMES = {
    STATUS_HANDLER_ERROR: "handler_error",
    STATUS_NO_HANDLER: "no_handler",
    STATUS_RESPONSE_TOO_LARGE: "response_too_large",
    STATUS_REQUEST_TOO_LARGE: "request_too_large",
    STATUS_TIMEOUT: "timeout",
    STATUS_BUSY: "busy",
}
_MAX_REASON = 200
_MAX_VARINT_BYTES = 10


def sync_protocol_id(chain_id: str) -> TProtocol:
    return TProtocol(f"/ekklesia/{chain_id}/sync/1")


class _FrameTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _CleanEOF(Exception):
    """The stream ended exactly at a frame boundary."""


async def read_frame(stream: Any, limit: int) -> bytes:
    """Read one varint-prefixed frame of at most ``limit`` body bytes.

    Raises ``_CleanEOF`` if the stream ends before the first byte, ``_FrameTooLarge``
    (without reading the body) if the announced size is over ``limit``, and
    ``IncompleteReadError`` if it ends mid-frame.
    """
    length = 0
    for i in range(_MAX_VARINT_BYTES):
        try:
            b = await stream.read(1)
        except StreamEOF:
            b = b""
        if not b:
            if i == 0:
                raise _CleanEOF()
            raise IncompleteReadError("stream ended inside a length prefix")
        length |= (b[0] & 0x7F) << (7 * i)
        if not b[0] & 0x80:
            break
    else:
        raise ProtocolViolation("?", "length prefix longer than 10 bytes")
    if length > limit:
        raise _FrameTooLarge(length)
    buf = bytearray()
    while len(buf) < length:
        try:
            chunk = await stream.read(length - len(buf))
        except StreamEOF:
            chunk = b""
        if not chunk:
            raise IncompleteReadError(f"stream ended after {len(buf)} of {length} bytes")
        buf += chunk
    return bytes(buf)


def encode_frame(body: bytes) -> bytes:
    return encode_uvarint(len(body)) + body


@dataclass
class ReqRespLimits:
    max_request_bytes: int = 1024 * 1024
    max_response_bytes: int = 16 * 1024 * 1024
    handler_timeout: float = 10.0  # server side: longest a handler may run
    max_concurrent_handlers: int = 32  # server side, all peers together
    # server side, one peer: an honest node has at most sync.parallel_requests (4) in flight
    max_handlers_per_peer: int = 8
    server_idle_timeout: float = 60.0  # server closes a stream idle this long
    pool_idle_timeout: float = 20.0  # client drops pooled streams idle this long
    pool_per_peer: int = 4
    reuse_streams: bool = True


@dataclass
class ReqRespStats:
    requests_sent: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    requests_timed_out: int = 0
    request_bytes_out: int = 0
    response_bytes_in: int = 0
    requests_served: int = 0
    requests_served_errors: int = 0
    requests_rate_limited: int = 0  # answered "busy": the peer was over its request rate
    requests_busy: int = 0  # answered "busy": the peer had max_handlers_per_peer running
    request_bytes_in: int = 0
    response_bytes_out: int = 0
    streams_opened: int = 0
    streams_reused: int = 0


class ReqResp:
    """Both sides of the sync protocol for one host. Created and driven by ``Network``."""

    def __init__(
        self,
        host: IHost,
        protocol: TProtocol,
        limits: ReqRespLimits,
        *,
        penalise: Callable[[str, str, float | None], None],
        may_talk: Callable[[str], bool],
        log: Any = None,
        rate: Rate = UNLIMITED,
        penalty_interval: float = 1.0,
        rate_limited_penalty: float = 10.0,
    ) -> None:
        self._host = host
        self.protocol = protocol
        self.limits = limits
        self._penalise = penalise
        self._may_talk = may_talk
        self._handler: RequestHandler | None = None
        self._limiter = trio.CapacityLimiter(limits.max_concurrent_handlers)
        self._rate = PeerRateLimiter({"requests": Limit(msgs=rate)}, penalty_interval=penalty_interval)
        self._active: dict[str, int] = {}  # handlers running (or replying) per peer
        self.rate_limited_penalty = rate_limited_penalty  # times the weight from penalty_due
        self._pool: dict[str, list[tuple[INetStream, float]]] = {}
        self._closing = False
        self.stats = ReqRespStats()
        self._log = log or structlog.get_logger("ekklesia.p2p.reqresp")

    def set_handler(self, handler: RequestHandler | None) -> None:
        self._handler = handler

    # ---------------------------------------------------------------- client side

    async def request(self, peer_id: str, data: bytes, timeout: float) -> bytes:
        data = bytes(data)
        if len(data) > self.limits.max_request_bytes:
            raise PayloadTooLarge("request", len(data), self.limits.max_request_bytes)
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        if self._closing:
            raise PeerUnavailable(peer_id, "network is stopping")
        if not self._may_talk(peer_id):
            raise PeerUnavailable(peer_id, "peer is blocked or banned")
        self.stats.requests_sent += 1
        log = self._log.bind(peer=peer_id)
        stream_box: list[INetStream | None] = [None]
        try:
            with trio.move_on_after(timeout) as scope:
                body = await self._exchange(peer_id, data, stream_box, log)
            if scope.cancelled_caught:
                await self._discard(stream_box[0])
                self.stats.requests_timed_out += 1
                self._penalise(peer_id, "request_timeout", None)
                raise RequestTimeout(peer_id, f"no response within {timeout:g}s")
        except RequestError:
            self.stats.requests_failed += 1
            raise
        except trio.Cancelled:
            await self._discard(stream_box[0])
            raise
        if not body:
            self.stats.requests_failed += 1
            self._penalise(peer_id, "bad_response", None)
            raise ProtocolViolation(peer_id, "empty response frame")
        status, payload = body[0], body[1:]
        if status == STATUS_OK:
            self.stats.requests_ok += 1
            return payload
        self.stats.requests_failed += 1
        name = STATUS_NAMES.get(status)
        if name is None:
            self._penalise(peer_id, "bad_response", None)
            raise ProtocolViolation(peer_id, f"unknown status {status}")
        raise RemoteError(peer_id, name, payload[:_MAX_REASON].decode("utf-8", "replace"))

    async def _exchange(self, peer_id: str, data: bytes, box: list[INetStream | None], log: Any) -> bytes:
        frame = encode_frame(data)
        for attempt in (0, 1):
            stream, reused = await self._checkout(peer_id, fresh=attempt > 0)
            box[0] = stream
            got_bytes = False
            try:
                await stream.write(frame)
                self.stats.request_bytes_out += len(data)
                body = await read_frame(stream, self.limits.max_response_bytes + 1)
                got_bytes = True
            except _FrameTooLarge as exc:
                await self._discard(stream)
                box[0] = None
                self._penalise(peer_id, "oversized_response", None)
                raise ResponseTooLarge(
                    peer_id,
                    f"response of {exc.size - 1} bytes over the limit of {self.limits.max_response_bytes}",
                ) from None
            except ProtocolViolation as exc:
                await self._discard(stream)
                box[0] = None
                self._penalise(peer_id, "bad_response", None)
                raise ProtocolViolation(peer_id, str(exc)) from None
            except Exception as exc:
                await self._discard(stream)
                box[0] = None
                if reused and not got_bytes and attempt == 0:
                    log.debug("reqresp.stale_stream_retry", error=repr(exc))
                    continue
                if isinstance(exc, IncompleteReadError):
                    raise ProtocolViolation(peer_id, "stream ended mid-response") from None
                if isinstance(exc, _CleanEOF):
                    raise ProtocolViolation(peer_id, "stream closed before a response") from None
                raise PeerUnavailable(peer_id, f"stream failed: {exc!r}") from None
            self.stats.response_bytes_in += len(body)
            if body[:1] == bytes([STATUS_REQUEST_TOO_LARGE]):
                await self._discard(stream)  # the server has closed its end
            else:
                self._checkin(peer_id, stream)
            box[0] = None
            return body
        raise AssertionError("unreachable")

    async def _checkout(self, peer_id: str, *, fresh: bool) -> tuple[INetStream, bool]:
        if self.limits.reuse_streams and not fresh:
            pool = self._pool.get(peer_id)
            now = trio.current_time()
            while pool:
                stream, since = pool.pop()
                if now - since < self.limits.pool_idle_timeout and not _is_closed(stream):
                    self.stats.streams_reused += 1
                    return stream, True
                await self._discard(stream, close=True)
        try:
            stream = await self._host.new_stream(ID.from_base58(peer_id), [self.protocol])
        except trio.Cancelled:
            raise
        except Exception as exc:
            raise PeerUnavailable(peer_id, f"cannot open a stream: {exc!r}") from None
        self.stats.streams_opened += 1
        return stream, False

    def _checkin(self, peer_id: str, stream: INetStream) -> None:
        if not self.limits.reuse_streams or self._closing:
            self._spawn_close(stream)
            return
        pool = self._pool.setdefault(peer_id, [])
        if len(pool) >= self.limits.pool_per_peer:
            self._spawn_close(stream)
            return
        pool.append((stream, trio.current_time()))

    def _spawn_close(self, stream: INetStream) -> None:
        # closing is a network round trip; do not make the caller wait for it
        trio.lowlevel.spawn_system_task(self._discard, stream, True)

    async def _discard(self, stream: INetStream | None, close: bool = False) -> None:
        if stream is None:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            try:
                if close:
                    await stream.close()
                else:
                    await stream.reset()
            except Exception:
                pass

    def drop_peer(self, peer_id: str) -> None:
        """Forget pooled streams to a peer (called on disconnect)."""
        self._pool.pop(peer_id, None)

    async def close(self) -> None:
        self._closing = True
        pools, self._pool = self._pool, {}
        for streams in pools.values():
            for stream, _ in streams:
                await self._discard(stream)

    def prune_limits(self) -> None:
        self._rate.prune(trio.current_time())

    def prune_pool(self) -> None:
        now = trio.current_time()
        for peer_id in list(self._pool):
            keep = []
            for stream, since in self._pool[peer_id]:
                if now - since < self.limits.pool_idle_timeout and not _is_closed(stream):
                    keep.append((stream, since))
                else:
                    self._spawn_close(stream)
            if keep:
                self._pool[peer_id] = keep
            else:
                del self._pool[peer_id]

    # ---------------------------------------------------------------- server side

    async def handle_stream(self, stream: INetStream) -> None:
        """The stream handler registered with the host. Never raises (but Cancelled)."""
        peer_id = str(stream.muxed_conn.peer_id)
        log = self._log.bind(peer=peer_id)
        try:
            await self._serve_stream(stream, peer_id, log)
        except Exception as exc:
            log.debug("reqresp.stream_failed", error=repr(exc))
            await self._discard(stream)

    async def _serve_stream(self, stream: INetStream, peer_id: str, log: Any) -> None:
        while True:
            if not self._may_talk(peer_id) or self._closing:
                await self._discard(stream)
                return
            with trio.move_on_after(self.limits.server_idle_timeout) as idle:
                try:
                    request = await read_frame(stream, self.limits.max_request_bytes)
                except _CleanEOF:
                    await self._discard(stream, close=True)
                    return
                except _FrameTooLarge as exc:
                    self._penalise(peer_id, "oversized_request", None)
                    log.info("reqresp.request_too_large", size=exc.size)
                    await self._reply(stream, STATUS_REQUEST_TOO_LARGE, b"request too large")
                    # close (FIN after the reply), not reset: a reset can overtake the
                    # reply and the client would only see "stream reset"
                    await self._discard(stream, close=True)
                    return
            if idle.cancelled_caught:
                await self._discard(stream, close=True)
                return
            self.stats.request_bytes_in += len(request)
            busy = self._busy(peer_id, log)
            if busy is not None:
                if not await self._reply(stream, STATUS_BUSY, busy):
                    await self._discard(stream)
                    return
                continue
            self._active[peer_id] = self._active.get(peer_id, 0) + 1
            try:
                status, payload = await self._run_handler(peer_id, request, log)
                self.stats.requests_served += 1
                if status != STATUS_OK:
                    self.stats.requests_served_errors += 1
                replied = await self._reply(stream, status, payload)
            finally:
                left = self._active.pop(peer_id) - 1
                if left:
                    self._active[peer_id] = left
            if not replied:
                await self._discard(stream)
                return

    def _busy(self, peer_id: str, log: Any) -> bytes | None:
        """Why a request must be answered "busy" instead of served (None: serve it)."""
        now = trio.current_time()
        if not self._rate.admit(peer_id, "requests", 0, now):
            self.stats.requests_rate_limited += 1
            if weight := self._rate.penalty_due(peer_id, "requests", now):
                log.info("reqresp.rate_limited", weight=round(weight, 1))
                self._penalise(peer_id, "rate_limited", weight * self.rate_limited_penalty)
            return b"rate limited"
        if self._active.get(peer_id, 0) >= self.limits.max_handlers_per_peer:
            self.stats.requests_busy += 1
            return b"too many requests at once"
        return None

    async def _run_handler(self, peer_id: str, request: bytes, log: Any) -> tuple[int, bytes]:
        handler = self._handler
        if handler is None:
            return STATUS_NO_HANDLER, b"no request handler"
        with trio.move_on_after(self.limits.handler_timeout) as scope:
            async with self._limiter:
                try:
                    response = await handler(peer_id, request)
                except trio.Cancelled:
                    raise
                except Exception as exc:
                    log.warning("reqresp.handler_raised", error=repr(exc))
                    log.debug("reqresp.handler_traceback", exc_info=True)
                    return STATUS_HANDLER_ERROR, _reason(type(exc).__name__)
        if scope.cancelled_caught:
            log.warning("reqresp.handler_timeout", timeout=self.limits.handler_timeout)
            return STATUS_TIMEOUT, b"handler timed out"
        if not isinstance(response, bytes | bytearray | memoryview):
            log.error("reqresp.handler_bad_return", type=type(response).__name__)
            return STATUS_HANDLER_ERROR, b"handler returned a non-bytes value"
        response = bytes(response)
        if len(response) > self.limits.max_response_bytes:
            log.warning(
                "reqresp.response_too_large",
                size=len(response),
                limit=self.limits.max_response_bytes,
            )
            return STATUS_RESPONSE_TOO_LARGE, _reason(f"{len(response)} > {self.limits.max_response_bytes}")
        return STATUS_OK, response

    async def _reply(self, stream: INetStream, status: int, payload: bytes) -> bool:
        try:
            with trio.fail_after(self.limits.handler_timeout):
                await stream.write(encode_frame(bytes([status]) + payload))
        except trio.Cancelled:
            raise
        except Exception:
            return False
        self.stats.response_bytes_out += len(payload)
        return True


def _reason(text: str) -> bytes:
    return text.encode("utf-8", "replace")[:_MAX_REASON]


def _is_closed(stream: Any) -> bool:
    try:
        closed = stream.is_closed  # a property on NetStream
        return bool(closed() if callable(closed) else closed)
    except Exception:
        return True
