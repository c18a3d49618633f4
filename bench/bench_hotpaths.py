"""What the node's hot paths cost per transaction, at the sizes a loaded testnet sees:
a full proposal (3,298 transfers ≈ the 496 KiB gossip cap), a gossiped tx batch
(1,660 transfers ≈ 256 KiB), and one transaction. One core, no network.

    .venv/bin/python bench/bench_hotpaths.py

Each figure is the best of 3 runs. "raw msgpack" rows are the same value tree
packed/unpacked by msgpack alone, to show what the canonical checks and the
struct layer add. Structs remember their encoding, digest and a successful
signature check, so "fresh" rows time the first call on a new instance (as for a
message just decoded from a peer) and "again" rows a repeated call on the same one.
Prints a table and writes bench/results/hotpaths.json.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.common import write  # noqa: E402
from protocol import codec, crypto, messages  # noqa: E402
from protocol.governance.accounts import Transfer  # noqa: E402
from protocol.types import ZERO_HASH, Proposal, Tx, make_block  # noqa: E402

CHAIN = "ekklesia-bench"
BLOCK_TXS = 3_298  # transfers in a proposal at the 496 KiB cap (p2p.max_message_bytes − 16 KiB)
BATCH_TXS = 1_660  # transfers in a 256 KiB gossip batch (mempool.batch_max_bytes)


def best(fn: Callable[..., Any], repeat: int = 3, fresh: Callable[[], Any] | None = None) -> float:
    """Best time of `fn()`, or of `fn(x)` on a new `x = fresh()` each run (not timed)."""
    t_best = float("inf")
    for _ in range(repeat):
        args = (fresh(),) if fresh is not None else ()
        t = time.perf_counter()
        fn(*args)
        t_best = min(t_best, time.perf_counter() - t)
    return t_best


def main() -> None:
    keys = [crypto.Keypair(crypto.sha256(b"hot" + i.to_bytes(4, "big"))) for i in range(200)]
    to = crypto.address(keys[0].public_key)
    body = Transfer(to, 1, "").encode()
    txs = tuple(Tx.create(keys[i % 200], CHAIN, i // 200, "transfer", body) for i in range(BLOCK_TXS))
    block = make_block(chain_id=CHAIN, height=2, time_ms=1, prev_hash=ZERO_HASH, app_hash=bytes(32),
                       validators_hash=bytes(32), proposer=keys[0].public_key, txs=txs)
    proposal = Proposal.create(keys[0], CHAIN, 2, 0, -1, block, 1)
    prop_bytes = messages.encode_tagged(proposal)
    batch = messages.TxBatch(txs[:BATCH_TXS])
    batch_bytes = batch.encode()
    tx = txs[0]
    raw_tx = tx.encode()
    tree = proposal.to_wire()
    cache = crypto.VerifyCache()
    for t in txs:
        t.verify_signatures(cache)

    n = BLOCK_TXS
    rows: list[tuple[str, float, int]] = []  # (what, seconds for the whole thing, per how many txs)

    def add(what: str, fn: Callable[..., Any], per: int, fresh: Callable[[], Any] | None = None) -> None:
        rows.append((what, best(fn, fresh=fresh), per))

    def fresh_txs() -> list[Tx]:
        return [Tx.from_wire(t.to_wire()) for t in txs[:1000]]

    add("proposal encode, fresh (encode_tagged)", messages.encode_tagged, n,
        fresh=lambda: Proposal.from_wire(tree))
    add("proposal encode, again", lambda: messages.encode_tagged(proposal), n)
    add("  raw msgpack.packb of the same tree", lambda: msgpack.packb(tree, use_bin_type=True), n)
    add("  codec._check_value of the tree", lambda: codec._check_value([0, tree], 0, encode=True), n)
    add("  Struct.to_wire (objects → tree)", lambda: proposal.to_wire(), n)
    add("proposal decode (decode_consensus)", lambda: messages.decode_consensus(prop_bytes), n)
    add("  codec.unpack (msgpack + checks + canonical re-pack)",
        lambda: codec.unpack(prop_bytes, 2 * len(prop_bytes)), n)
    add("  raw msgpack.unpackb", lambda: msgpack.unpackb(prop_bytes, raw=False), n)
    add("block hash (header digest)", lambda: block.hash, n)
    add("block.check_structure, fresh (tx root: every tx hash)", lambda b: b.check_structure(), n,
        fresh=lambda: Proposal.from_wire(tree).block)
    add("block.check_structure, again", lambda: block.check_structure(), n)
    add("block encode, fresh (size check; txs' encodings known)", lambda b: len(b.encode()), n,
        fresh=lambda: messages.decode_consensus(prop_bytes).block)  # type: ignore[union-attr]
    add("tx batch decode (decode_tx_batch)", lambda: messages.decode_tx_batch(batch_bytes), BATCH_TXS)
    add("tx batch encode, fresh txs", lambda ts: messages.TxBatch(tuple(ts)).encode(), 1000, fresh=fresh_txs)
    add("tx batch encode, txs' encodings known", lambda: messages.TxBatch(batch.txs).encode(), BATCH_TXS)
    add("tx.hash ×1000, fresh", lambda ts: [t.hash for t in ts], 1000, fresh=fresh_txs)
    add("tx.hash ×1000, again", lambda: [tx.hash for _ in range(1000)], 1000)
    add("tx.encode ×1000, fresh", lambda ts: [t.encode() for t in ts], 1000, fresh=fresh_txs)
    add("sha256 of the encoded tx ×1000", lambda: [crypto.sha256(raw_tx) for _ in range(1000)], 1000)
    add("Tx.decode ×1000", lambda: [Tx.decode(raw_tx) for _ in range(1000)], 1000)
    add("tx.verify_signatures ×1000, fresh, VerifyCache hit", lambda ts: [t.verify_signatures(cache) for t in ts],
        1000, fresh=fresh_txs)
    add("tx.verify_signatures ×1000, fresh, no cache", lambda ts: [t.verify_signatures() for t in ts], 1000,
        fresh=fresh_txs)
    add("tx.verify_signatures ×1000, again (instance memo)", lambda: [tx.verify_signatures() for _ in range(1000)],
        1000)
    add("Tx.create (sign) ×1000", lambda: [Tx.create(keys[1], CHAIN, 0, "transfer", body) for _ in range(1000)],
        1000)

    table = Table(title=f"hot paths, one core (proposal {len(prop_bytes):,} B = {BLOCK_TXS:,} transfers; "
                        f"batch {len(batch_bytes):,} B)", title_style="bold")
    for c in ("operation", "total", "µs per tx"):
        table.add_column(c, justify="left" if c == "operation" else "right")
    out: dict[str, Any] = {"proposal_bytes": len(prop_bytes), "block_txs": BLOCK_TXS, "batch_txs": BATCH_TXS,
                           "batch_bytes": len(batch_bytes), "tx_bytes": len(raw_tx), "ops": {}}
    for what, s, per in rows:
        table.add_row(what, f"{1e3 * s:,.1f} ms", f"{1e6 * s / per:,.2f}")
        out["ops"][what.strip()] = {"total_ms": round(1e3 * s, 3), "us_per_tx": round(1e6 * s / per, 3)}
    Console(width=max(120, Console().width)).print(table)
    print(f"wrote {write('hotpaths', out)}")


if __name__ == "__main__":
    main()
