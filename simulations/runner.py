"""Run one scenario with one seed and summarise it.

    summary = run(load("minority-partition"), seed=7, out=Path("out"))

builds the cluster (validators, twins, network, consensus timing), installs the
Byzantine behaviours, the fault timeline and the workload, runs the virtual clock to
the scenario's end, runs the checkers and compares them with the scenario's
expectations. With `out` it writes `summary.json`, `events.jsonl` (the trace),
`timeline.png` and `report.html` there.

Modes (`BACKENDS`): "deterministic" (one thread, virtual time) and "real" — the same
scenario against `ekklesia` node processes over libp2p on 127.0.0.1
(`ekklesia sim run SCENARIO --real`, simulations/real/backend.py), producing the same
summary keys; see docs/simulations.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulations import byzantine, checkers
from simulations.cluster import Cluster
from simulations.faults import FaultInjector
from simulations.network import LinkModel
from simulations.scenario import LinkSpec, Scenario
from simulations.workload import SIM_PARAMS, Workload

WALL_FIELDS = ("wall_seconds", "speedup")  # the only fields that differ between identical runs


def _link_model(spec: LinkSpec) -> LinkModel:
    return LinkModel(spec.latency_ms, spec.jitter_ms, spec.distribution, spec.drop_ppm, spec.duplicate_ppm)


def build(scenario: Scenario, seed: int, *, keep_trace: bool = True) -> tuple[Cluster, FaultInjector, Workload]:
    w = scenario.workload
    cluster = Cluster(
        scenario.validators,
        seed,
        powers=list(scenario.powers),
        link=_link_model(scenario.network),
        consensus=scenario.consensus,
        accounts=w.clients,
        residents=w.residents,
        params=SIM_PARAMS,
        twins=scenario.twins,
        keep_trace=keep_trace,
    )
    names = sorted(cluster.nodes)
    for o in scenario.links:
        for a in names if o.src == "*" else [o.src]:
            for b in names if o.dst == "*" else [o.dst]:
                if a != b:
                    cluster.net.links[(a, b)] = _link_model(o.link)
    byzantine.install(cluster, scenario.byzantine)
    injector = FaultInjector(cluster)
    injector.install(scenario.faults)
    workload = Workload(cluster, w, cluster.seeds.rng("workload"), scenario.workload_stop_ms())
    workload.install()
    return cluster, injector, workload


def run_deterministic(
    scenario: Scenario, seed: int, out: Path | None = None, *, ref: str | None = None, duration_s: float | None = None
) -> dict[str, Any]:
    cluster, injector, workload = build(scenario, seed, keep_trace=out is not None)
    wall = time.perf_counter()
    cluster.start()
    cluster.run_until(scenario.duration_ms)
    wall = time.perf_counter() - wall
    results = checkers.check(cluster, scenario, workload)
    summary = summarise(scenario, seed, cluster, workload, results, wall, ref=ref, duration_s=duration_s)
    if out is not None:
        write(out, summary, cluster, injector, workload, scenario)
    return summary


def run_real(
    scenario: Scenario, seed: int, out: Path | None = None, *, ref: str | None = None, duration_s: float | None = None
) -> dict[str, Any]:
    from simulations.real.backend import run_real as backend  # node processes: loaded only when asked for

    return backend(scenario, seed, out, ref=ref, duration_s=duration_s)


BACKENDS: dict[str, Callable[..., dict[str, Any]]] = {"deterministic": run_deterministic, "real": run_real}


def run(
    scenario: Scenario,
    seed: int,
    out: Path | None = None,
    *,
    mode: str = "deterministic",
    ref: str | None = None,
    duration_s: float | None = None,
) -> dict[str, Any]:
    backend = BACKENDS.get(mode)
    if backend is None:
        raise ValueError(f"no {mode!r} mode (available: {', '.join(sorted(BACKENDS))})")
    return backend(scenario, seed, out, ref=ref, duration_s=duration_s)


def replay_command(ref: str, seed: int, duration_s: float | None = None) -> str:
    cmd = f"ekklesia sim run {ref} --seed {seed}"
    if duration_s is not None:
        cmd += f" --duration {duration_s:g}"
    return cmd + f" --out sim-out/{Path(ref).stem.replace(':', '-')}-{seed}"


def summarise(
    scenario: Scenario,
    seed: int,
    cluster: Cluster,
    workload: Workload,
    r: checkers.Results,
    wall: float,
    *,
    ref: str | None = None,
    duration_s: float | None = None,
) -> dict[str, Any]:
    virtual = scenario.duration_ms / 1000
    rounds = [rd for times in cluster.commit_times.values() for _, _, rd in times]
    committed = {tx.hash for n in cluster.honest_nodes() for b, _ in n.disk.blocks.values() for tx in b.txs}
    tx_stats = workload.stats()
    tx_stats["committed_acked"] = sum(1 for h in workload.acked if h in committed)
    tx_stats["committed_total"] = len(committed)
    tx_stats["pending"] = len(r.pending_txs)
    expected = scenario.expect
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": seed,
        "mode": "deterministic",
        "trace_hash": cluster.trace.hash,
        "trace_events": cluster.trace.count,
        "virtual_seconds": virtual,
        "wall_seconds": round(wall, 3),
        "speedup": round(virtual / wall, 1) if wall > 0 else None,
        "validators": scenario.validators,
        "nodes": sorted(cluster.nodes),
        "byzantine": sorted(cluster.faulty),
        "heights": cluster.heights(),
        "safety": r.safety.status,
        "liveness": r.liveness.status,
        "validity": r.validity.status,
        "accountability": r.accountability.status,
        "forks": r.forks,
        "evidence": r.named,
        "evidence_detail": [e.__dict__ for e in r.evidence[:50]],
        "lost_txs": len(r.lost_txs),
        "lost_tx_causes": r.lost_causes,
        "txs": tx_stats,
        "halted": dict(sorted(r.halted.items())),
        "rounds": {"max": max(rounds, default=0), "commits_after_round_0": sum(1 for x in rounds if x > 0)},
        "network": {k: getattr(cluster.net.stats, k) for k in ("sent", "delivered", "dropped", "duplicated",
                                                               "unreachable")},
        "events_run": cluster.sched.events_run,
        "details": {
            name: v.details
            for name, v in (("safety", r.safety), ("liveness", r.liveness), ("validity", r.validity),
                            ("accountability", r.accountability), ("lost_txs", r.lost))
            if v.details
        },
        "expected": {
            "safety": expected.safety, "liveness": expected.liveness, "forks": expected.forks,
            "evidence": list(expected.evidence), "max_lost_txs": expected.max_lost_txs,
            "min_height": expected.min_height,
        },
    }
    failures = compare(summary, scenario, r, cluster)
    summary["passed"] = not failures
    summary["failures"] = failures
    summary["replay"] = replay_command(ref or scenario.name, seed, duration_s)
    return summary


def compare(summary: dict[str, Any], scenario: Scenario, r: checkers.Results, cluster: Cluster) -> list[str]:
    e = scenario.expect
    out = []
    if r.safety.status != e.safety:
        out.append(f"safety is {r.safety.status}, expected {e.safety}")
    if e.liveness != "not-checked" and r.liveness.status != e.liveness:
        out.append(f"liveness is {r.liveness.status}, expected {e.liveness}")
    if e.forks and not r.forks:
        out.append("expected a fork, none happened")
    if r.validity.status == checkers.VIOLATED:
        out.append("validity violated")
    if r.accountability.status == checkers.VIOLATED:
        out.append("accountability violated")
    missing = sorted(set(e.evidence) - set(r.named))
    if missing:
        out.append(f"evidence does not name {', '.join(missing)}")
    if len(r.lost_txs) > e.max_lost_txs:
        out.append(f"{len(r.lost_txs)} acknowledged txs lost (at most {e.max_lost_txs} allowed)")
    for a, b in e.no_progress:
        for name in sorted(summary["heights"]):
            if name in summary["byzantine"]:
                continue
            gained = checkers.height_at(cluster, name, b) - checkers.height_at(cluster, name, a)
            if gained > 1:
                out.append(f"{name} gained {gained} heights in {a / 1000:g}–{b / 1000:g} s, expected no progress")
    honest_halts = sorted(n for n in r.halted if n not in cluster.faulty)
    if honest_halts and e.safety == "ok":
        out.append(f"honest nodes halted: {', '.join(honest_halts)}")
    return out


def write(out: Path, summary: dict[str, Any], cluster: Cluster, injector: FaultInjector, workload: Workload,
          scenario: Scenario) -> None:  # fmt: skip
    from simulations import report  # matplotlib loads only when pictures are wanted

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    cluster.trace.write_jsonl(out / "events.jsonl")
    png = out / "timeline.png"
    title = f"{scenario.name} · seed {summary['seed']} · safety {summary['safety']} · liveness {summary['liveness']}"
    report.timeline(cluster, injector.closed_periods(cluster.sched.now_ms), png, title=title, acked=workload.acked)
    report.html_report(summary, png, out / "report.html")
