"""Micro benchmarks of the hot paths: codec, signatures (with and without the
verification cache), mempool admission and reaping, LevelDB block commit.

    .venv/bin/python -m bench.micro        (prints a table, writes bench/results/micro.json)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import rate, write
from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.mempool import Mempool, MempoolLimits
from protocol.types import ZERO_HASH, Commit, Tx, Vote, VoteType, make_block

CHAIN = "bench"


def _keys(n: int) -> list[crypto.Keypair]:
    return [crypto.Keypair(crypto.sha256(b"micro" + i.to_bytes(4, "big"))) for i in range(n)]


def codec_and_crypto() -> dict[str, float]:
    k = _keys(2)
    body = Transfer(crypto.address(k[1].public_key), 100, "lunch").encode()
    tx = Tx.create(k[0], CHAIN, 0, "transfer", body)
    raw = tx.encode()
    payload = tx.signing_payload()
    cache = crypto.VerifyCache()
    tx.verify_signatures(cache)
    return {
        "tx_encode_per_s": rate(tx.encode, 20_000),
        "tx_decode_per_s": rate(lambda: Tx.decode(raw), 20_000),
        "sign_per_s": rate(lambda: k[0].sign(CHAIN, crypto.KIND_TX, payload), 5_000),
        "verify_per_s": rate(lambda: tx.verify_signatures(), 3_000),
        "verify_cached_per_s": rate(lambda: tx.verify_signatures(cache), 20_000),
        "tx_bytes": len(raw),
    }


def verify_threads() -> dict[str, float]:
    """Does verification off the event loop pay? PyNaCl releases the GIL inside
    libsodium, but building the signed bytes holds it: compare 1 and 2 threads."""
    import threading
    import time

    k = _keys(1)[0]
    txs = [Tx.create(k, CHAIN, i, "transfer", b"") for i in range(4_000)]

    def work(chunk: list[Tx]) -> None:
        for t in chunk:
            t.verify_signatures()

    t0 = time.perf_counter()
    work(txs)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(txs[i::2],)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    two = time.perf_counter() - t0
    return {"verify_1_thread_per_s": len(txs) / one, "verify_2_threads_per_s": len(txs) / two}


def mempool() -> dict[str, float]:
    keys = _keys(200)
    to = crypto.address(keys[0].public_key)
    txs = [Tx.create(keys[i % 200], CHAIN, i // 200, "transfer", Transfer(to, 1, "").encode()) for i in range(10_000)]
    cache = crypto.VerifyCache()
    for t in txs:
        t.verify_signatures(cache)

    def fill() -> Mempool:
        pool = Mempool(
            stateless_check=lambda t: None if t.verify_signatures(cache) else "bad",
            stateful_check=lambda t: None,
            account_nonce=lambda pk: 0,
            limits=MempoolLimits(max_txs=20_000, max_per_sender=1_000),
        )
        for t in txs:
            pool.add(t)
        return pool

    pool = fill()
    assert len(pool) == len(txs)
    return {
        "mempool_add_per_s": rate(fill, 1, repeat=3) * len(txs),
        "mempool_reap_5000_per_s": rate(lambda: pool.reap(4 * 1024 * 1024, 5_000), 20) * 5_000,
    }


def leveldb_commit() -> dict[str, float]:
    from node.storage import NodeStore, TxResult

    keys = _keys(5)
    to = crypto.address(keys[0].public_key)
    with tempfile.TemporaryDirectory() as d:
        store = NodeStore.open_leveldb(Path(d) / "db")
        store.init_genesis(CHAIN, bytes(32), [(b"k", b"v")], bytes(32))
        prev, n, count = ZERO_HASH, 1_000, 50
        import time

        t = time.perf_counter()
        last = None
        for h in range(1, count + 1):
            txs = tuple(Tx.create(keys[i % 5], CHAIN, h * n + i, "transfer", Transfer(to, 1, "").encode())
                        for i in range(0 if h > 5 else n))
            block = make_block(chain_id=CHAIN, height=h, time_ms=h, prev_hash=prev, app_hash=bytes(32),
                               validators_hash=bytes(32), proposer=keys[0].public_key, txs=txs, last_commit=last)
            commit = Commit.from_votes([Vote.create(keys[0], CHAIN, VoteType.PRECOMMIT, h, 0, block.hash, h)])
            ws = [(b"acct/" + tx.hash[:8], b"x" * 64) for tx in txs]
            store.commit_block(block, commit, ws, bytes(32), [TxResult(0) for _ in txs])
            prev, last = block.hash, commit
        elapsed = time.perf_counter() - t
        store.close()
    return {"leveldb_block_commits_per_s": count / elapsed}


def main() -> None:
    from node.log import configure

    configure("warning")
    results = {**codec_and_crypto(), **verify_threads(), **mempool(), **leveldb_commit()}
    table = Table(title="micro benchmarks (one core)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in results.items():
        table.add_row(k, f"{v:,.0f}")
    Console().print(table)
    print(f"wrote {write('micro', results)}")


if __name__ == "__main__":
    main()
