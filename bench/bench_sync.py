"""Block sync speed (issue #8): a fresh node 10,000 blocks behind catches up over libp2p.

1. Build: a 1-validator testnet runs with `min_block_interval_ms = 10` (and short
   timeouts) until it has `--blocks` blocks (~100 blocks/s). With `--tx-rate R` an open-loop
   generator also offers R transfers/s while it builds, so blocks carry txs.
2. Freeze: the validator is restarted with `create_empty_blocks = false`, so the
   chain stops growing (the target does not move while the follower syncs).
3. Sync: a new full node (same genesis, no validator key, the validator as its only
   peer) is started and polled (`GET /v1/status` every 0.25 s) until its height
   reaches the validator's. It fetches blocks with their commits in windows of 32
   (`node/sync.py`), verifies every commit and applies every block.

`blocks_per_s` = blocks synced / time from the follower's first synced block to the
last (process start, libp2p start-up and the first status round excluded; the
figure including them is `blocks_per_s_from_start`). Also reported: CPU and RSS
of both processes while syncing.

    .venv/bin/python bench/bench_sync.py                 # 10,000 empty blocks
    .venv/bin/python bench/bench_sync.py --blocks 2000   # quick
    .venv/bin/python bench/bench_sync.py --tx-rate 1000  # blocks with transactions

Prints a table and writes bench/results/sync.json. Every node process is stopped
on exit (SIGTERM, then SIGKILL after 10 s).
"""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import trio  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.cluster import (  # noqa: E402
    Cluster,
    NodeProc,
    free_base_port,
    install_signal_handlers,
    make_testnet,
    metric,
    parse_metrics,
    start_node,
    stop_all,
)
from bench.common import write  # noqa: E402
from bench.loadgen import Tracker, presign, run_step, senders_for  # noqa: E402
from node.config import Config, render  # noqa: E402
from node.home import Home  # noqa: E402
from node.keys import write_private_file  # noqa: E402
from node.testnet import TestnetNode  # noqa: E402

CHAIN_ID = "ekklesia-bench"
TARGET_BLOCKS_PER_S = 500
BUILD_ENV = {
    # ~95 blocks/s. At 0-1 ms a lone validator makes ~250 blocks/s but publishes faster than
    # py-libp2p sends (hundreds of "outbox full" warnings per second); before commit 4da2dec
    # it never left Node.feed() at all (API down, SIGTERM ignored).
    "EKKLESIA_CONSENSUS_MIN_BLOCK_INTERVAL_MS": "10",
    "EKKLESIA_CONSENSUS_TIMEOUT_PROPOSE_MS": "200",
    "EKKLESIA_CONSENSUS_TIMEOUT_PREVOTE_MS": "100",
    "EKKLESIA_CONSENSUS_TIMEOUT_PRECOMMIT_MS": "100",
    "EKKLESIA_NODE_LOG_LEVEL": "warning",  # one info line per block otherwise
}
FREEZE_ENV = {**BUILD_ENV, "EKKLESIA_CONSENSUS_CREATE_EMPTY_BLOCKS": "false"}
console = Console(width=max(120, Console().width))


def follower_home(root: Path, validator: TestnetNode, genesis_text: str, base_port: int) -> TestnetNode:
    """A full node (no validator key) whose only peer is the validator."""
    home = Home(root)
    home.create_dirs()
    p2p, api = base_port + 10, base_port + 11
    cfg = Config.from_mapping({
        "node": {"moniker": "follower", "log_level": "warning"},
        "p2p": {"listen": f"/ip4/127.0.0.1/tcp/{p2p}",
                "peers": [f"/ip4/127.0.0.1/tcp/{validator.p2p_port}/p2p/{validator.peer_id}"], "min_peers": 1},
        "api": {"listen": f"127.0.0.1:{api}"},
        "metrics": {"enabled": True},
    }, env={})
    write_private_file(home.config_file, render(cfg).encode(), what="config file")
    home.genesis_file.write_text(genesis_text)
    return TestnetNode("follower", root, p2p, api, "", "")


async def _status(http: httpx.AsyncClient, proc: NodeProc) -> dict[str, Any] | None:
    try:
        r = await http.get(f"{proc.api}/v1/status", timeout=5.0)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


