"""The API under bad input and pressure: malformed bodies and paths (fuzzed),
oversized and slow bodies, a failing handler, and the connection limit. The
rule throughout: a client's mistake is a 4xx JSON error, never a 500, and nothing
a client does stops the server."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import httpx
import pytest
import structlog
import trio
from api_fixture import MAX_BODY, OUTSIDER, PEOPLE, SimNodeAPI, serve_in_thread, start_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.api.txbody import tx_to_json_envelope
from protocol.governance.accounts import Transfer

SCALE = settings.default.max_examples / 100
FUZZ = settings(
    max_examples=max(20, int(150 * SCALE)),
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
)
MSGPACK = {"content-type": "application/msgpack"}


@pytest.fixture
async def node() -> SimNodeAPI:
    return SimNodeAPI()


@pytest.fixture
async def http(nursery: trio.Nursery, node: SimNodeAPI) -> AsyncIterator[httpx.AsyncClient]:
    address = await start_api(nursery, node)
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
        yield client


def assert_client_error(r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    err = r.json()["error"]
    assert isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str)


def assert_no_server_error(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert_client_error(r)


def valid_tx(node: SimNodeAPI, nonce: int | None = None):
    return node.make_tx(PEOPLE[0].key, "transfer", Transfer(OUTSIDER.address, 1, ""), nonce=nonce)


# ---------------------------------------------------------------- malformed requests


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/msgpack", b"", "bad_request"),
        ("application/msgpack", b"\xc1", "bad_tx"),
        ("application/msgpack", b"\x93\x01\x02\x03", "bad_tx"),
        ("application/json", b"", "bad_request"),
        ("application/json", b"{", "bad_request"),
        ("application/json", b"[]", "bad_request"),
        ("application/json", b'{"tx": "not base64!"}', "bad_request"),
        ("application/json", b'{"tx": "AAAA"}', "bad_tx"),
        ("application/json", b'{"tx": 5}', "bad_request"),
        ("application/json", b'{"chain_id": "x"}', "bad_request"),
        ("application/json", b"\xff\xfe", "bad_request"),
        ("application/json", b"[" * 100_00 + b"]" * 100_00, "bad_request"),
        ("text/plain", b"hello", "unsupported_media_type"),
        ("", b"hello", "unsupported_media_type"),
    ],
)
async def test_malformed_tx_bodies_are_client_errors(http, content_type, body, code):
    headers = {"content-type": content_type} if content_type else {}
    r = await http.post("/v1/txs", content=body, headers=headers)
    assert_client_error(r)
    assert r.json()["error"]["code"] == code


async def test_malformed_json_envelopes(http, node):
    good = tx_to_json_envelope(valid_tx(node))
    cases = [
        {**good, "nonce": 1.0},
        {**good, "nonce": True},
        {**good, "nonce": -1},
        {**good, "nonce": 2**64},
        {**good, "sender": base64.b64encode(b"short").decode()},
        {**good, "signature": "@@@@"},
        {**good, "kind": "\ud800"},
        {**good, "extra": 1},
        {**good, "cosignatures": {}},
        {**good, "cosignatures": [{"signer": good["sender"]}]},
        {**good, "cosignatures": [{"signer": good["sender"], "signature": good["signature"]}]},  # sender co-signs
        {k: v for k, v in good.items() if k != "body"},
    ]
    for case in cases:
        r = await http.post("/v1/txs", content=json.dumps(case).encode(), headers={"content-type": "application/json"})
        assert_client_error(r)
    r = await http.post("/v1/txs", content=b'{"nonce": NaN}', headers={"content-type": "application/json"})
    assert_client_error(r)


async def test_bad_signature_is_refused_not_crashed(http, node):
    tx = valid_tx(node)
    env = tx_to_json_envelope(tx)
    sig = bytearray(tx.signature)
    sig[0] ^= 1
    env["signature"] = base64.b64encode(bytes(sig)).decode()
    r = await http.post("/v1/txs", json=env)
    assert r.status_code == 422 and "signature" in r.json()["reason"]


async def test_unknown_paths_and_wrong_methods(http):
    for path in ("/", "/v2/status", "/v1/status/", "/v1/blocks", "/v1/txs/ab/cd", "/metrics/x", "/v1/nothing"):
        r = await http.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
    r = await http.delete("/v1/status")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]
    r = await http.get("/v1/txs")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = await http.put("/v1/txs", content=b"x")
    assert r.status_code == 405


# ---------------------------------------------------------------- body limits


async def test_declared_oversized_body_is_413_without_reading_it(http):
    r = await http.post("/v1/txs", content=b"\x00" * (MAX_BODY + 1), headers=MSGPACK)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = await http.post("/v1/txs", content=b"\x00" * MAX_BODY, headers=MSGPACK)  # at the limit: read, then refused
    assert r.status_code == 400
    assert (await http.get("/v1/status")).status_code == 200


async def test_streamed_oversized_body_is_cut_off_at_the_limit(http):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(2 * MAX_BODY // 8192):
            yield b"\x00" * 8192

    r = await http.post("/v1/txs", content=chunks(), headers=MSGPACK)
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def http_exchange(address: str, request: bytes, *, read_timeout: float = 5) -> bytes:
    host, port = address.rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(request)
        out = b""
        with trio.move_on_after(read_timeout):
            while b"\r\n\r\n" not in out or not out.rstrip().endswith(b"}"):
                data = await stream.receive_some(65536)
                if not data:
                    break
                out += data
        return out


async def test_a_body_that_trickles_in_is_cut_off(nursery, node):
    address = await start_api(nursery, node, body_timeout_s=0.3)
    request = (b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/msgpack\r\n"
               b"Content-Length: 100\r\n\r\n" + b"\x00" * 10)
    with trio.fail_after(5):
        response = await http_exchange(address, request)
    assert response.startswith(b"HTTP/1.1 408") and b"request_timeout" in response


async def test_garbage_on_the_wire_does_not_stop_the_server(nursery, node):
    address = await start_api(nursery, node)
    with trio.fail_after(5):
        response = await http_exchange(address, b"\x16\x03\x01 not http at all\r\n\r\n", read_timeout=1)
    assert response == b"" or response.startswith(b"HTTP/1.1 400")
    async with httpx.AsyncClient(base_url=f"http://{address}") as client:
        assert (await client.get("/v1/status")).status_code == 200


# ---------------------------------------------------------------- handler failures


async def test_a_failing_handler_is_a_logged_500_and_the_server_carries_on(http, node):
    node.fail_status = True
    with structlog.testing.capture_logs() as logs:
        r = await http.get("/v1/status")
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal", "message": "internal error; see the node's log"}}
    failed = [e for e in logs if e["event"] == "api.handler_failed"]
    assert failed and failed[0]["path"] == "/v1/status" and "injected fault" in failed[0]["error"]
    assert failed[0]["log_level"] == "error"
    node.fail_status = False
    assert (await http.get("/v1/status")).status_code == 200


# ---------------------------------------------------------------- connection limit


async def open_event_stream(address: str) -> trio.SocketStream:
    """A connection held by a streaming request (served, so counted)."""
    host, port = address.rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    seen = b""
    while b": subscribed" not in seen:
        seen += await stream.receive_some(4096)
    return stream


async def test_connections_beyond_the_limit_wait_to_be_accepted(nursery, node):
    address = await start_api(nursery, node, max_connections=2)
    with trio.fail_after(10):
        a = await open_event_stream(address)
        b = await open_event_stream(address)
        assert len(node.hub) == 2
        done = trio.Event()
        result: dict[str, int] = {}

        async def third() -> None:
            async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
                result["status"] = (await client.get("/v1/status")).status_code
            done.set()

        nursery.start_soon(third)
        with trio.move_on_after(0.5):
            await done.wait()
        assert not done.is_set()  # connected (kernel backlog), not yet served
        await a.aclose()
        await done.wait()
        assert result["status"] == 200
        await b.aclose()


# ---------------------------------------------------------------- fuzzing
#
# Hypothesis drives synchronous tests against one server per module, running in a
# thread of its own (api_fixture.serve_in_thread); nothing in these requests
# advances the chain, so the examples do not depend on each other.


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[httpx.Client, bytes]]:
    node = SimNodeAPI()
    tx = valid_tx(node, nonce=0).encode()
    with serve_in_thread(node) as address, httpx.Client(base_url=f"http://{address}", timeout=10) as client:
        yield client, tx


@FUZZ
@given(body=st.one_of(st.binary(max_size=400), st.binary(min_size=1, max_size=8).map(lambda b: b * 50)))
def test_fuzz_msgpack_bodies_never_500(fuzz_target, body):
    http, _ = fuzz_target
    assert_no_server_error(http.post("/v1/txs", content=body, headers=MSGPACK))


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_transactions_never_500(fuzz_target, data):
    http, tx = fuzz_target
    raw = bytearray(tx)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[max(i, 1):]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    if data.draw(st.booleans()):
        r = http.post("/v1/txs", content=bytes(raw), headers=MSGPACK)
    else:
        r = http.post("/v1/txs", json={"tx": base64.b64encode(bytes(raw)).decode()})
    assert_no_server_error(r)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
ENVELOPE_KEYS = ["chain_id", "sender", "nonce", "kind", "body", "cosignatures", "signature", "tx"]
b64_values = st.binary(max_size=70).map(lambda b: base64.b64encode(b).decode())


@FUZZ
@given(doc=st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(ENVELOPE_KEYS), json_values | b64_values, max_size=8),
))
def test_fuzz_json_bodies_never_500(fuzz_target, doc):
    http, _ = fuzz_target
    body = json.dumps(doc, allow_nan=True).encode()
    assert_no_server_error(http.post("/v1/txs", content=body, headers={"content-type": "application/json"}))


SEGMENT = st.text(alphabet=string.printable + "é☃\u0000", max_size=80)


@FUZZ
@given(
    prefix=st.sampled_from(["/v1/blocks/", "/v1/txs/", "/v1/accounts/", "/v1/identities/", "/v1/proposals/",
                            "/v1/notary/", "/v1/unions/", "/v1/credentials/", "/v1/constitution/versions/",
                            "/v1/identities/by-key/", "/v1/issuers/", "/v1/admin/peers/", "/v1/", "/"]),
    segment=SEGMENT,
    suffix=st.sampled_from(["", "/votes", "/unions", "/credentials", "/block", "/x"]),
    query=st.dictionaries(st.sampled_from(["height", "limit", "offset", "status", "wait", "timeout"]),
                          SEGMENT, max_size=3),
    method=st.sampled_from(["GET", "POST"]),
)
def test_fuzz_paths_and_queries_never_500(fuzz_target, prefix, segment, suffix, query, method):
    http, _ = fuzz_target
    url = prefix + quote(segment, safe="") + suffix
    if url == "/v1/events":
        return  # a stream: covered by its own tests
    assert_no_server_error(http.request(method, url, params=query))


# ---------------------------------------------------------------- listening


def ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
async def test_ipv6_listen_address(nursery, node):
    from functools import partial

    from node.api.server import serve_api

    address = await nursery.start(partial(serve_api, node, "[::1]:0", max_body_bytes=MAX_BODY, max_connections=4,
                                          admin_enabled=False))
    assert address.startswith("[::1]:") and not address.endswith(":0")
    async with httpx.AsyncClient(base_url=f"http://{address}") as client:
        assert (await client.get("/v1/status")).json()["chain_id"] == node.chain_id


async def test_head_requests_get_headers_only(http):
    r = await http.head("/v1/status")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-type"].startswith("application/json")


async def test_a_chain_at_genesis_answers_too(nursery):
    node = SimNodeAPI(start=False)
    assert node.latest_height() == 0
    address = await start_api(nursery, node)
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        r = await http.get("/v1/blocks/latest")
        assert r.status_code == 404 and "genesis" in r.json()["error"]["message"]
        s = (await http.get("/v1/status")).json()
        assert s["height"] == 0 and s["latest_block_hash"] == "00" * 32
        assert (await http.get("/v1/proposals")).json() == {"total": 0, "offset": 0, "limit": 50, "proposals": []}
        assert (await http.get("/v1/validators")).json()["height"] == 1
        assert (await http.get("/v1/constitution")).json()["version"] == 1
