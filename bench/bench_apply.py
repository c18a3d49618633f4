"""Apply rate of the governance state machine on one core, signatures excluded.

Every tx is verified once into a `VerifyCache` before timing, so what is measured
is execution: decoding, the admission checks (the signature check is a cache hit),
state reads and writes through the overlays, and the app hash. Run:

    .venv/bin/python bench/bench_apply.py [--txs N] [--blocks B]

Prints a table and writes bench/results/apply.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protocol import crypto  # noqa: E402
from protocol.crypto import Keypair, VerifyCache  # noqa: E402
from protocol.governance import Genesis, app_hash, apply_block, init_state, queries  # noqa: E402
from protocol.governance.accounts import Transfer  # noqa: E402
from protocol.governance.actions import ActionType, EnactLaw, TreasurySpend  # noqa: E402
from protocol.governance.identity import key_digest  # noqa: E402
from protocol.governance.proposals import CastVote, Choice, SubmitProposal  # noqa: E402
from protocol.kv import MemoryKV  # noqa: E402
from protocol.types import ZERO_HASH, Block, Tx, make_block  # noqa: E402

CHAIN = "bench"
TARGET = 20_000


def key(i: int) -> Keypair:
    return Keypair(crypto.sha256(b"bench" + i.to_bytes(4, "big")))


class Bench:
    def __init__(self, n: int) -> None:
        self.keys = [key(i) for i in range(n)]
        nexts = [key(1_000_000 + i) for i in range(n)]
        validator = key(9_999_999)
        fast = {"voting_delay": 1, "voting_period": 10_000, "min_deposit": 1}
        doc = {
            "chain_id": CHAIN,
            "genesis_time_ms": 0,
            "validators": [{"pubkey": validator.public_key.hex(), "power": 1}],
            "accounts": [{"pubkey": k.public_key.hex(), "balance": 10**9} for k in self.keys],
            "treasury": 10**12,
            "identities": [
                {"pubkey": k.public_key.hex(), "next_key_digest": key_digest(x.public_key).hex(), "resident": True}
                for k, x in zip(self.keys, nexts, strict=True)
            ],
            "constitution": [{"number": 1, "text": "Bench."}],
            "params": {"tracks": {"law": fast, "treasury": fast}},
        }
        self.genesis = Genesis.from_json(json.dumps(doc))
        self.state = MemoryKV()
        self.state.apply(init_state(self.genesis))
        self.cache = VerifyCache(capacity=4 * n + 1000)
        self.proposer = validator.public_key
        self.time = 0
        self.prev = ZERO_HASH

    def nonce(self, k: Keypair) -> int:
        return queries.account_nonce(self.state, k.public_key)

    def block(self, txs: list[Tx]) -> Block:
        self.time += 1000
        return make_block(
            chain_id=CHAIN,
            height=queries.last_height(self.state) + 1,
            time_ms=self.time,
            prev_hash=self.prev,
            app_hash=app_hash(self.state),
            validators_hash=ZERO_HASH,
            proposer=self.proposer,
            txs=tuple(txs),
        )

    def commit(self, blk: Block) -> tuple[float, float]:
        """Apply and commit; returns (apply seconds, commit seconds)."""
        for tx in blk.txs:  # pre-warm: signatures are not what this measures
            assert tx.verify_signatures(self.cache)
        gc.collect()
        t0 = time.perf_counter()
        res = apply_block(self.state, blk, cache=self.cache)
        t1 = time.perf_counter()
        self.state.apply(res.write_set)
        t2 = time.perf_counter()
        bad = [r for r in res.tx_results if not r.ok]
        if bad:
            raise SystemExit(f"benchmark txs failed: {bad[0]}")
        self.prev = blk.hash
        return t1 - t0, t2 - t1


def run(kind: str, b: Bench, make: Callable[[int], list[Tx]], blocks: int) -> dict[str, object]:
    """`make(i)` builds block i's txs against the state left by block i-1."""
    applies, commits, sizes = [], [], []
    for i in range(blocks):
        txs = make(i)
        a, c = b.commit(b.block(txs))
        applies.append(a)
        commits.append(c)
        sizes.append(len(txs))
    count, total = sum(sizes), sum(applies)
    return {
        "workload": kind,
        "txs": count,
        "blocks": blocks,
        "apply_s": round(total, 4),
        "tx_per_s": int(count / total),
        "median_block_tx_per_s": int(statistics.median(n / a for n, a in zip(sizes, applies, strict=True))),
        "commit_s": round(sum(commits), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txs", type=int, default=5_000, help="txs per block (= senders)")
    ap.add_argument("--blocks", type=int, default=4)
    args = ap.parse_args()
    n = args.txs
    b = Bench(n)
    rows = []

    def transfers(_: int) -> list[Tx]:
        return [
            Tx.create(k, CHAIN, b.nonce(k), "transfer", Transfer(b.keys[(i + 1) % n].address, 7, "").encode())
            for i, k in enumerate(b.keys)
        ]

    rows.append(run("transfer", b, transfers, args.blocks))

    # two proposals: resident-weighted (law) and token-weighted (treasury)
    p = b.keys[0]
    law = SubmitProposal("law", "", 1, ActionType.ENACT_LAW, EnactLaw("x").encode())
    spend = SubmitProposal("spend", "", 1, ActionType.TREASURY_SPEND, TreasurySpend(p.address, 1, "").encode())
    b.commit(b.block([Tx.create(p, CHAIN, b.nonce(p), "proposal.submit", law.encode()),
                      Tx.create(p, CHAIN, b.nonce(p) + 1, "proposal.submit", spend.encode())]))
    b.commit(b.block([]))
    ids = [x.id for x in queries.proposals(b.state)]

    def votes(pid: int, round_: int) -> list[Tx]:
        return [
            Tx.create(k, CHAIN, b.nonce(k), "proposal.vote", CastVote(pid, Choice(1 + (i + round_) % 4)).encode())
            for i, k in enumerate(b.keys)
        ]

    rows.append(run("vote (residents)", b, lambda r: votes(ids[0], r), args.blocks))
    rows.append(run("vote (tokens, locks)", b, lambda r: votes(ids[1], r), args.blocks))

    print(f"governance apply rate, signatures pre-verified; {n} txs per block, Python {platform.python_version()}")
    print(f"{'workload':<22} {'txs':>7} {'apply s':>8} {'tx/s':>8} {'median tx/s':>12} {'commit s':>9}")
    for r in rows:
        print(
            f"{r['workload']:<22} {r['txs']:>7} {r['apply_s']:>8} {r['tx_per_s']:>8} "
            f"{r['median_block_tx_per_s']:>12} {r['commit_s']:>9}"
        )
    worst = min(int(str(r["tx_per_s"])) for r in rows)
    print(f"target {TARGET} tx/s: {'met' if worst >= TARGET else 'NOT met'} (slowest workload {worst} tx/s)")
    out = ROOT / "bench" / "results" / "apply.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "txs_per_block": n, "target_tx_per_s": TARGET,
                               "results": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