async def build_chain(http: httpx.AsyncClient, cluster: Cluster, blocks: int, tx_rate: float,
                      timeout: float) -> dict[str, Any]:
    proc = cluster.procs[0]
    t0 = time.monotonic()
    heights: list[tuple[float, int]] = []
    txs_offered = 0

    async def watch(cancel: trio.CancelScope) -> None:
        while True:
            s = await _status(http, proc)
            if s is not None:
                heights.append((time.monotonic() - t0, s["height"]))
                if s["height"] >= blocks:
                    cancel.cancel()
                    return
            if not proc.alive:
                raise RuntimeError(f"validator exited ({proc.proc.returncode}) while building")
            await trio.sleep(0.5)

    with trio.fail_after(timeout):
        async with trio.open_nursery() as n:
            n.start_soon(watch, n.cancel_scope)
            if tx_rate > 0:
                tracker = Tracker(proc.api)
                await n.start(tracker.run, http)
                first = 0
                while True:  # 20 s load steps until the watcher has seen enough blocks
                    plan = await trio.to_thread.run_sync(presign, CHAIN_ID, tx_rate, 20.0, 1, first)
                    first += plan.senders
                    txs_offered += plan.n_txs
                    await run_step(http, cluster, plan, tracker, drain_s=0)
                    tracker.forget(list(tracker.submitted))
            else:
                await trio.sleep_forever()
    elapsed = time.monotonic() - t0
    final = heights[-1][1] if heights else 0
    return {"build_s": round(elapsed, 1), "build_blocks_per_s": round(final / elapsed, 1), "height": final,
            "txs_offered": txs_offered}


