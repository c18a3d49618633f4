"""Testnet load benchmark (issue #8): real node processes, real libp2p on 127.0.0.1.

A fresh local testnet (`ekklesia testnet init` settings, plus funded benchmark
accounts in the genesis) is started with one OS process per validator. An
open-loop generator (bench/loadgen.py) then offers signed `transfer`
transactions at each rate in turn — pre-signed before the step, submitted in
50 ms batches to `/v1/txs/batch` spread over all nodes — and follows node0's
committed blocks. Per step it reports committed tx/s, submit→commit latency,
CPU and RSS per node, bytes on the wire per committed tx, blocks/s, rounds per
height and consensus messages per height. The growth series repeats a short
version at 4, 7 and 10 validators.

    .venv/bin/python bench/bench_testnet.py            # full: ~15 min
    .venv/bin/python bench/bench_testnet.py --quick    # ~3 min
    .venv/bin/python bench/bench_testnet.py --rates 500,2000 --duration 20 --no-growth

Prints tables and writes bench/results/testnet.json (see docs/performance.md).
All node processes are stopped on exit (SIGTERM, then SIGKILL after 10 s).
"""

from __future__ import annotations

import argparse
import shutil
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

from bench.cluster import Cluster, free_base_port, install_signal_handlers, make_testnet, stop_all  # noqa: E402
from bench.common import write  # noqa: E402
from bench.loadgen import Tracker, presign, run_step, senders_for, summarize  # noqa: E402

CHAIN_ID = "ekklesia-bench"
TARGET_TPS = 2_000
MILESTONE_TPS = 500
TARGET_P50_S = 1.0
TARGET_P99_S = 3.0
TARGET_RSS_MB = 300

console = Console(width=max(200, Console().width))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short run (~3 min): fewer rates, 10 s steps, short growth")
    p.add_argument("--validators", type=int, default=4)
    p.add_argument("--rates", type=_floats, default=None, help="offered tx/s per step (default 200,500,1000,2000,4000)")
    p.add_argument("--duration", type=float, default=None, help="seconds of load per step (default 60; quick 10)")
    p.add_argument("--warmup", type=float, default=None, help="seconds at the start of a step not counted in "
                   "committed_tps (default 10%% of the step, at least 2)")
    p.add_argument("--drain", type=float, default=None, help="max seconds to wait for stragglers after a step")
    p.add_argument("--growth", type=_ints, default=None, help="validator counts of the growth series (default 4,7,10)")
    p.add_argument("--growth-rates", type=_floats, default=None, help="offered tx/s in the growth series")
    p.add_argument("--growth-duration", type=float, default=None, help="seconds per growth step")
    p.add_argument("--no-growth", action="store_true")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment for every node, e.g. EKKLESIA_NODE_LOG_LEVEL=warning (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the testnet directories (node logs) afterwards")
    p.add_argument("--workdir", type=Path, default=None, help="where to create testnets (default: a temp dir)")
    p.add_argument("--name", default="testnet", help="results file name (bench/results/NAME.json)")
    a = p.parse_args(argv)
    if a.quick:
        a.rates = a.rates or [500.0, 2000.0, 4000.0]
        a.duration = a.duration or 10.0
        a.drain = a.drain if a.drain is not None else 8.0
        a.growth = a.growth or [7]
        a.growth_rates = a.growth_rates or [1000.0]
        a.growth_duration = a.growth_duration or 10.0
    else:
        a.rates = a.rates or [200.0, 500.0, 1000.0, 2000.0, 4000.0]
        a.duration = a.duration or 60.0
        a.drain = a.drain if a.drain is not None else 20.0
        a.growth = a.growth or [4, 7, 10]
        a.growth_rates = a.growth_rates or [300.0, 1000.0]
        a.growth_duration = a.growth_duration or 20.0
    if a.no_growth:
        a.growth = []
    return a


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x]


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x]


