"""Crash loop: a real 4-validator testnet under load; SIGKILL a random validator at
random moments (so some kills land during a block commit) and restart it. Then
check what must hold after any number of crashes:

* no conflicting signatures: no duplicate-vote evidence against any validator,
* every node has identical blocks and app hashes at every height,
* every transaction acknowledged with wait=commit is in a block on every node.

    python -m simulations.real.crashloop [--kills 20] [--seed S] [--validators 4]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from node.keys import Keystore
from node.testnet import DEMO_ACCOUNTS, init_testnet
from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.types import Tx
from simulations.real.procs import NodeProc, until


@dataclass
class Report:
    kills: int = 0
    acked: list[str] = field(default_factory=list)
    submit_errors: int = 0
    recoveries_s: list[float] = field(default_factory=list)
    heights: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _load(procs: list[NodeProc], keys: list[crypto.Keypair], chain_id: str, stop: threading.Event,
          report: Report, rng: random.Random) -> None:
    """Each sender submits one transfer at a time with wait=commit to a live node."""
    nonces = {k.public_key: 0 for k in keys}
    to = crypto.address(keys[0].public_key)
    with httpx.Client(timeout=20.0) as http:
        while not stop.is_set():
            for k in keys:
                if stop.is_set():
                    return
                live = [p for p in procs if p.alive]
                if not live:
                    time.sleep(0.2)
                    continue
                node = rng.choice(live)
                tx = Tx.create(k, chain_id, nonces[k.public_key], "transfer", Transfer(to, 1, "crashloop").encode())
                try:
                    r = http.post(f"{node.api}/v1/txs", params={"wait": "commit", "timeout": "10"},
                                  content=tx.encode(), headers={"content-type": "application/msgpack"})
                    body = r.json()
                except (httpx.HTTPError, ValueError):
                    report.submit_errors += 1
                    acct = _account_nonce(procs, k)
                    if acct is not None:
                        nonces[k.public_key] = acct
                    continue
                if body.get("status") == "committed":
                    report.acked.append(body["hash"])
                    nonces[k.public_key] += 1
                else:
                    acct = _account_nonce(procs, k)
                    if acct is not None:
                        nonces[k.public_key] = acct


def _account_nonce(procs: list[NodeProc], k: crypto.Keypair) -> int | None:
    for p in procs:
        if p.alive:
            a = p.get(f"/v1/accounts/{crypto.address_hex(k.public_key)}")
            if a is not None:
                return int(a["nonce"])
    return None


def run(kills: int, seed: int, validators: int, base_port: int, workdir: Path, console: Console) -> Report:
    rng = random.Random(seed)
    nodes = init_testnet(workdir / "tn", validators, base_port=base_port, genesis_time_ms=time.time_ns() // 1_000_000)
    procs = [NodeProc(n.name, n.home, n.api_port) for n in nodes]
    store = Keystore(workdir / "tn" / "keys")
    keys = [store.keypair(name, None) for name in DEMO_ACCOUNTS[1:]]
    report = Report()
    stop = threading.Event()
    try:
        for p in procs:
            p.start()
        until(lambda: min(p.height() for p in procs) >= 2, 90, "the testnet to start")
        chain_id = procs[0].get("/v1/status")["chain_id"]
        loader = threading.Thread(target=_load, args=(procs, keys, chain_id, stop, report, rng), daemon=True)
        loader.start()
        for i in range(kills):
            time.sleep(rng.uniform(0.5, 3.0))
            victim = rng.choice(procs[: max(1, validators)])
            before = max(p.height() for p in procs if p.alive)
            victim.kill()
            report.kills += 1
            time.sleep(rng.uniform(0.2, 2.0))
            victim.start()
            took = until(lambda v=victim, b=before: v.height() >= b, 120, f"{victim.name} to recover")
            report.recoveries_s.append(took)
            console.print(f"kill {i + 1}/{kills}: {victim.name} at height ≥{before}, back in {took:.1f} s")
        stop.set()
        loader.join(30)
        top = max(p.height() for p in procs)
        until(lambda: min(p.height() for p in procs) >= top, 120, "every node to reach the same height")
        _check(procs, report)
    finally:
        stop.set()
        codes = {p.name: p.stop() for p in procs}
        if any(c != 0 for c in codes.values()):
            report.problems.append(f"unclean exits after SIGTERM: {codes}")
    return report


def _check(procs: list[NodeProc], report: Report) -> None:
    top = min(p.height() for p in procs)
    report.heights = {p.name: p.height() for p in procs}
    in_blocks: set[str] = set()
    for h in range(1, top + 1):
        blocks = [p.get(f"/v1/blocks/{h}", 5.0) for p in procs]
        if any(b is None for b in blocks):
            report.problems.append(f"height {h}: a node did not return the block")
            continue
        if len({b["hash"] for b in blocks}) != 1 or len({b["app_hash"] for b in blocks}) != 1:
            report.problems.append(f"height {h}: nodes disagree")
        for b in blocks:
            if b["evidence"]:
                report.problems.append(f"height {h}: evidence against {[e.get('validator') for e in b['evidence']]}")
        in_blocks.update(blocks[0]["txs"])
    lost = [t for t in report.acked if t not in in_blocks]
    if lost:
        report.problems.append(f"{len(lost)} acknowledged transactions missing, e.g. {lost[:3]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--base-port", type=int, default=37656)
    ap.add_argument("--json", dest="as_json", action="store_true")
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="ekklesia-crashloop-") as d:
        report = run(args.kills, args.seed, args.validators, args.base_port, Path(d), console)
    t = Table(title="crash loop")
    t.add_column("measure")
    t.add_column("value", justify="right")
    rec = sorted(report.recoveries_s) or [0.0]
    for k, v in [("kills", report.kills), ("acknowledged txs", len(report.acked)),
                 ("submit errors (node killed mid-request)", report.submit_errors),
                 ("recovery p50 / max (s)", f"{rec[len(rec) // 2]:.1f} / {rec[-1]:.1f}"),
                 ("final heights", json.dumps(report.heights)), ("problems", len(report.problems))]:
        t.add_row(k, str(v))
    console.print(t)
    for p in report.problems:
        console.print(f"[red]{p}")
    if args.as_json:
        print(json.dumps(report.__dict__, indent=2))
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
