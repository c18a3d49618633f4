"""Many seeds in parallel processes: random fault schedules, or one scenario under many seeds.

`random_scenario(seed)` draws a whole scenario from the seed — validator count,
network, at most f Byzantine nodes (or a pair of twins), one to three fault
episodes of every shape, each healed, and a workload — and expects safety,
liveness after the last heal and no lost transaction. The scenario reference
"random" (or "random:N" for N validators) names it on the command line, so a
failing seed replays with `ekklesia sim run random --seed S`.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from simulations import runner
from simulations.cluster import TWIN_SUFFIX
from simulations.faults import random_faults
from simulations.rng import SeedTree
from simulations.scenario import (
    ByzantineSpec,
    Expect,
    LinkSpec,
    LivenessSpec,
    Scenario,
    ScenarioError,
    WorkloadSpec,
    load,
)

RANDOM = "random"
SWEEP_BEHAVIOURS = (
    "equivocate", "double-vote", "withhold-votes", "wrong-height", "wrong-round", "invalid-block", "replay", "silent",
)
DEFAULT_DURATION_S = 40.0
LIVENESS_WINDOW_MS = 15_000


def random_scenario(seed: int, *, validators: int | None = None, duration_s: float | None = None) -> Scenario:
    rng = SeedTree(seed).child("sweep").rng("scenario")
    n = validators if validators is not None else rng.choice([4, 4, 5, 7])
    duration_ms = round((duration_s or DEFAULT_DURATION_S) * 1000)
    if duration_ms < LIVENESS_WINDOW_MS + 8_000:
        raise ScenarioError(f"random: duration_s: needs at least {(LIVENESS_WINDOW_MS + 8_000) / 1000:g} s")
    names = [f"n{i}" for i in range(n)]
    f = (n - 1) // 3
    mode = rng.choice(["none", "none", "byzantine", "twins"]) if f else "none"
    byz: tuple[ByzantineSpec, ...] = ()
    twins: tuple[str, ...] = ()
    if mode == "byzantine":
        bad = sorted(rng.sample(names, rng.randint(1, f)))
        byz = tuple(ByzantineSpec((b,), rng.choice(SWEEP_BEHAVIOURS)) for b in bad)
    elif mode == "twins":
        twins = (rng.choice(names),)
    all_names = names + [t + TWIN_SUFFIX for t in twins]
    faults_end = duration_ms - LIVENESS_WINDOW_MS - 2_000
    faults = random_faults(rng, all_names, 2_000, faults_end, episodes=rng.randint(1, 3))
    network = LinkSpec(
        latency_ms=rng.choice([5, 10, 30]),
        jitter_ms=rng.choice([5, 20, 60]),
        distribution=rng.choice(["uniform", "exponential"]),
        drop_ppm=rng.choice([0, 0, 0, 10_000, 50_000]),
        duplicate_ppm=rng.choice([0, 0, 10_000]),
    )
    desc = f"random: {n} validators, {mode}" + (
        f" ({', '.join(f'{b.nodes[0]} {b.behaviour}' for b in byz)})" if byz else f" ({twins[0]})" if twins else ""
    )
    return Scenario(
        name=RANDOM,
        description=desc,
        duration_ms=duration_ms,
        validators=n,
        powers=tuple([10] * n),
        twins=twins,
        network=network,
        byzantine=byz,
        faults=tuple(faults),
        workload=WorkloadSpec(rate=rng.choice([5.0, 10.0]), drain_ms=LIVENESS_WINDOW_MS),
        liveness=LivenessSpec(heights=3, within_ms=LIVENESS_WINDOW_MS),
        expect=Expect(safety="ok", liveness="ok"),
        source=RANDOM,
    )


def scenario_for(ref: str, seed: int, duration_s: float | None = None) -> Scenario:
    """A shipped name, a path, "random" or "random:N" (N validators)."""
    if ref == RANDOM or ref.startswith(RANDOM + ":"):
        count = ref.partition(":")[2]
        if count and not (count.isdigit() and 1 <= int(count) <= 200):
            raise ScenarioError(f"{ref}: the validator count after 'random:' must be 1..200")
        return random_scenario(seed, validators=int(count) if count else None, duration_s=duration_s)
    s = load(ref)
    return s.with_duration(duration_s) if duration_s is not None else s


def run_seed(ref: str, seed: int, duration_s: float | None, out: str | None) -> dict[str, Any]:
    """One seed, in a worker process. A failing seed is run again with its files
    written to `out`: the same seed gives the same run, so this is its replay."""
    scenario = scenario_for(ref, seed, duration_s)
    s = runner.run(scenario, seed, None, ref=ref, duration_s=duration_s)
    if not s["passed"] and out is not None:
        again = runner.run(scenario, seed, Path(out) / f"{Path(ref).stem.replace(':', '-')}-{seed}", ref=ref,
                           duration_s=duration_s)
        s["replayed_same_hash"] = again["trace_hash"] == s["trace_hash"]
    keep = ("scenario", "seed", "trace_hash", "passed", "failures", "safety", "liveness", "forks", "lost_txs",
            "lost_tx_causes",
            "heights", "wall_seconds", "virtual_seconds", "replay", "replayed_same_hash")
    return {k: s[k] for k in keep if k in s} | {"description": scenario.description}


def sweep(
    ref: str,
    seeds: range,
    *,
    jobs: int = 1,
    duration_s: float | None = None,
    out: Path | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every seed (in `jobs` processes); results in seed order."""
    scenario_for(ref, seeds.start if len(seeds) else 0, duration_s)  # a bad reference fails here, once
    results: list[dict[str, Any]] = []
    out_s = str(out) if out is not None else None
    if jobs <= 1:
        for seed in seeds:
            r = run_seed(ref, seed, duration_s, out_s)
            results.append(r)
            if on_result:
                on_result(r)
    else:
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: hash seeds differ, traces must not
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [pool.submit(run_seed, ref, seed, duration_s, out_s) for seed in seeds]
            for fut in as_completed(futures):
                r = fut.result()
                results.append(r)
                if on_result:
                    on_result(r)
    results.sort(key=lambda r: r["seed"])
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results
