"""A small HTTP client for a node's API: submit signed transactions, read JSON."""

from __future__ import annotations

from typing import Any

import httpx

from node.errors import NodeError
from protocol import crypto
from protocol.types import Tx
from protocol.wire import Struct


class ApiError(NodeError):
    pass


class Client:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base, timeout=timeout)
        self._chain_id: str | None = None

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, path: str) -> Any:
        try:
            r = await self.http.get(path)
        except httpx.HTTPError as exc:
            raise ApiError(f"{self.base}{path}: {exc}") from None
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code >= 400:
            err = body.get("error", {}) if isinstance(body, dict) else {}
            raise ApiError(f"{path}: {r.status_code} {err.get('message', r.text[:200])}")
        return body

    async def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = (await self.get("/v1/status"))["chain_id"]
        return self._chain_id

    async def nonce(self, pubkey: bytes) -> int:
        acct = await self.get(f"/v1/accounts/{crypto.address_hex(pubkey)}")
        return int(acct.get("nonce", 0))

    async def submit(self, tx: Tx, *, wait: bool = True, timeout: float = 30.0) -> dict[str, Any]:
        params = {"wait": "commit", "timeout": str(timeout)} if wait else {}
        try:
            r = await self.http.post(
                "/v1/txs", content=tx.encode(), params=params,
                headers={"content-type": "application/msgpack"}, timeout=timeout + 5,
            )
        except httpx.HTTPError as exc:
            raise ApiError(f"submit: {exc}") from None
        body = r.json()
        if r.status_code >= 400:
            raise ApiError(f"submit: {r.status_code} {body.get('error', {}).get('message', '')}")
        return body  # type: ignore[no-any-return]

    async def send(
        self, key: crypto.Keypair, kind: str, body: Struct, *, cosigners: tuple[crypto.Keypair, ...] = (),
        wait: bool = True,
    ) -> dict[str, Any]:
        """Sign `body` as a `kind` transaction from `key` with its next nonce, submit it."""
        tx = Tx.create(key, await self.chain_id(), await self.nonce(key.public_key), kind, body.encode(),
                       cosigners=cosigners)
        return await self.submit(tx, wait=wait)
