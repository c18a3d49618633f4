"""Where a validator's CPU goes under load: py-spy on real node processes.

Starts a fresh testnet (as bench_testnet.py does), offers a constant load, and
samples chosen nodes with `py-spy record` (100 Hz, active threads only) over the
middle of the load window. Prints, per node, the functions with the highest
self time and the highest inclusive time, in % of the samples, plus a few
subsystem totals; writes bench/results/profile.json and the raw collapsed stacks
(`<workdir>/profile-nodeI.txt`, loadable into speedscope or flamegraph.pl).

    .venv/bin/pip install py-spy                     # once
    .venv/bin/python bench/profile_testnet.py --rate 2000 --duration 40 --nodes 0,1

py-spy needs ptrace rights over the node processes (root, or
kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
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
    free_base_port,
    install_signal_handlers,
    make_testnet,
    metric,
    stop_all,
)
from bench.common import write  # noqa: E402
from bench.loadgen import Tracker, presign, run_step, senders_for, summarize  # noqa: E402

CHAIN_ID = "ekklesia-bench"
console = Console(width=200)

# Subsystems by the file of any frame (inclusive: a sample counts once per group).
GROUPS = [
    ("py-libp2p (pubsub, noise, yamux, swarm)", ("libp2p/",)),
    ("ed25519 verify/sign (nacl)", ("nacl/",)),
    ("canonical codec (protocol/codec.py)", ("protocol/codec.py",)),
    ("wire structs (protocol/wire.py)", ("protocol/wire.py",)),
    ("codec + wire structs together", ("protocol/codec.py", "protocol/wire.py")),
    ("mempool admission (Mempool.add)", ("Mempool.add ",)),
    ("block execution (Replica._execute)", ("Replica._execute ",)),
    ("block building (Replica._build)", ("Replica._build ",)),
    ("consensus engine (protocol/consensus/)", ("protocol/consensus/",)),
    ("LevelDB store (node/storage/)", ("node/storage/",)),
    ("HTTP API (hypercorn, starlette, node/api)", ("hypercorn/", "starlette/", "node/api/")),
    ("SSE/event fan-out (node/events.py)", ("node/events.py",)),
    ("metrics (prometheus_client)", ("prometheus_client/", "node/metrics.py")),
    ("logging (structlog)", ("structlog/",)),
]
# Leaf frames of threads that are waiting, not running (py-spy counts some of them as active).
IDLE_LEAVES = ("Condition.wait (threading.py)", "Event.wait (threading.py)",
               "EpollIOManager.get_events (trio/_core/_io_epoll.py)")
# Frames every sample of the main thread has: not informative in the inclusive table.
ENTRY = ("<frozen runpy>", "click/", "node/__main__.py", "node/cli.py", "node/cli_run.py", "trio/_core/_run.py")


def parse_raw(path: Path) -> dict[str, Any]:
    """py-spy --format raw (collapsed stacks) → totals, self, inclusive, package and group counts.
    Samples whose leaf is an idle wait are counted apart (`idle`) and left out of the shares."""
    total = idle = 0
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        if frames[-1] in IDLE_LEAVES:
            idle += count
            continue
        total += count
        self_c[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for f in set(frames):
            if not any(e in f for e in ENTRY):
                incl[f] += count
        for name, needles in GROUPS:
            if any(nd in f for f in frames for nd in needles):
                groups[name] += count
    return {"total": total, "idle": idle, "self": self_c, "inclusive": incl, "groups": groups, "packages": packages}


def _package(frame: str) -> str:
    """The top-level package (or project folder) of a frame's file."""
    where = frame.rpartition(" (")[2].rstrip(")")
    top = where.split("/", 1)[0]
    return top if "/" in where else where


def _short(frame: str) -> str:
    """'fn (/long/path/site-packages/pkg/mod.py)' → 'fn (pkg/mod.py)'."""
    fn, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if cut in where:
            where = where.split(cut, 1)[1]
            break
    return f"{fn} ({where})" if where else fn


def table(title: str, rows: list[tuple[str, int]], total: int) -> Table:
    t = Table(title=title, title_style="bold")
    t.add_column("%", justify="right")
    t.add_column("function")
    for name, n in rows:
        t.add_row(f"{100 * n / max(1, total):.1f}", name)
    return t


