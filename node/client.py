"""A small HTTP client for a node's API: submit signed transactions, read JSON.

    async with Client("http://127.0.0.1:26657") as c:
        status = await c.get("/v1/status")
        result = await c.send(key, "transfer", Transfer(to, 5, ""))   # waits for the block

Every failure is an `ApiError` (a `NodeError`, so the CLI prints it as one line):
`NotFound` for a 404, `Unreachable` when there is no answer at all. `status` and
`code` carry the HTTP status and the API's error code (docs/api.md) when known.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from node.errors import NodeError
from protocol import crypto
from protocol.types import Tx
from protocol.wire import Struct

DEFAULT_NODE = "http://127.0.0.1:26657"
MAX_WAIT_S = 60.0  # the API's bound on ?timeout= of POST /v1/txs?wait=commit


class ApiError(NodeError):
    """The node answered with an error, or could not be asked."""

    def __init__(self, message: str, remedy: str | None = None, *, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, remedy)
        self.status = status
        self.code = code


class NotFound(ApiError):
    """404: no such record (or path)."""


class Unreachable(ApiError):
    """No HTTP answer: connection refused, DNS failure, timeout..."""


def normalise_url(url: str) -> str:
    """`host:port` → `http://host:port`; trailing slashes dropped."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


class Client:
    def __init__(self, base_url: str = DEFAULT_NODE, *, timeout: float = 30.0) -> None:
        self.base = normalise_url(base_url)
        self.http = httpx.AsyncClient(base_url=self.base, timeout=timeout)
        self._chain_id: str | None = None

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ reading

    def _unreachable(self, what: str, exc: Exception) -> Unreachable:
        detail = str(exc) or type(exc).__name__
        return Unreachable(f"{what}: no answer from the node at {self.base} ({detail})",
                           "is it running, and is --node / $EKKLESIA_NODE right?")

    @staticmethod
    def _body(r: httpx.Response) -> Any:
        if not r.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            return r.json()
        except ValueError:
            return None

    def _error(self, path: str, r: httpx.Response, body: Any) -> ApiError:
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        message = err.get("message") or " ".join(r.text[:200].split()) or r.reason_phrase
        cls = NotFound if r.status_code == 404 else ApiError
        return cls(f"{path}: {r.status_code} {message}", status=r.status_code, code=err.get("code"))

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            r = await self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise self._unreachable(f"GET {path}", exc) from None
        body = self._body(r)
        if r.status_code >= 400:
            raise self._error(path, r, body)
        if body is None:
            raise ApiError(f"{path}: the node answered {r.status_code} without JSON", status=r.status_code)
        return body

    async def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = str((await self.get("/v1/status"))["chain_id"])
        return self._chain_id

    async def nonce(self, pubkey: bytes) -> int:
        """The next nonce of the key's account (0 for an account the node has never seen)."""
        try:
            acct = await self.get(f"/v1/accounts/{crypto.address_hex(pubkey)}")
        except NotFound:
            return 0
        return int(acct.get("nonce", 0))

    # ------------------------------------------------------------ writing

    async def submit(
        self, tx: Tx, *, wait: bool = True, timeout: float = 30.0, raise_rejected: bool = True
    ) -> dict[str, Any]:
        """POST the tx; with `wait`, until it is committed or `timeout` (≤ 60 s) passed.

        Returns the tx status (docs/api.md). A mempool refusal (422) raises `ApiError`
        unless `raise_rejected` is False; then the status (``"rejected"``) is returned."""
        timeout = min(max(timeout, 0.001), MAX_WAIT_S)
        params = {"wait": "commit", "timeout": f"{timeout:g}"} if wait else {"wait": "none"}
        try:
            r = await self.http.post(
                "/v1/txs", content=tx.encode(), params=params,
                headers={"content-type": "application/msgpack"}, timeout=timeout + 10,
            )
        except httpx.HTTPError as exc:
            raise self._unreachable("submit", exc) from None
        body = self._body(r)
        if r.status_code == 422 and not raise_rejected and isinstance(body, dict) and "status" in body:
            return body
        if r.status_code >= 400 or not isinstance(body, dict):
            raise self._error("submit", r, body)
        return body

    async def build(
        self, key: crypto.Keypair, kind: str, body: Struct | bytes, *, cosigners: tuple[crypto.Keypair, ...] = (),
        nonce: int | None = None, chain_id: str | None = None,
    ) -> Tx:
        """Sign `body` as a `kind` transaction from `key` (nonce and chain id from the node
        unless given)."""
        raw = body if isinstance(body, bytes) else body.encode()
        chain = chain_id if chain_id is not None else await self.chain_id()
        n = nonce if nonce is not None else await self.nonce(key.public_key)
        return Tx.create(key, chain, n, kind, raw, cosigners=cosigners)

    async def send(
        self, key: crypto.Keypair, kind: str, body: Struct, *, cosigners: tuple[crypto.Keypair, ...] = (),
        wait: bool = True, timeout: float = 30.0, raise_rejected: bool = True,
    ) -> dict[str, Any]:
        """Sign `body` as a `kind` transaction from `key` with its next nonce, submit it."""
        tx = await self.build(key, kind, body, cosigners=cosigners)
        return await self.submit(tx, wait=wait, timeout=timeout, raise_rejected=raise_rejected)
