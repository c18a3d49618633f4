"""A lean HTTP/1.1 client for the load generator: one keep-alive connection, one
request at a time, h11 over a trio socket.

The generator shares the machine with the validators it measures, so every CPU
millisecond it spends is taken from them. httpx costs ~1 ms of CPU per request
(URL and header models, the connection pool, auth and redirect layers); the
submit streams make ~80 requests/s at any rate, which made the generator 11–13 %
of a 2-core machine. This client sends the same bytes for a fraction of that.
It is not a general client: no redirects, no proxies, no TLS, no retries — a
request that fails is reported to the caller, which counts it (a silent retry
could submit a batch twice).
"""

from __future__ import annotations

import math
from types import TracebackType
from urllib.parse import urlsplit

import h11
import trio

READ_BYTES = 256 * 1024


class HttpError(Exception):
    """The request did not complete: connection refused or lost, timeout, bad response."""


class Response:
    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers  # lower-case names
        self.body = body


class Http11Connection:
    """Requests to one `http://host:port` origin over a single kept-alive connection,
    reopened when the server closes it. Not safe for concurrent requests: use one per
    task (the generator's streams are sequential by design: nonces arrive in order)."""

    def __init__(self, origin: str) -> None:
        parts = urlsplit(origin)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"expected http://host:port, got {origin!r}")
        self.host, self.port = parts.hostname, parts.port
        self._host_header = f"{self.host}:{self.port}".encode()
        self._stream: trio.SocketStream | None = None
        self._conn: h11.Connection | None = None
        self.connects = 0

    async def __aenter__(self) -> Http11Connection:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        stream, self._stream, self._conn = self._stream, None, None
        if stream is not None:
            await stream.aclose()

    async def request(self, method: str, target: str, *, body: bytes = b"",
                      headers: tuple[tuple[bytes, bytes], ...] = (), timeout: float = math.inf) -> Response:
        """Send one request and read the whole response. Any failure closes the
        connection (its state is unknown) and raises `HttpError`."""
        try:
            with trio.fail_after(timeout):
                return await self._exchange(method, target, body, headers)
        except trio.TooSlowError:
            await self._abort()
            raise HttpError(f"{method} {target}: no response in {timeout} s") from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError) as exc:
            await self._abort()
            raise HttpError(f"{method} {target}: {type(exc).__name__}: {exc}") from None

    async def _abort(self) -> None:
        stream, self._stream, self._conn = self._stream, None, None
        if stream is not None:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _exchange(self, method: str, target: str, body: bytes,
                        headers: tuple[tuple[bytes, bytes], ...]) -> Response:
        conn = self._conn
        if conn is not None and conn.our_state is h11.MUST_CLOSE:
            await self.aclose()
            conn = None
        if conn is None or self._stream is None:
            self._stream = await trio.open_tcp_stream(self.host, self.port)
            self._conn = conn = h11.Connection(h11.CLIENT)
            self.connects += 1
        stream = self._stream
        req_headers = [(b"host", self._host_header), (b"content-length", str(len(body)).encode()), *headers]
        out = conn.send(h11.Request(method=method, target=target, headers=req_headers))
        out += conn.send(h11.Data(data=body)) if body else b""
        out += conn.send(h11.EndOfMessage())
        await stream.send_all(out)
        status = 0
        resp_headers: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(READ_BYTES)
                conn.receive_data(data)  # b"" is the peer's EOF; h11 then raises or ends
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                resp_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("connection closed before the response ended")
            # InformationalResponse (1xx): keep reading
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:  # the server asked to close, or did not finish cleanly
            await self.aclose()
        return Response(status, resp_headers, b"".join(chunks))
