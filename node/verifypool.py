"""Transaction signature checks in worker processes: the node's other cores.

Checking a tx's ed25519 signatures is ~62 µs of CPU, about a third of what a lone
validator spends per tx, and the node's trio thread holds the GIL for the rest. A
`VerifyPool` keeps `workers` processes (`python -m node.verifyworker`, which imports
only `protocol`) and talks to them over their stdin/stdout pipes from the trio
loop itself: no thread per request, and several requests queued per worker, so a
worker never waits for the node's thread between two batches.

`check_each` sends chunks of txs ahead and hands them back in order, each once the
workers have vouched for its txs: those whose every signature is valid are marked
(`Tx.note_verified`, which also fills the replica's `VerifyCache` with the keys the
workers computed, so the same tx decoded from a proposal is a cache hit). A tx the
workers refused, or that a dead worker never answered, is simply checked again by
the replica, which always has the last word. A dead worker is restarted.

Only worth it with a spare core: `[node] verify_workers` (0 by default; `ekklesia
testnet` nodes share one machine's cores and keep 0).
"""

from __future__ import annotations

import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
import structlog
import trio

from node.verifyworker import HEADER, MAX_FRAME, frame
from protocol import crypto
from protocol.types import Tx

log = structlog.get_logger(__name__)

# Below this many txs a round trip to a worker (~0.1 ms) is not worth it.
MIN_BATCH = 8
RESTART_DELAY_S = 0.5  # between two starts of the same worker slot


class _Reply:
    __slots__ = ("event", "size", "vouched")

    def __init__(self, size: int) -> None:
        self.event = trio.Event()
        self.vouched: dict[bytes, list[bytes]] = {}  # tx hash -> its signatures' cache keys
        self.size = size

    def settle(self, vouched: dict[bytes, list[bytes]]) -> None:
        self.vouched = vouched
        self.event.set()


def _vouched(reply: Any) -> dict[bytes, list[bytes]]:
    """A worker's reply as {tx hash: cache keys}; anything malformed counts for nothing."""
    out: dict[bytes, list[bytes]] = {}
    if type(reply) is not list:
        return out
    for item in reply:
        if (type(item) is list and len(item) == 2 and type(item[0]) is bytes and type(item[1]) is list
                and all(type(k) is bytes for k in item[1])):
            out[item[0]] = item[1]
    return out


class _Worker:
    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.waiting: deque[_Reply] = deque()  # in the order their requests were written
        self.queued = 0  # txs sent and not answered yet
        self.send_lock = trio.Lock()


class VerifyPool:
    """Run with `await nursery.start(pool.run)`; it stops with its nursery."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a verify pool needs at least one worker")
        self.size = workers
        self._workers: list[_Worker | None] = [None] * workers
        self.failures = 0  # worker processes that died while the node ran

    @property
    def live(self) -> int:
        return sum(w is not None for w in self._workers)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for slot in range(self.size):
                await nursery.start(self._keep, slot)
            task_status.started()

    async def _keep(self, slot: int, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep worker `slot` running: start it, read its replies, restart it if it dies."""
        started = False
        while True:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "node.verifyworker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            worker = _Worker(proc)
            self._workers[slot] = worker
            if not started:
                task_status.started()
                started = True
            try:
                await self._read_replies(worker)
            finally:
                self._workers[slot] = None
                for reply in worker.waiting:
                    reply.settle({})  # unanswered: the replica checks these txs itself
                worker.waiting.clear()
                with trio.CancelScope(shield=True):
                    await _stop(proc)
            self.failures += 1
            log.warning("verify worker exited; restarting it", slot=slot, returncode=proc.returncode)
            await trio.sleep(RESTART_DELAY_S)

    async def _read_replies(self, worker: _Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        buf = bytearray()
        while True:
            while len(buf) < HEADER or len(buf) < HEADER + int.from_bytes(buf[:HEADER], "big"):
                if len(buf) >= HEADER and int.from_bytes(buf[:HEADER], "big") > MAX_FRAME:
                    return
                chunk = await stdout.receive_some()
                if not chunk:
                    return  # the worker exited
                buf += chunk
            size = int.from_bytes(buf[:HEADER], "big")
            payload = bytes(buf[HEADER : HEADER + size])
            del buf[: HEADER + size]
            if not worker.waiting:
                return  # a reply nobody asked for: the worker is broken
            reply = worker.waiting.popleft()
            worker.queued -= reply.size
            try:
                decoded = msgpack.unpackb(payload)
            except Exception:  # a garbled reply: drop this worker
                reply.settle({})
                return
            reply.settle(_vouched(decoded))

    async def _send(self, txs: Sequence[Tx]) -> _Reply:
        """Queue `txs` at the least busy worker; the reply settles empty if none runs."""
        reply = _Reply(len(txs))
        live = [w for w in self._workers if w is not None]
        if not live:
            reply.settle({})
            return reply
        worker = min(live, key=lambda w: w.queued)
        stdin = worker.proc.stdin
        assert stdin is not None
        data = frame(msgpack.packb([tx.encode() for tx in txs]))
        async with worker.send_lock:
            worker.waiting.append(reply)
            worker.queued += len(txs)
            # Shielded: a frame written in part would garble every later one.
            with trio.CancelScope(shield=True):
                try:
                    await stdin.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the worker is gone; its reader settles what it left waiting
        return reply

    async def check_each(
        self, chunks: Sequence[Sequence[Tx]], cache: crypto.VerifyCache, then: Callable[[Sequence[Tx]], None]
    ) -> int:
        """Have the workers check `chunks` (sent ahead, several in flight) and call
        `then(chunk)` for each in order once its valid txs are marked. Returns how many
        txs were marked. A chunk below MIN_BATCH unverified txs is handed on at once."""
        replies: list[_Reply | None] = [None] * len(chunks)
        sent = [trio.Event() for _ in chunks]
        noted = 0

        async def send_ahead() -> None:
            for i, chunk in enumerate(chunks):
                todo = [tx for tx in chunk if not tx._verified(tx.chain_id)]
                if len(todo) >= MIN_BATCH:
                    replies[i] = await self._send(todo)
                sent[i].set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_ahead)
            for i, chunk in enumerate(chunks):
                await sent[i].wait()
                reply = replies[i]
                if reply is not None:
                    await reply.event.wait()
                    vouched = reply.vouched
                    for tx in chunk:
                        keys = vouched.get(tx.hash)
                        if keys is not None:
                            tx.note_verified(cache, keys)
                            noted += 1
                then(chunk)
                if i + 1 < len(chunks):
                    await trio.sleep(0)  # let what arrived meanwhile run between chunks
        return noted

    async def check(self, txs: Sequence[Tx], cache: crypto.VerifyCache) -> int:
        """`check_each` of one chunk."""
        return await self.check_each([txs], cache, lambda _: None)


async def _stop(proc: trio.Process) -> None:
    if proc.stdin is not None:
        await proc.stdin.aclose()  # the worker exits at the end of its input
    with trio.move_on_after(2):
        await proc.wait()
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
    if proc.stdout is not None:
        await proc.stdout.aclose()