def _env(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep:
            raise SystemExit(f"--env needs KEY=VALUE, got {it!r}")
        out[k] = v
    return out


async def run_series(
    workdir: Path, validators: int, rates: list[float], duration: float, *, warmup: float | None, drain: float,
    env: dict[str, str], label: str, idle_s: float = 10.0,
) -> dict[str, Any]:
    """One fresh testnet, one step per rate. Returns {"validators", "steps", "start_s", "error"}."""
    accounts = sum(senders_for(r, validators) for r in rates)
    out = workdir / f"{label}-{validators}v"
    base = free_base_port(validators)
    t = time.monotonic()
    nodes = make_testnet(out, validators, base_port=base, accounts=accounts)
    console.print(f"[bold]{label}: {validators} validators[/] in {out} (ports {base}…, {accounts} funded "
                  f"accounts, genesis in {time.monotonic() - t:.1f} s)")
    cluster = Cluster(nodes, env)
    steps: list[dict[str, Any]] = []
    idle: dict[str, Any] | None = None
    error = None
    cluster.start()
    try:
        limits = httpx.Limits(max_connections=4 * validators + 8, max_keepalive_connections=4 * validators + 8)
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:
            ready = await cluster.wait_ready(http)
            console.print(f"  ready in {ready:.1f} s")
            tracker = Tracker(cluster.procs[0].api)
            async with trio.open_nursery() as nursery:
                await nursery.start(tracker.run, http)
                # Baseline: consensus alone (empty blocks), no load.
                idle_plan = presign(CHAIN_ID, 0, idle_s, validators, 0)
                idle = summarize(await run_step(http, cluster, idle_plan, tracker, drain_s=0), tracker, warmup_s=0)
                console.print(f"  idle {idle_s:.0f} s: {idle['blocks_per_s']} blocks/s, CPU per node "
                              f"{idle['cpu_pct']} %, {idle['consensus_msgs_per_height_out']} consensus msgs/height, "
                              f"{(idle['wire_bytes_per_height'] or 0) / 1024:.0f} KiB on the wire per height")
                first = 0
                for rate in rates:
                    if cluster.dead():
                        error = f"node(s) died: {', '.join(cluster.dead())}"
                        break
                    await _wait_idle(http, cluster)
                    plan = await trio.to_thread.run_sync(presign, CHAIN_ID, rate, duration, validators, first)
                    first += plan.senders
                    console.print(f"  {rate:>6,.0f} tx/s × {duration:.0f} s: {plan.n_txs:,} txs from "
                                  f"{plan.senders} senders signed in {plan.sign_s:.1f} s … ", end="")
                    wu = warmup if warmup is not None else max(2.0, 0.1 * duration)
                    raw = await run_step(http, cluster, plan, tracker, drain_s=drain)
                    s = summarize(raw, tracker, warmup_s=wu)
                    tracker.forget(list(tracker.submitted))
                    steps.append(s)
                    console.print(f"committed {s['committed_tps']:,.0f} tx/s, p50 {_s(s['p50_commit_s'])}, "
                                  f"p99 {_s(s['p99_commit_s'])}, {s['blocks_per_s']} blocks/s, "
                                  f"CPU {s['cpu_pct_nodes_total']:.0f}% (+gen {s['generator_cpu_pct']:.0f}%)")
                    if s["dead_nodes"]:
                        error = f"node(s) died: {', '.join(s['dead_nodes'])}"
                        break
                nursery.cancel_scope.cancel()
    except Exception as exc:  # report what was measured so far, then the failure
        error = f"{type(exc).__name__}: {exc}"
        console.print(f"[red]  {label} {validators}v failed: {error}")
    finally:
        codes = cluster.stop()
        console.print(f"  stopped nodes (exit codes {codes})")
    p2p = cluster.p2p_stats()
    dropped = [st.get("gossip_send_dropped") for st in p2p]
    if any(dropped):
        console.print(f"  py-libp2p send-queue drops per node over the series: {dropped}")
    return {"validators": validators, "idle": idle, "steps": steps, "error": error, "testnet": str(out),
            "p2p_stats": p2p}


async def _wait_idle(http: httpx.AsyncClient, cluster: Cluster, timeout: float = 30.0) -> None:
    """Until every mempool is empty (leftovers of the previous step), bounded."""
    with trio.move_on_after(timeout):
        while True:
            st = await cluster.statuses(http)
            if all(s is not None and not s.get("mempool_size") for s in st):
                return
            await trio.sleep(0.5)


def _s(v: float | None) -> str:
    return "∞" if v is None else f"{v:.2f} s"


def kept_up(s: dict[str, Any]) -> bool:
    """The step sustained its offered rate: nothing refused at admission, ≥ 99 % of the
    admitted txs committed by the end of the drain, and the committed rate within 2.5 %
    of the offered one (block-to-block measurement error over the window)."""
    return (s["offered_tps"] > 0 and s["admitted"] >= 0.999 * s["submitted"] and s["committed_fraction"] >= 0.99
            and s["committed_tps"] >= 0.975 * s["offered_tps"])


def _p50_ok(s: dict[str, Any]) -> bool:
    return s["p50_commit_s"] is not None and s["p50_commit_s"] <= TARGET_P50_S


def _p99_ok(s: dict[str, Any]) -> bool:
    return s["p99_commit_s"] is not None and s["p99_commit_s"] <= TARGET_P99_S


def analyse(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Best sustained rate (p50 ≤ 1 s), saturation point, targets."""
    good = [s for s in steps if _p50_ok(s) and s["committed_fraction"] >= 0.99]
    best = max(good, key=lambda s: s["committed_tps"], default=None)
    saturation = None
    for s in steps:
        if kept_up(s) and _p50_ok(s):
            continue
        why = []
        if s["committed_tps"] < 0.975 * s["offered_tps"]:
            why.append(f"committed {s['committed_tps']:,.0f} tx/s < offered")
        if not _p50_ok(s):
            why.append(f"p50 {_s(s['p50_commit_s'])} > {TARGET_P50_S} s")
        refused = 1 - s["admitted"] / max(1, s["submitted"])
        if refused > 0.001:
            why.append(f"{100 * refused:.1f}% refused at admission")
        if s["committed_fraction"] < 0.99:
            why.append(f"{100 * (1 - s['committed_fraction']):.1f}% of admitted not committed by the drain end")
        saturation = {"offered_tps": s["offered_tps"], "committed_tps": s["committed_tps"], "why": why}
        break

    def meets(rate: float) -> bool:
        return any(s["offered_tps"] >= rate and kept_up(s) and _p50_ok(s) and _p99_ok(s) for s in steps)

    rss = max((s["rss_mb_max"] for s in steps if s["rss_mb_max"] is not None), default=None)
    best_tps = best["committed_tps"] if best else 0.0
    return {
        "best_sustained": None if best is None else {
            "committed_tps": best["committed_tps"], "offered_tps": best["offered_tps"], "kept_up": kept_up(best),
            "p50_commit_s": best["p50_commit_s"], "p99_commit_s": best["p99_commit_s"]},
        "committed_tps": best_tps,
        "saturation": saturation,
        "targets": {
            "tps": TARGET_TPS, "p50_s": TARGET_P50_S, "p99_s": TARGET_P99_S, "rss_mb": TARGET_RSS_MB,
            "milestone_tps": MILESTONE_TPS,
            "throughput_met": meets(TARGET_TPS),
            "milestone_met": meets(MILESTONE_TPS),
            "rss_met": rss is not None and rss <= TARGET_RSS_MB,
            "rss_mb_max": rss,
            "gap_tps": None if meets(TARGET_TPS) else round(TARGET_TPS - best_tps, 1),
        },
    }


def step_table(title: str, steps: list[dict[str, Any]]) -> Table:
    t = Table(title=title, title_style="bold")
    cols = ["offered", "committed", "p50", "p95", "p99", "blocks/s", "tx/block", "rounds/h", "msgs/h",
            "wire B/tx", "CPU % (nodes)", "gen CPU", "other CPU", "RSS max (anon)", "refused", "uncommitted"]
    for c in cols:
        t.add_column(c, justify="right")
    for s in steps:
        refused = s["submitted"] - s["admitted"]
        t.add_row(
            f"{s['offered_tps']:,.0f}", f"{s['committed_tps']:,.0f}", _s(s["p50_commit_s"]), _s(s["p95_commit_s"]),
            _s(s["p99_commit_s"]), f"{s['blocks_per_s']:.2f}", f"{s['txs_per_block_mean']:,.0f}",
            f"{s['rounds_per_height']:.2f}" if s["rounds_per_height"] else "-",
            f"{s['consensus_msgs_per_height_out']:.1f}" if s["consensus_msgs_per_height_out"] else "-",
            f"{s['wire_bytes_per_tx']:,.0f}" if s["wire_bytes_per_tx"] else "-",
            "/".join(f"{c:.0f}" for c in s["cpu_pct"]), f"{s['generator_cpu_pct']:.0f}%",
            f"{s['other_cpu_pct']:.0f}%", _rss(s),
            f"{refused:,}" if refused else "0",
            f"{s['admitted'] - s['committed']:,}",
        )
    return t


def _rss(s: dict[str, Any]) -> str:
    if not s["rss_mb_max"]:
        return "-"
    anon = [a for a in s.get("rss_anon_mb") or [] if a is not None]
    return f"{s['rss_mb_max']:.0f} MB" + (f" ({max(anon):.0f})" if anon else "")


def growth_table(series: list[dict[str, Any]]) -> Table:
    t = Table(title="growth: validators", title_style="bold")
    for c in ("validators", "offered", "committed", "p50", "p99", "blocks/s", "rounds/h", "cons. msgs/h (out)",
              "cons. msgs/h (in, all nodes)", "wire B/height", "CPU % total", "other CPU", "RSS max"):
        t.add_column(c, justify="right")
    for ser in series:
        for s in ([ser["idle"]] if ser.get("idle") else []) + ser["steps"]:
            idle = not s["offered_tps"]
            t.add_row(
                str(ser["validators"]), "idle" if idle else f"{s['offered_tps']:,.0f}",
                "-" if idle else f"{s['committed_tps']:,.0f}", "-" if idle else _s(s["p50_commit_s"]),
                "-" if idle else _s(s["p99_commit_s"]), f"{s['blocks_per_s']:.2f}",
                f"{s['rounds_per_height']:.2f}" if s["rounds_per_height"] else "-",
                f"{s['consensus_msgs_per_height_out']:.1f}" if s["consensus_msgs_per_height_out"] else "-",
                f"{s['consensus_msgs_per_height_in']:.1f}" if s["consensus_msgs_per_height_in"] else "-",
                f"{s['wire_bytes_per_height']:,.0f}" if s["wire_bytes_per_height"] else "-",
                f"{s['cpu_pct_nodes_total']:.0f}", f"{s['other_cpu_pct']:.0f}%",
                f"{s['rss_mb_max']:.0f} MB" if s["rss_mb_max"] else "-",
            )
        if ser["error"]:
            t.add_row(str(ser["validators"]), f"[red]{ser['error'][:60]}", *[""] * 11)
    return t


async def amain(a: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = _env(a.env)
    t0 = time.monotonic()
    idle_s = 5.0 if a.quick else 10.0
    main = await run_series(workdir, a.validators, a.rates, a.duration, warmup=a.warmup, drain=a.drain, env=env,
                            label="load", idle_s=idle_s)
    growth = []
    for v in a.growth:
        growth.append(await run_series(workdir, v, a.growth_rates, a.growth_duration, warmup=a.warmup,
                                       drain=a.drain, env=env, label="growth", idle_s=idle_s))
    result: dict[str, Any] = {
        "validators": a.validators,
        "mode": "quick" if a.quick else "full",
        "config": {"rates": a.rates, "duration_s": a.duration, "drain_s": a.drain, "node_env": env,
                   "growth": a.growth, "growth_rates": a.growth_rates, "growth_duration_s": a.growth_duration,
                   "node_config": "ekklesia testnet init defaults: timeout_propose 2000 ms, min_block_interval "
                                  "500 ms, mempool 20,000 txs / 256 per sender, batch 50 ms; block ≤ 496 KiB"},
        "idle": main["idle"],
        "steps": main["steps"],
        "error": main["error"],
        **analyse(main["steps"]),
        "p2p_stats": main["p2p_stats"],
        "growth": growth,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "notes": [
            "2 shared cores for all nodes and the generator, other work running: figures are noisy.",
            "committed_tps: txs of the step committed (seen at node0) after the warm-up, per second of the "
            "remaining load window.",
            "p50/p95/p99_commit_s: from the scheduled submit time of the tx's batch to the arrival of node0's "
            "SSE block event for its height, over all admitted txs; null = more than that share never committed "
            "within the drain time.",
            "wire_bytes_per_tx: TCP bytes sent between the nodes' p2p sockets (ss bytes_sent; noise+yamux+"
            "gossipsub framing, duplicates and control traffic included) during the load window / txs committed "
            "in it.",
        ],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    install_signal_handlers()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="ekklesia-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    budget = 3600 if not a.quick else 600
    result = None
    try:
        result = trio.run(_bounded, a, workdir, budget)
    finally:
        stop_all()
        if not a.keep and a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if result is None:
        return 1
    console.print(step_table(f"testnet load, {a.validators} validators (open loop, transfers)", result["steps"]))
    if result["growth"]:
        console.print(growth_table(result["growth"]))
    b = result["best_sustained"]
    tg = result["targets"]
    console.print(
        f"best sustained (p50 ≤ {TARGET_P50_S} s): "
        + (f"[bold]{b['committed_tps']:,.0f} tx/s[/] at {b['offered_tps']:,.0f} offered "
           f"(p50 {_s(b['p50_commit_s'])}, p99 {_s(b['p99_commit_s'])})" if b else "[red]none")
    )
    if result["saturation"]:
        sat = result["saturation"]
        console.print(f"saturation at {sat['offered_tps']:,.0f} tx/s offered: {'; '.join(sat['why'])}")
    console.print(
        f"targets: {TARGET_TPS:,} tx/s with p50 ≤ {TARGET_P50_S} s, p99 ≤ {TARGET_P99_S} s: "
        + ("[green]met" if tg["throughput_met"] else f"[red]not met (gap {tg['gap_tps']:,.0f} tx/s)")
        + f"; milestone {MILESTONE_TPS} tx/s: " + ("[green]met" if tg["milestone_met"] else "[red]not met")
        + f"; RSS ≤ {TARGET_RSS_MB} MB: " + ("[green]met" if tg["rss_met"] else "[red]not met")
    )
    if result["error"]:
        console.print(f"[red]error: {result['error']}")
    path = write(a.name, result)
    console.print(f"wrote {path} (elapsed {result['elapsed_s']:.0f} s)")
    return 0 if not result["error"] else 1


async def _bounded(a: argparse.Namespace, workdir: Path, budget: float) -> dict[str, Any]:
    with trio.fail_after(budget):
        return await amain(a, workdir)


if __name__ == "__main__":
    sys.exit(main())