async def amain(a: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    base = free_base_port(2)
    steps = math.ceil(a.build_timeout / 20) + 1  # fresh senders for every 20 s load step
    accounts = steps * senders_for(a.tx_rate, 1) if a.tx_rate else 0
    nodes = make_testnet(workdir / "chain", 1, base_port=base, accounts=accounts)
    validator = nodes[0]
    out: dict[str, Any] = {"target_blocks": a.blocks, "tx_rate_while_building": a.tx_rate,
                           "target_blocks_per_s": TARGET_BLOCKS_PER_S}
    async with httpx.AsyncClient(timeout=30.0) as http:
        # 1. build
        cluster = Cluster([validator], dict(BUILD_ENV))
        cluster.start()
        try:
            await cluster.wait_ready(http, min_height=1, timeout=60)
            console.print(f"building {a.blocks:,} blocks on a 1-validator chain"
                          + (f" with {a.tx_rate:,.0f} tx/s offered" if a.tx_rate else " (empty blocks)") + " …")
            out.update(await build_chain(http, cluster, a.blocks, a.tx_rate, a.build_timeout))
        finally:
            cluster.stop()
        console.print(f"  built {out['height']:,} blocks in {out['build_s']} s ({out['build_blocks_per_s']} blocks/s)")
        # 2. freeze
        cluster = Cluster([validator], dict(FREEZE_ENV))
        cluster.start()
        follower: NodeProc | None = None
        try:
            await cluster.wait_ready(http, min_height=1, timeout=60)
            await trio.sleep(1.0)
            s = await _status(http, cluster.procs[0])
            assert s is not None
            target = s["height"]
            out["chain_height"] = target
            out["chain_store_mb"] = round(sum(f.stat().st_size for f in (validator.home / "data").rglob("*")
                                              if f.is_file()) / 2**20, 1)
            # 3. sync
            fnode = follower_home(workdir / "follower", validator,
                                  (validator.home / "config" / "genesis.json").read_text(), base)
            server = cluster.procs[0]
            server_cpu0 = server.cpu_s()
            t_start = time.monotonic()
            follower = start_node(fnode)
            spy = None
            if a.profile:
                spy_out = workdir / "profile-follower.txt"
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                                        "--nolineno", "--rate", "100", "-o", str(spy_out),
                                        "-p", str(follower.proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples: list[tuple[float, int]] = []
            rss_f: list[float] = []
            rss_s: list[float] = []
            console.print(f"syncing a fresh full node to height {target:,} …")
            with trio.fail_after(a.sync_timeout):
                while True:
                    if not follower.alive:
                        raise RuntimeError(f"follower exited ({follower.proc.returncode})")
                    st = await _status(http, follower)
                    now = time.monotonic() - t_start
                    rss_f.append(follower.rss_mb())
                    rss_s.append(server.rss_mb())
                    if st is not None:
                        samples.append((now, st["height"]))
                        if st["height"] >= target:
                            break
                    await trio.sleep(0.25)
            t_done = samples[-1][0]
            fcpu = follower.cpu_s()
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                try:
                    spy.wait(30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                if spy_out.exists():
                    from bench.profile_testnet import parse_raw

                    prof = parse_raw(spy_out)
                    tot = max(1, prof["total"])
                    out["profile"] = {
                        "active_samples": prof["total"],
                        "self_top": [(f, round(100 * n / tot, 1)) for f, n in prof["self"].most_common(20)],
                        "inclusive_top": [(f, round(100 * n / tot, 1)) for f, n in prof["inclusive"].most_common(40)],
                        "groups_inclusive": [(f, round(100 * n / tot, 1)) for f, n in prof["groups"].most_common()],
                    }
            scpu = server.cpu_s() - server_cpu0
            first = next((t for t, h in samples if h > 0), t_done)
            h_first = next((h for t, h in samples if h > 0), 0)
            fm = parse_metrics((await http.get(f"{follower.api}/metrics")).text)
            span = max(1e-6, t_done - first)
            out.update({
                "blocks_synced": target,
                "sync_s": round(span, 2),
                "blocks_per_s": round((target - h_first) / span, 1),
                "blocks_per_s_from_start": round(target / t_done, 1),
                "time_to_first_block_s": round(first, 2),
                "follower_cpu_s": round(fcpu, 1),
                "follower_cpu_pct": round(100 * fcpu / t_done, 1),
                "server_cpu_pct": round(100 * scpu / t_done, 1),
                "follower_rss_mb_max": round(max(rss_f), 1),
                "server_rss_mb_max": round(max(rss_s), 1),
                "synced_blocks_metric": int(metric(fm, "ekklesia_sync_blocks_total")),
                "chain_txs": int(metric(fm, "ekklesia_txs_committed_total")),
                "txs_per_s": round(metric(fm, "ekklesia_txs_committed_total") / span, 1),
                "progress": [(round(t, 2), h) for t, h in samples[:: max(1, len(samples) // 40)]],
            })
        finally:
            if follower is not None:
                from bench.cluster import _terminate

                _terminate([follower.proc])
            cluster.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=10_000, help="chain length to sync (default 10,000)")
    p.add_argument("--quick", action="store_true", help="2,000 blocks")
    p.add_argument("--tx-rate", type=float, default=0.0, help="transfers/s offered while building (default 0)")
    p.add_argument("--build-timeout", type=float, default=900.0)
    p.add_argument("--sync-timeout", type=float, default=600.0)
    p.add_argument("--profile", action="store_true", help="py-spy the follower while it syncs (needs py-spy)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--name", default="sync")
    a = p.parse_args(argv)
    if a.quick:
        a.blocks = min(a.blocks, 2_000)
    install_signal_handlers()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="ekklesia-sync-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = trio.run(amain, a, workdir)
    finally:
        stop_all()
        if not a.keep and a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    t = Table(title="block sync: a fresh full node catching up over libp2p", title_style="bold")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k in ("chain_height", "chain_txs", "chain_store_mb", "build_blocks_per_s", "blocks_per_s", "txs_per_s",
              "blocks_per_s_from_start", "sync_s", "time_to_first_block_s", "follower_cpu_pct", "server_cpu_pct",
              "follower_rss_mb_max", "server_rss_mb_max"):
        v = result.get(k)
        t.add_row(k, f"{v:,}" if isinstance(v, int | float) else str(v))
    console.print(t)
    if "profile" in result:
        pt = Table(title="follower while syncing: subsystems (inclusive % of active samples)", title_style="bold")
        pt.add_column("%", justify="right")
        pt.add_column("subsystem / function")
        for f, pct in result["profile"]["groups_inclusive"] + [("—", 0.0)] + result["profile"]["inclusive_top"][:25]:
            pt.add_row(f"{pct:.1f}" if f != "—" else "", f)
        console.print(pt)
    ok = result.get("blocks_per_s", 0) >= TARGET_BLOCKS_PER_S
    console.print(f"target ≥ {TARGET_BLOCKS_PER_S} blocks/s: " + ("[green]met" if ok else
                  f"[red]not met (gap {TARGET_BLOCKS_PER_S - result.get('blocks_per_s', 0):,.0f} blocks/s)"))
    console.print(f"wrote {write(a.name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
