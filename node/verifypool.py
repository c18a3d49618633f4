"""Transaction signature checks in worker processes: the node's other cores.

Checking a tx's ed25519 signatures is ~62 µs of CPU, about a third of what a lone
validator spends per tx, and the node's trio thread holds the GIL for the rest. A
`VerifyPool` sends the encodings of a batch of txs to worker processes (started
with `spawn`: a worker imports only `protocol`) and gets back the hashes of those
whose every signature is valid. The node then records that on the tx objects and
in the replica's `VerifyCache` (`Tx.note_verified`), so the replica's own check
is a cache hit; a tx the workers refused, or that a failed worker never answered,
is simply checked again by the replica, which always has the last word.

Only worth it with a spare core: `[node] verify_workers` (0 by default; `ekklesia
testnet` nodes share one machine's cores and keep 0).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import msgpack
import structlog
import trio

from protocol import crypto
from protocol.errors import DecodeError
from protocol.types import Tx

log = structlog.get_logger(__name__)

# Below this many txs a round trip to a worker (~0.1 ms) is not worth it.
MIN_BATCH = 8


def verified_hashes(encoded: Sequence[bytes]) -> list[bytes]:
    """The hashes of the encoded txs whose every signature verifies (what a worker
    computes; pure, so a test can call it in-process)."""
    ok: list[bytes] = []
    for raw in encoded:
        try:
            tx = Tx.decode(raw)
        except DecodeError:
            continue
        if all(crypto.verify_raw(p, m, s) for p, m, s in tx.signature_checks()):
            ok.append(hashlib.sha256(raw).digest())
    return ok


def _serve(conn: Connection) -> None:
    """A worker's loop: a msgpack list of encoded txs in, a list of hashes out."""
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the node closed the pipe or exited
        conn.send_bytes(msgpack.packb(verified_hashes(msgpack.unpackb(request))))


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), name="ekklesia-verify", daemon=True)
        self.process.start()
        child.close()

    def roundtrip(self, request: bytes) -> list[bytes]:
        self.conn.send_bytes(request)
        return list(msgpack.unpackb(self.conn.recv_bytes()))

    def close(self) -> None:
        self.conn.close()
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)


class VerifyPool:
    """`workers` processes; `check` spreads a batch over the idle ones. Start with
    `start()` (blocking: run it in a thread), stop with `close()`."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a verify pool needs at least one worker")
        self.size = workers
        self._ctx = multiprocessing.get_context("spawn")
        self._idle_send, self._idle_recv = trio.open_memory_channel[_Worker](workers)
        self._all: list[_Worker] = []
        self.failures = 0

    def start(self) -> None:
        for _ in range(self.size):
            w = _Worker(self._ctx)
            self._all.append(w)
            self._idle_send.send_nowait(w)

    def close(self) -> None:
        for w in self._all:
            w.close()
        self._all.clear()

    async def check(self, txs: Sequence[Tx], cache: crypto.VerifyCache) -> int:
        """Verify `txs` in the workers and note the valid ones; returns how many were
        noted. Never raises for a worker's failure (the replica checks what is left)."""
        todo = [tx for tx in txs if not tx._verified(tx.chain_id)]
        if len(todo) < MIN_BATCH:
            return 0
        parts = min(self.size, max(1, len(todo) // MIN_BATCH))
        step = -(-len(todo) // parts)
        ok: set[bytes] = set()
        async with trio.open_nursery() as nursery:
            for i in range(0, len(todo), step):
                nursery.start_soon(self._one, todo[i : i + step], ok)
        noted = 0
        for tx in todo:
            if tx.hash in ok:
                tx.note_verified(cache)
                noted += 1
        return noted

    async def _one(self, txs: Sequence[Tx], ok: set[bytes]) -> None:
        worker = await self._idle_recv.receive()
        request = msgpack.packb([tx.encode() for tx in txs])
        try:
            # Not abandoned on cancel: the pipe must not be left mid-exchange.
            ok.update(await trio.to_thread.run_sync(worker.roundtrip, request))
        except (EOFError, OSError) as exc:
            self.failures += 1
            log.warning("verify worker failed; restarting it", error=repr(exc))
            worker = await trio.to_thread.run_sync(self._replace, worker)
        finally:
            self._idle_send.send_nowait(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.close()
        fresh = _Worker(self._ctx)
        self._all[self._all.index(worker)] = fresh
        return fresh
