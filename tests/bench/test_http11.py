"""The load generator's HTTP/1.1 client against scripted servers on loopback."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from bench.http11 import Http11Connection, HttpError

Handler = Callable[[trio.SocketStream, list[bytes]], Awaitable[None]]


async def read_request(stream: trio.SocketStream, buf: bytearray) -> bytes:
    """One request (head + Content-Length body) off `stream`; b"" at EOF."""
    while b"\r\n\r\n" not in buf:
        data = await stream.receive_some(65536)
        if not data:
            return b""
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += await stream.receive_some(65536)
    buf[:] = rest[length:]
    return head + b"\r\n\r\n" + rest[:length]


async def serve(nursery: trio.Nursery, handler: Handler) -> tuple[str, list[bytes], list[int]]:
    """A server calling `handler` per connection; returns its origin, the requests it
    read, and a one-item list counting accepted connections."""
    requests: list[bytes] = []
    accepted = [0]

    async def on_conn(stream: trio.SocketStream) -> None:
        accepted[0] += 1
        async with stream:
            await handler(stream, requests)

    listeners = await nursery.start(functools.partial(trio.serve_tcp, on_conn, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}", requests, accepted


def keep_alive(response: bytes) -> Handler:
    async def handler(stream: trio.SocketStream, requests: list[bytes]) -> None:
        buf = bytearray()
        while req := await read_request(stream, buf):
            requests.append(req)
            await stream.send_all(response)
    return handler


async def test_requests_share_one_connection_and_send_the_body() -> None:
    async with trio.open_nursery() as n:
        origin, requests, accepted = await serve(n, keep_alive(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
        async with Http11Connection(origin) as conn:
            for i in range(3):
                r = await conn.request("POST", f"/v1/txs/batch?n={i}", body=b"\x91\x90" * (i + 1),
                                       headers=((b"content-type", b"application/msgpack"),), timeout=10)
                assert (r.status_code, r.body) == (200, b"ok")
            assert conn.connects == 1
        n.cancel_scope.cancel()
    assert accepted == [1]
    assert [req.split(b" ")[1] for req in requests] == [b"/v1/txs/batch?n=0", b"/v1/txs/batch?n=1",
                                                         b"/v1/txs/batch?n=2"]
    assert requests[2].endswith(b"\r\n\r\n" + b"\x91\x90" * 3)
    assert b"content-type: application/msgpack" in requests[0].lower()


async def test_headers_are_lower_case_and_chunked_bodies_are_joined() -> None:
    async with trio.open_nursery() as n:
        origin, _, _ = await serve(n, keep_alive(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nbus\r\n1\r\ny\r\n0\r\n\r\n"))
        async with Http11Connection(origin) as conn:
            r = await conn.request("GET", "/", timeout=10)
        n.cancel_scope.cancel()
    assert (r.status_code, r.headers["retry-after"], r.body) == (429, "2", b"busy")


async def test_a_server_that_closes_gets_a_new_connection() -> None:
    async def once(stream: trio.SocketStream, requests: list[bytes]) -> None:
        requests.append(await read_request(stream, bytearray()))
        await stream.send_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx")

    async with trio.open_nursery() as n:
        origin, requests, accepted = await serve(n, once)
        async with Http11Connection(origin) as conn:
            bodies = [(await conn.request("GET", "/", timeout=10)).body for _ in range(2)]
            assert conn.connects == 2
        n.cancel_scope.cancel()
    assert bodies == [b"x", b"x"] and accepted == [2] and len(requests) == 2


async def test_a_response_cut_short_is_an_error_and_the_next_request_reconnects() -> None:
    calls = [0]

    async def flaky(stream: trio.SocketStream, requests: list[bytes]) -> None:
        requests.append(await read_request(stream, bytearray()))
        calls[0] += 1
        if calls[0] == 1:  # promise 10 bytes, send 3, hang up
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
            return
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async with trio.open_nursery() as n:
        origin, _, _ = await serve(n, flaky)
        async with Http11Connection(origin) as conn:
            with pytest.raises(HttpError, match="GET /a"):
                await conn.request("GET", "/a", timeout=10)
            assert (await conn.request("GET", "/b", timeout=10)).body == b"ok"
            assert conn.connects == 2
        n.cancel_scope.cancel()


async def test_a_refused_connection_is_an_error() -> None:
    with trio.socket.socket() as s:  # a port nobody listens on
        await s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with Http11Connection(f"http://127.0.0.1:{port}") as conn:
        with pytest.raises(HttpError):
            await conn.request("GET", "/", timeout=10)


async def test_a_silent_server_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async def silent(stream: trio.SocketStream, requests: list[bytes]) -> None:
        requests.append(await read_request(stream, bytearray()))
        await trio.sleep_forever()

    async with trio.open_nursery() as n:
        origin, requests, _ = await serve(n, silent)
        async with Http11Connection(origin) as conn:
            t0 = trio.current_time()
            with pytest.raises(HttpError, match="no response in 60"):
                await conn.request("POST", "/slow", body=b"x", timeout=60)
            assert trio.current_time() - t0 == pytest.approx(60)
        n.cancel_scope.cancel()
    assert len(requests) == 1


def test_only_plain_http_origins_with_a_port() -> None:
    for bad in ("https://127.0.0.1:1", "http://127.0.0.1", "127.0.0.1:80"):
        with pytest.raises(ValueError, match="expected http://host:port"):
            Http11Connection(bad)
