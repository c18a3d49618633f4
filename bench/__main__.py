"""`make bench`: every benchmark in turn; each prints a table and writes bench/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench.micro",
    "bench/bench_hotpaths.py",
    "bench/bench_apply.py",
    "bench/bench_sim.py",
    "bench/bench_sync.py",
    "bench/bench_testnet.py",
    "bench/bench_flood.py",
]


def main() -> int:
    failed = []
    for script in SCRIPTS:
        if script.endswith(".py") and not (HERE.parent / script).exists():
            continue
        cmd = [sys.executable, "-m", script] if not script.endswith(".py") else [sys.executable, script]
        print(f"\n=== {script}", flush=True)
        if subprocess.run(cmd, cwd=HERE.parent).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
