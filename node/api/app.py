"""The node's HTTP API as a Starlette application over the `NodeAPI` contract.

Handlers only read through the contract (and `protocol.governance.queries` over
`node.state()`) and submit through `node.submit_tx`: the API makes no protocol
decision of its own. `docs/api.md` is the reference of every path and shape.

Robustness rules, enforced here for every path:

* every error is ``{"error": {"code", "message"}}`` with its HTTP status; malformed
  input is a 4xx (`ApiError`, Starlette's 404/405), never a 500;
* request bodies are bounded while they are read (`max_body_bytes`: a declared
  Content-Length above it is refused before reading, a chunked body is cut off
  as soon as it passes it) and must arrive within `body_timeout_s`;
* an unexpected exception in a handler is logged with structlog and answered with
  a 500 JSON error; it never reaches the server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import structlog
import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol import crypto, messages
from protocol.errors import DecodeError
from protocol.governance import keys as gov_keys
from protocol.governance import queries
from protocol.governance.context import load
from protocol.governance.credentials import get_issuer
from protocol.governance.identity import Identity, Registrar
from protocol.governance.proposals import Status

from . import params as P
from . import views
from .contract import NodeAPI, TxStatus
from .errors import ApiError, error_response, handle_api_error, handle_http_exception, not_found
from .txbody import MSGPACK_TYPES, media_type, parse_tx

log = structlog.get_logger("ekklesia.api")

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EVENT_KINDS = ("block", "tx")
PROPOSAL_STATUSES = tuple(s.name.lower() for s in Status)
DEFAULT_WAIT_S = 10.0


# ---------------------------------------------------------------- the guard


class Guard:
    """Outermost of our middleware: body limit and deadline, and the last line of
    defence that turns any escaped exception into a logged 500."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await error_response(
                413, "payload_too_large",
                f"request body of {declared} bytes exceeds the limit of {self.max_body_bytes}",
                {"Connection": "close"},
            )(scope, receive, send)
            return

        started = False
        received = 0
        body_done = False
        deadline = trio.current_time() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                with trio.fail_at(deadline):
                    message = await receive()
            except trio.TooSlowError:
                raise ApiError(408, f"the request body did not arrive within {self.body_timeout_s:g} s",
                               headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise ApiError(413, f"request body exceeds the limit of {self.max_body_bytes} bytes",
                                   headers={"Connection": "close"})
                if not message.get("more_body", False):
                    body_done = True
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except ApiError as exc:  # raised from the body reader outside a handler's reach
            if not started:
                await handle_and_send(exc, scope, receive, send)
        except Exception as exc:
            log.error(
                "api.handler_failed", method=scope.get("method"), path=str(scope.get("path", ""))[:200],
                error=repr(exc)[:500], exc_info=exc,
            )
            if not started:
                await error_response(500, "internal", "internal error; see the node's log")(scope, receive, send)


async def handle_and_send(exc: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(exc.status, exc.code, exc.message, exc.headers)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------- handlers


RETRY_AFTER_S = 1  # what a busy node (HTTP 429) asks a client to wait


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


class _Handlers:
    def __init__(self, node: NodeAPI, *, max_wait_s: float, sse_heartbeat_s: float) -> None:
        self.node = node
        self.max_wait_s = max_wait_s
        self.sse_heartbeat_s = sse_heartbeat_s

    # ------------------------------------------------------------ chain

    async def status(self, request: Request) -> Response:
        return _json(views.plain_json(self.node.status()))

    def _block(self, height: int) -> Response:
        found = self.node.block(height)
        if found is None:
            raise not_found(f"no block at height {height} (latest is {self.node.latest_height()})")
        return _json(views.block_json(*found))

    async def block_latest(self, request: Request) -> Response:
        height = self.node.latest_height()
        if height == 0:
            raise not_found("no block yet: the chain is at genesis")
        return self._block(height)

    async def block(self, request: Request) -> Response:
        return self._block(P.uint(request.path_params["height"], "height"))

    async def chain(self, request: Request) -> Response:
        s = self.node.state()
        return _json(views.chain_json(queries.chain_info(s), queries.last_height(s), queries.last_time_ms(s),
                                      queries.residents(s)))

    async def validators(self, request: Request) -> Response:
        raw = request.query_params.get("height")
        height = self.node.latest_height() + 1 if raw is None else P.uint(raw, "height", 1)
        return _json(views.validators_json(height, self.node.validators(height)))

    async def peers(self, request: Request) -> Response:
        peers = self.node.peers()
        return _json({"count": len(peers), "peers": list(peers)})

    # ------------------------------------------------------------ transactions

    async def submit_tx(self, request: Request) -> Response:
        q = request.query_params
        wait = P.choice(q, "wait", ("commit", "none"))
        raw_timeout = q.get("timeout")
        timeout = DEFAULT_WAIT_S if raw_timeout is None else P.seconds(raw_timeout, "timeout", 0, self.max_wait_s)
        timeout = min(timeout, self.max_wait_s)
        body = await request.body()
        tx = parse_tx(request.headers.get("content-type"), body)
        known, _ = self.node.tx(tx.hash)
        if known.status == "committed":
            return self._tx_status_response(known)
        st = await self.node.submit_tx(tx, wait_commit=wait == "commit", timeout_s=timeout)
        return self._tx_status_response(st)

    async def submit_batch(self, request: Request) -> Response:
        """Many transactions in one request: a msgpack `TxBatch` (see protocol.messages).
        Admission only; the response lists one status per tx, in order."""
        if media_type(request.headers.get("content-type")) not in MSGPACK_TYPES:
            raise ApiError(415, "Content-Type must be application/msgpack (a canonical TxBatch)")
        body = await request.body()
        try:
            batch = messages.decode_tx_batch(body)
        except DecodeError as exc:
            raise ApiError(400, f"body is not a valid TxBatch: {exc.reason}", "bad_tx") from None
        only_refused = P.choice(request.query_params, "results", ("all", "refused")) == "refused"
        statuses = await self.node.submit_txs(list(batch.txs))
        accepted = sum(1 for st in statuses if st.status in ("pending", "committed"))
        if statuses and all(st.retry for st in statuses):
            raise ApiError(429, statuses[0].reason, headers={"Retry-After": str(RETRY_AFTER_S)})
        if only_refused:  # a load tool's batch of thousands needs no status per accepted tx
            results = [{**views.tx_status_json(st), "position": i} for i, st in enumerate(statuses)
                       if st.status not in ("pending", "committed")]
        else:
            results = [views.tx_status_json(st) for st in statuses]
        return _json({"accepted": accepted, "rejected": len(statuses) - accepted, "results": results})

    @staticmethod
    def _tx_status_response(st: TxStatus) -> Response:
        body = views.tx_status_json(st)
        if st.status == "committed":
            return _json(body, 200)
        if st.retry:
            raise ApiError(429, st.reason, headers={"Retry-After": str(RETRY_AFTER_S)})
        if st.status == "rejected":
            body["error"] = {"code": "tx_rejected", "message": st.reason or "rejected"}
            return _json(body, 422)
        return _json(body, 202)

    async def tx(self, request: Request) -> Response:
        h = P.hex_bytes(request.path_params["hash"], "hash", (32,))
        st, tx = self.node.tx(h)
        if st.status == "unknown":
            raise not_found(f"no transaction {h.hex()} is known to this node")
        out = views.tx_status_json(st)
        out["tx"] = views.tx_json(tx) if tx is not None else None
        return _json(out)

    # ------------------------------------------------------------ accounts and identities

    async def account(self, request: Request) -> Response:
        raw = P.hex_bytes(request.path_params["address"], "address", (20, 32))
        address = crypto.address(raw) if len(raw) == 32 else raw  # a public key names its account
        s = self.node.state()
        return _json(views.account_json(address, queries.account(s, address), queries.locks(s, address)))

    def _identity_response(self, ident: Identity | None, what: str) -> Response:
        if ident is None:
            raise not_found(f"no identity {what}")
        s = self.node.state()
        registrar = load(s, gov_keys.registrar(ident.id), Registrar)
        return _json(views.identity_json(ident, registrar, get_issuer(s, ident.id)))

    async def identity(self, request: Request) -> Response:
        iid = P.hex_bytes(request.path_params["id"], "id", (32,))
        return self._identity_response(queries.identity(self.node.state(), iid), iid.hex())

    async def identity_by_key(self, request: Request) -> Response:
        pk = P.hex_bytes(request.path_params["pubkey"], "pubkey", (32,))
        return self._identity_response(queries.identity_by_key(self.node.state(), pk), f"with current key {pk.hex()}")

    async def identity_unions(self, request: Request) -> Response:
        iid = P.hex_bytes(request.path_params["id"], "id", (32,))
        s = self.node.state()
        unions = [views.union_json(u, queries.union_history(s, u.id)) for u in queries.unions_of(s, iid)]
        return _json({"identity": iid.hex(), "unions": unions})

    async def identity_credentials(self, request: Request) -> Response:
        iid = P.hex_bytes(request.path_params["id"], "id", (32,))
        views_ = queries.credentials_of(self.node.state(), iid)
        return _json({"subject": iid.hex(), "credentials": [views.credential_json(v) for v in views_]})

    async def registrars(self, request: Request) -> Response:
        regs = queries.registrars(self.node.state())
        return _json({"registrars": [views.registrar_json(i, r) for i, r in regs]})

    async def issuers(self, request: Request) -> Response:
        iss = queries.issuers(self.node.state())
        return _json({"issuers": [views.issuer_json(i, x) for i, x in iss]})

    async def issuer_credentials(self, request: Request) -> Response:
        iid = P.hex_bytes(request.path_params["id"], "id", (32,))
        views_ = queries.credentials_by(self.node.state(), iid)
        return _json({"issuer": iid.hex(), "credentials": [views.credential_json(v) for v in views_]})

    async def supply(self, request: Request) -> Response:
        return _json(views.supply_json(queries.supply(self.node.state())))

    # ------------------------------------------------------------ proposals

    async def proposals(self, request: Request) -> Response:
        q = request.query_params
        status = P.choice(q, "status", PROPOSAL_STATUSES)
        limit = P.query_uint(q, "limit", 50, 1, 200)
        offset = P.query_uint(q, "offset", 0)
        s = self.node.state()
        props = queries.proposals(s)
        if status is not None:
            props = [p for p in props if p.status.name.lower() == status]
        page = props[offset : offset + limit]
        out = []
        for p in page:
            view = queries.proposal(s, p.id)
            if view is not None:
                out.append(views.proposal_json(view))
        return _json({"total": len(props), "offset": offset, "limit": limit, "proposals": out})

    async def proposal(self, request: Request) -> Response:
        pid = P.uint(request.path_params["id"], "id")
        view = queries.proposal(self.node.state(), pid)
        if view is None:
            raise not_found(f"no proposal {pid}")
        return _json(views.proposal_json(view))

    async def proposal_votes(self, request: Request) -> Response:
        pid = P.uint(request.path_params["id"], "id")
        q = request.query_params
        limit = P.query_uint(q, "limit", 1000, 1, 10_000)
        offset = P.query_uint(q, "offset", 0)
        s = self.node.state()
        if queries.proposal(s, pid) is None:
            raise not_found(f"no proposal {pid}")
        votes = queries.votes(s, pid)
        page = votes[offset : offset + limit]
        return _json({"proposal_id": pid, "total": len(votes), "offset": offset, "limit": limit,
                      "votes": [views.vote_json(v, r) for v, r in page]})

    # ------------------------------------------------------------ constitution

    async def constitution(self, request: Request) -> Response:
        return _json(views.constitution_json(queries.constitution(self.node.state())))

    async def constitution_history(self, request: Request) -> Response:
        hist = queries.constitution_history(self.node.state())
        return _json({"versions": [views.constitution_version_json(v) for v in hist]})

    async def constitution_version(self, request: Request) -> Response:
        version = P.uint(request.path_params["version"], "version", 0, 2**32 - 1)
        arts = queries.constitution_at(self.node.state(), version) if version >= 1 else None
        if arts is None:
            raise not_found(f"no constitution version {version}")
        return _json({"version": version, "articles": [views.article_json(a) for a in arts]})

    # ------------------------------------------------------------ services

    async def notary(self, request: Request) -> Response:
        doc = P.hex_bytes(request.path_params["doc_hash"], "doc_hash", (32,))
        records = queries.notary_records(self.node.state(), doc)
        if not records:
            raise not_found(f"document {doc.hex()} was never notarised")
        blocks: dict[int, Any] = {}
        out = []
        for rec in records:
            if rec.height not in blocks:
                found = self.node.block(rec.height)
                blocks[rec.height] = found[0] if found is not None else None
            out.append(views.notary_record_json(rec, blocks[rec.height]))
        return _json({"doc_hash": doc.hex(), "records": out})

    async def union(self, request: Request) -> Response:
        uid = P.uint(request.path_params["id"], "id")
        s = self.node.state()
        u = queries.union(s, uid)
        if u is None:
            raise not_found(f"no union {uid}")
        return _json(views.union_json(u, queries.union_history(s, uid)))

    async def credential(self, request: Request) -> Response:
        cid = P.uint(request.path_params["id"], "id")
        view = queries.credential(self.node.state(), cid)
        if view is None:
            raise not_found(f"no credential {cid}")
        return _json(views.credential_json(view))

    async def params(self, request: Request) -> Response:
        return _json(views.params_json(queries.params(self.node.state())))

    # ------------------------------------------------------------ events, metrics, admin

    async def events(self, request: Request) -> Response:
        kinds = P.choices(request.query_params, "kinds", EVENT_KINDS)
        return StreamingResponse(
            self._event_stream(kinds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _event_stream(self, kinds: set[str]) -> AsyncIterator[bytes]:
        async with self.node.subscribe(kinds) as channel:
            yield b"retry: 3000\n: subscribed\n\n"
            while True:
                event = None
                with trio.move_on_after(self.sse_heartbeat_s):
                    try:
                        event = await channel.receive()
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        return
                if event is None:
                    yield b": keep-alive\n\n"
                    continue
                if event.kind not in kinds:
                    continue
                yield sse_frame(event.kind, views.event_json(event), event.data.get("height"))

    async def metrics(self, request: Request) -> Response:
        return Response(self.node.metrics_text(), media_type=METRICS_CONTENT_TYPE)

    async def admin_block(self, request: Request) -> Response:
        pid = P.peer_id(request.path_params["peer_id"])
        try:
            await self.node.admin_block_peer(pid)
        except ValueError as exc:
            raise ApiError(400, str(exc)[:300]) from None
        return _json({"peer_id": pid, "blocked": True})

    async def admin_unblock(self, request: Request) -> Response:
        pid = P.peer_id(request.path_params["peer_id"])
        try:
            await self.node.admin_unblock_peer(pid)
        except ValueError as exc:
            raise ApiError(400, str(exc)[:300]) from None
        return _json({"peer_id": pid, "blocked": False})


def sse_frame(kind: str, data: Any, event_id: Any = None) -> bytes:
    """One server-sent event. JSON never holds a raw newline, so `data` is one line."""
    lines = [f"event: {kind}"]
    if kind == "block" and isinstance(event_id, int):
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


# ---------------------------------------------------------------- the app


def create_app(
    node: NodeAPI,
    *,
    max_body_bytes: int,
    admin_enabled: bool,
    serve_metrics: bool = True,
    max_wait_s: float = 60.0,
    body_timeout_s: float = 30.0,
    sse_heartbeat_s: float = 15.0,
) -> Starlette:
    """The API of `node`. `serve_metrics`: route `GET /metrics` here (off when the
    metrics have a listener of their own). `max_wait_s` bounds `?timeout=` of
    `POST /v1/txs?wait=commit`."""
    h = _Handlers(node, max_wait_s=max_wait_s, sse_heartbeat_s=sse_heartbeat_s)
    get = ["GET"]
    routes = [
        Route("/v1/status", h.status, methods=get),
        Route("/v1/chain", h.chain, methods=get),
        Route("/v1/blocks/latest", h.block_latest, methods=get),
        Route("/v1/blocks/{height}", h.block, methods=get),
        Route("/v1/validators", h.validators, methods=get),
        Route("/v1/peers", h.peers, methods=get),
        Route("/v1/txs", h.submit_tx, methods=["POST"]),
        Route("/v1/txs/batch", h.submit_batch, methods=["POST"]),
        Route("/v1/txs/{hash}", h.tx, methods=get),
        Route("/v1/accounts/{address}", h.account, methods=get),
        Route("/v1/supply", h.supply, methods=get),
        Route("/v1/identities/by-key/{pubkey}", h.identity_by_key, methods=get),
        Route("/v1/identities/{id}", h.identity, methods=get),
        Route("/v1/identities/{id}/unions", h.identity_unions, methods=get),
        Route("/v1/identities/{id}/credentials", h.identity_credentials, methods=get),
        Route("/v1/registrars", h.registrars, methods=get),
        Route("/v1/issuers", h.issuers, methods=get),
        Route("/v1/issuers/{id}/credentials", h.issuer_credentials, methods=get),
        Route("/v1/proposals", h.proposals, methods=get),
        Route("/v1/proposals/{id}", h.proposal, methods=get),
        Route("/v1/proposals/{id}/votes", h.proposal_votes, methods=get),
        Route("/v1/constitution", h.constitution, methods=get),
        Route("/v1/constitution/history", h.constitution_history, methods=get),
        Route("/v1/constitution/versions/{version}", h.constitution_version, methods=get),
        Route("/v1/notary/{doc_hash}", h.notary, methods=get),
        Route("/v1/unions/{id}", h.union, methods=get),
        Route("/v1/credentials/{id}", h.credential, methods=get),
        Route("/v1/params", h.params, methods=get),
        Route("/v1/events", h.events, methods=get),
    ]
    if serve_metrics:
        routes.append(Route("/metrics", h.metrics, methods=get))
    if admin_enabled:
        routes += [
            Route("/v1/admin/peers/{peer_id}/block", h.admin_block, methods=["POST"]),
            Route("/v1/admin/peers/{peer_id}/unblock", h.admin_unblock, methods=["POST"]),
        ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s)],
        exception_handlers={ApiError: handle_api_error, HTTPException: handle_http_exception},
    )
    app.router.redirect_slashes = False  # "/v1/status/" is a 404, not a redirect: one spelling per path
    return app


def create_metrics_app(node: NodeAPI) -> Starlette:
    """Only `GET /metrics`, for a separate metrics listener (`[metrics] listen`)."""
    h = _Handlers(node, max_wait_s=1, sse_heartbeat_s=15)
    return Starlette(
        routes=[Route("/metrics", h.metrics, methods=["GET"])],
        middleware=[Middleware(Guard, max_body_bytes=0, body_timeout_s=10)],
        exception_handlers={HTTPException: handle_http_exception, ApiError: handle_api_error},
    )
