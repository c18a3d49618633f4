"""Signature checks in worker processes: only valid txs are noted, the replica's cache
learns them, chunks come back in order, and a dead worker costs nothing but a
re-check (and is restarted)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import msgpack
import trio

from node.verifypool import VerifyPool
from node.verifyworker import HEADER, frame, serve, vouch
from protocol import crypto
from protocol.types import Tx

CHAIN = "verify-pool-test"


def _txs(n: int, *, forged_every: int = 0, first: int = 0) -> list[Tx]:
    key = crypto.Keypair(bytes([7]) * 32)
    out = []
    for i in range(first, first + n):
        tx = Tx.create(key, CHAIN, i, "test", b"body %d" % i)
        if forged_every and i % forged_every == 0:
            tx = Tx(CHAIN, tx.sender, i, "test", b"forged %d" % i, (), tx.signature)
        out.append(tx)
    return out


def test_vouch_keeps_only_valid_txs_with_their_cache_keys() -> None:
    good, forged = _txs(2)[0], _txs(1, forged_every=1)[0]
    [(h, keys)] = vouch([good.encode(), forged.encode(), b"\x93garbage"])
    assert h == good.hash and keys == [crypto.cache_key(*c) for c in good.signature_checks()]


def test_the_worker_answers_each_frame_in_order_and_stops_at_end_of_input() -> None:
    a, b = _txs(2)
    inp = io.BytesIO(frame(msgpack.packb([a.encode()])) + frame(msgpack.packb([b.encode(), b"x"])) + b"\x00\x00")
    out = io.BytesIO()
    serve(inp, out)  # returns on the truncated third frame
    data = out.getvalue()
    first = int.from_bytes(data[:HEADER], "big")
    assert [h for h, _ in msgpack.unpackb(data[HEADER : HEADER + first])] == [a.hash]
    assert [h for h, _ in msgpack.unpackb(data[2 * HEADER + first :])] == [b.hash]


async def _with_pool(workers: int, body) -> None:  # type: ignore[no-untyped-def]
    pool = VerifyPool(workers)
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        await body(pool)
        nursery.cancel_scope.cancel()


def test_valid_txs_are_noted_in_order_and_teach_the_cache() -> None:
    async def body(pool: VerifyPool) -> None:
        chunks = [_txs(40, forged_every=5, first=40 * k) for k in range(4)] + [_txs(3, first=500)]
        cache = crypto.VerifyCache()
        handed: list[Sequence[Tx]] = []

        def then(chunk: Sequence[Tx]) -> None:
            # Every chunk before this one was handed on already, and this one is settled.
            assert all(tx._verified(CHAIN) == (tx.nonce % 5 != 0) for tx in chunk if tx.nonce < 500)
            handed.append(chunk)

        assert await pool.check_each(chunks, cache, then) == 4 * 32
        assert handed == chunks
        assert not any(tx._verified(CHAIN) for tx in chunks[-1])  # too few: left to the replica
        again = Tx.decode(chunks[0][1].encode())  # as decoded from a proposal
        assert again.verify_signatures(cache) and cache.hits == 1 and cache.misses == 0
        assert not chunks[0][0].verify_signatures(cache)  # a forged one still fails

    trio.run(_with_pool, 2, body)


def test_a_dead_worker_is_restarted() -> None:
    async def body(pool: VerifyPool) -> None:
        for w in list(pool._workers):
            assert w is not None
            w.proc.kill()
        with trio.fail_after(20):
            while pool.failures < 2 or pool.live < 2:  # both noticed, then both restarted
                await trio.sleep(0.05)
        fresh = _txs(32)
        assert await pool.check(fresh, crypto.VerifyCache()) == 32

    trio.run(_with_pool, 2, body)


def test_with_no_live_worker_the_chunks_still_pass_unnoted() -> None:
    async def body(pool: VerifyPool) -> None:
        pool._workers = [None]  # as between a worker's death and its restart
        txs = _txs(16)
        handed: list[Sequence[Tx]] = []
        assert await pool.check_each([txs], crypto.VerifyCache(), handed.append) == 0
        assert handed == [txs] and not any(tx._verified(CHAIN) for tx in txs)

    trio.run(_with_pool, 1, body)

