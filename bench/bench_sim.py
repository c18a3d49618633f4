"""Speed-up of the deterministic simulator over real time, by cluster size.

Each size runs a clean network with a light governance workload (5 tx/s) until every
node has committed the target number of heights; speed-up is virtual seconds over
wall-clock seconds (the CPU-time speed-up is printed too: on a shared machine it is
the steadier figure). Two consensus timings:

* production: `ConsensusConfig()` defaults (1 s minimum block interval, 3 s propose
  timeout) — what a real ekklesia network runs, so this is the speed-up over
  running the real network for the same heights;
* fast: the simulator's scenario default (200 ms blocks) — four to five times more
  heights per virtual second, hence a lower speed-up for the same work per height.

Run:

    .venv/bin/python bench/bench_sim.py [--sizes 4,10,30,100] [--profiles production,fast] [--repeat N]

Prints a table and writes bench/results/sim.json (`results`: one entry per size and
profile, each with `validators` and `speedup`). Targets: 4 validators ≥ 100×,
30 validators ≥ 10× (production timing); 100 validators must complete 50 heights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protocol.consensus.config import ConsensusConfig  # noqa: E402
from simulations import runner  # noqa: E402
from simulations.cluster import FAST_CONSENSUS  # noqa: E402
from simulations.scenario import Expect, LinkSpec, Scenario, WorkloadSpec  # noqa: E402

HEIGHTS = {4: 300, 10: 150, 30: 60, 100: 50}
TARGETS = {4: 100.0, 30: 10.0}
PROFILES = {"production": ConsensusConfig(), "fast": FAST_CONSENSUS}


def scenario(n: int, consensus: ConsensusConfig) -> Scenario:
    return Scenario(
        name=f"bench-{n}",
        duration_ms=10**9,
        validators=n,
        powers=tuple([10] * n),
        network=LinkSpec(latency_ms=10, jitter_ms=20),
        consensus=consensus,
        workload=WorkloadSpec(rate=5.0, clients=8, residents=6, start_ms=500, stop_ms=10**9),
        expect=Expect(liveness="not-checked"),
    )


def measure(n: int, profile: str, heights: int) -> dict[str, object]:
    s = scenario(n, PROFILES[profile])
    cluster, _, _ = runner.build(s, seed=1, keep_trace=False)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    cluster.start()
    t = 0
    while min(cluster.heights().values()) < heights:
        t += 1_000
        cluster.run_until(t)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    virtual = t / 1000
    return {
        "validators": n,
        "profile": profile,
        "heights": min(cluster.heights().values()),
        "virtual_s": virtual,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "speedup": round(virtual / wall, 1),
        "speedup_cpu": round(virtual / cpu, 1),
        "events": cluster.sched.events_run,
        "events_per_s": round(cluster.sched.events_run / wall),
        "target": TARGETS.get(n) if profile == "production" else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4,10,30,100")
    ap.add_argument("--profiles", default="production,fast")
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs (wall time)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sim.json"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    profiles = args.profiles.split(",")
    results = []
    print(f"{'validators':>10} {'profile':>10} {'heights':>7} {'virtual s':>9} {'wall s':>8} {'cpu s':>8} "
          f"{'speed-up':>9} {'(cpu)':>7} {'target':>7}")
    for profile in profiles:
        for n in sizes:
            runs = [measure(n, profile, HEIGHTS.get(n, 50)) for _ in range(max(1, args.repeat))]
            r = max(runs, key=lambda x: x["speedup"])  # type: ignore[arg-type, return-value]
            results.append(r)
            target = f"{r['target']:g}x" if r["target"] else "-"
            print(f"{n:>10} {profile:>10} {r['heights']:>7} {r['virtual_s']:>9g} {r['wall_s']:>8.2f} "
                  f"{r['cpu_s']:>8.2f} {r['speedup']:>8.1f}x {r['speedup_cpu']:>6.1f}x {target:>7}", flush=True)
    doc = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "speedup = virtual seconds / wall seconds; production = ConsensusConfig() defaults, "
                "fast = the scenarios' default timing (200 ms blocks)",
        "consensus": {p: dataclasses.asdict(PROFILES[p]) for p in profiles},
        "results": results,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