async def amain(a: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rates = [a.rate]
    nodes = make_testnet(workdir / "tn", a.validators, base_port=free_base_port(a.validators),
                         accounts=sum(senders_for(r, a.validators) for r in rates))
    cluster = Cluster(nodes, dict(kv.split("=", 1) for kv in a.env))
    cprof = workdir / f"cprofile-node{a.cprofile}.prof" if a.cprofile is not None else None
    if cprof is not None:
        cluster.python_args[a.cprofile] = ("-m", "cProfile", "-o", str(cprof))
    cluster.start()
    out: dict[str, Any] = {"validators": a.validators, "rate": a.rate, "duration_s": a.duration, "nodes": {}}
    spies: list[tuple[int, subprocess.Popen[bytes], Path]] = []
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            await cluster.wait_ready(http)
            tracker = Tracker(cluster.procs[0].api)
            async with trio.open_nursery() as nursery:
                await nursery.start(tracker.run, http)
                plan = await trio.to_thread.run_sync(presign, CHAIN_ID, a.rate, a.duration, a.validators, 0)
                sample_s = max(5, int(a.duration - 2 * a.skip))

                async def spy() -> None:
                    await trio.sleep(a.skip)
                    for i in a.nodes:
                        path = workdir / f"profile-node{i}.txt"
                        p = subprocess.Popen(
                            [a.py_spy, "record", "--format", "raw", "--nolineno", "--rate", "100",
                             "-d", str(sample_s), "-o", str(path), "-p", str(cluster.procs[i].proc.pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                        spies.append((i, p, path))

                nursery.start_soon(spy)
                raw = await run_step(http, cluster, plan, tracker, drain_s=15)
                out["step"] = summarize(raw, tracker, warmup_s=max(2.0, 0.1 * a.duration))
                if a.cprofile is not None:
                    m = (await cluster.metrics(http))[a.cprofile]
                    out["cprofile_txs_committed"] = metric(m, "ekklesia_txs_committed_total")
                    out["cprofile_heights"] = metric(m, "ekklesia_consensus_height")
                nursery.cancel_scope.cancel()
        deadline = time.monotonic() + 60
        for i, p, path in spies:
            try:
                _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if not path.exists():
                console.print(f"[red]py-spy on node{i} failed: {err.decode()[-500:]}")
                continue
            prof = parse_raw(path)
            total = prof["total"]

            def share(c: Counter[str], k: int, total: int = total) -> list[tuple[str, float]]:
                return [(f, round(100 * n / max(1, total), 2)) for f, n in c.most_common(k)]

            out["nodes"][f"node{i}"] = {
                "active_samples": total, "idle_samples": prof["idle"],
                "self_top": share(prof["self"], a.top),
                "inclusive_top": share(prof["inclusive"], a.top * 2),
                "self_by_package": share(prof["packages"], 15),
                "groups_inclusive": share(prof["groups"], len(GROUPS)),
                "raw": str(path),
            }
            console.print(table(f"node{i}: self time, % of {total} active samples", prof["self"].most_common(a.top),
                                total))
            console.print(table(f"node{i}: inclusive time (entry frames left out)",
                                prof["inclusive"].most_common(a.top * 2), total))
            console.print(table(f"node{i}: self time by package", prof["packages"].most_common(15), total))
            console.print(table(f"node{i}: subsystems (inclusive)", prof["groups"].most_common(), total))
    finally:
        for _, p, _ in spies:
            if p.poll() is None:
                p.kill()
        cluster.stop()
    if cprof is not None and cprof.exists() and out.get("cprofile_txs_committed"):
        out["cprofile"] = call_counts(cprof, out["cprofile_txs_committed"], out["cprofile_heights"], a.top)
    return out


# Functions whose calls per committed tx say how often a tx is encoded, hashed, decoded, verified.
WATCH = [
    ("protocol/wire.py", "encode"), ("protocol/wire.py", "digest"), ("protocol/wire.py", "decode"),
    ("protocol/wire.py", "from_wire"), ("protocol/wire.py", "to_wire"), ("protocol/codec.py", "pack"),
    ("protocol/codec.py", "unpack"), ("protocol/codec.py", "_check_value"), ("protocol/types.py", "hash"),
    ("protocol/types.py", "verify_signatures"), ("protocol/types.py", "signing_payload"),
    ("protocol/crypto.py", "verify"), ("protocol/crypto.py", "verify_raw"), ("protocol/mempool.py", "add"),
    ("protocol/mempool.py", "update"), ("protocol/mempool.py", "reap"), ("protocol/messages.py", "decode_tx_batch"),
    ("protocol/messages.py", "decode_consensus"), ("protocol/merkle.py", "root"),
    ("protocol/governance/app.py", "check_tx"), ("protocol/governance/app.py", "apply_block"),
    ("protocol/replica.py", "_execute"), ("node/runtime.py", "_validate_txs"),
    ("node/runtime.py", "_validate_consensus"), ("node/runtime.py", "_on_gossip"),
]


def call_counts(path: Path, txs: float, heights: float, top: int) -> dict[str, Any]:
    """Calls per committed tx of the watched functions, and the top functions by own time."""
    import pstats

    st = pstats.Stats(str(path))
    rows: dict[str, Any] = {}
    stats = st.stats  # type: ignore[attr-defined]
    for (file, _line, fn), (_cc, nc, tt, ct, _callers) in stats.items():
        for frag, name in WATCH:
            if file.endswith(frag) and fn == name:
                key = f"{frag}:{fn}"
                prev = rows.get(key, {"calls": 0, "tottime_s": 0.0, "cumtime_s": 0.0})
                rows[key] = {"calls": prev["calls"] + nc, "tottime_s": prev["tottime_s"] + tt,
                             "cumtime_s": max(prev["cumtime_s"], ct)}
    for r in rows.values():
        r["per_tx"] = round(r["calls"] / max(1.0, txs), 2)
        r["us_per_tx_cum"] = round(1e6 * r["cumtime_s"] / max(1.0, txs), 1)
    t = Table(title=f"cProfile: calls per committed tx ({txs:,.0f} txs, {heights:,.0f} heights)", title_style="bold")
    for c in ("function", "calls", "per tx", "cum µs per tx"):
        t.add_column(c, justify="right" if c != "function" else "left")
    for k, r in sorted(rows.items(), key=lambda kv: -kv[1]["cumtime_s"]):
        t.add_row(k, f"{r['calls']:,}", f"{r['per_tx']:.2f}", f"{r['us_per_tx_cum']:.0f}")
    console.print(t)
    tops = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    total_tt = sum(v[2] for v in stats.values())
    top_rows = [(f"{fn} ({_short_path(file)}:{line})", round(100 * v[2] / total_tt, 2), v[1])
                for (file, line, fn), v in tops]
    t2 = Table(title="cProfile: own time (% of all profiled time, incl. idle waits)", title_style="bold")
    for c in ("%", "function", "calls"):
        t2.add_column(c, justify="right" if c != "function" else "left")
    for name, pct, calls in top_rows:
        t2.add_row(f"{pct:.1f}", name, f"{calls:,}")
    console.print(t2)
    return {"txs": txs, "heights": heights, "watched": rows, "own_time_top": top_rows}


def _short_path(file: str) -> str:
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if cut in file:
            return file.split(cut, 1)[1]
    return file


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--validators", type=int, default=4)
    p.add_argument("--rate", type=float, default=2000)
    p.add_argument("--duration", type=float, default=40, help="seconds of load")
    p.add_argument("--skip", type=float, default=8, help="seconds of load before sampling starts")
    p.add_argument("--nodes", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1],
                   help="nodes to sample (node0 also serves the generator's block reads)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--cprofile", type=int, default=None, metavar="I",
                   help="also run node I under cProfile (slower) and report calls per committed tx")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--py-spy", default=str(Path(sys.executable).parent / "py-spy"))
    p.add_argument("--name", default="profile")
    p.add_argument("--workdir", type=Path, default=None)
    a = p.parse_args(argv)
    if not Path(a.py_spy).exists() and shutil.which("py-spy") is None:
        console.print("py-spy is not installed: .venv/bin/pip install py-spy")
        return 2
    install_signal_handlers()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="ekklesia-profile-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = trio.run(amain, a, workdir)
    finally:
        stop_all()
    s = result.get("step", {})
    console.print(f"load: offered {a.rate:,.0f} tx/s, committed {s.get('committed_tps')} tx/s, "
                  f"p50 {s.get('p50_commit_s')} s, CPU per node {s.get('cpu_pct')}; raw stacks in {workdir}")
    console.print(f"wrote {write(a.name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
