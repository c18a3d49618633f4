"""`ekklesia sim`: run scenarios in the deterministic simulator, or (`sim run --real`)
against real `ekklesia` node processes on 127.0.0.1.

The lead registers the group in node/cli.py (``main.add_command(sim)``). Exit
status: 0 when every run met its scenario's expectations, 1 when one did not (or
the scenario file is bad: one ``error: ...`` line naming the key), 2 for bad usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from simulations.runner import BACKENDS
from simulations.scenario import ScenarioError, load, scenario_names
from simulations.sweep import RANDOM, scenario_for, sweep

EPILOG = """\b
Examples:
  ekklesia sim list
  ekklesia sim run happy-4 --seed 7 --out sim-out/happy-4
  ekklesia sim run path/to/my.toml --seed 3 --duration 20
  ekklesia sim run real-partition-heal --real --out sim-out/real   # node processes
  ekklesia sim run random --seed 17          # the random schedule sweep seed 17 ran
  ekklesia sim sweep --seeds 200 --jobs 4
  ekklesia sim sweep --seeds 50 --scenario message-loss --jobs 2 --out sim-out/sweep
"""


class SimError(click.ClickException):
    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@click.group(epilog=EPILOG)
def sim() -> None:
    """Deterministic simulation: many replicas, one thread, virtual time, seeded faults
    (or, with `run --real`, the same scenario against real node processes)."""


@sim.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """The shipped scenarios (simulations/scenarios/*.toml)."""
    rows = []
    for name in scenario_names():
        try:
            s = load(name)
            rows.append({"name": name, "validators": s.validators, "duration_s": s.duration_ms / 1000,
                         "description": " ".join(s.description.split())})
        except ScenarioError as exc:
            rows.append({"name": name, "error": str(exc)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        if "error" in r:
            click.echo(f"{r['name']:<22} ERROR {r['error']}")
        else:
            click.echo(f"{r['name']:<22} {r['validators']:>3} validators {r['duration_s']:>5g} s  {r['description']}")
    click.echo(f"{RANDOM:<22} a fault schedule drawn from the seed (what `sim sweep` runs); random:N for N validators")


@sim.command("run", epilog=EPILOG)
@click.argument("scenario")
@click.option("--seed", type=int, default=1, show_default=True, help="Root seed of every random stream.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write summary.json, events.jsonl, timeline.png and report.html here.")
@click.option("--duration", type=float,
              help="Override the scenario's duration_s (virtual seconds; wall seconds with --real).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--mode", type=click.Choice(sorted(BACKENDS)), default=None,
              help="Backend: deterministic (default) or real (node processes; the same as --real).")
@click.option("--real", is_flag=True,
              help="Run the scenario against real `ekklesia` node processes on 127.0.0.1 (docs/simulations.md).")
def run_cmd(scenario: str, seed: int, out: Path | None, duration: float | None, as_json: bool, mode: str | None,
            real: bool) -> None:  # fmt: skip
    """Run SCENARIO (a shipped name, a .toml path, or random[:N]) with one seed."""
    from simulations import runner

    if real and mode not in (None, "real"):
        raise click.UsageError(f"--real contradicts --mode {mode}")
    mode = "real" if real else mode or "deterministic"
    try:
        s = scenario_for(scenario, seed, duration)
        summary = runner.run(s, seed, out, mode=mode, ref=scenario, duration_s=duration)
    except ScenarioError as exc:  # a bad file, or one the real mode refuses
        raise SimError(str(exc)) from None
    except RuntimeError as exc:  # the real mode's testnet did not start
        if mode != "real":
            raise
        raise SimError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_summary(summary, out)
    if not summary["passed"]:
        sys.exit(1)


def _print_summary(s: dict[str, Any], out: Path | None) -> None:
    hs = s["heights"]
    verdict = click.style("passed", fg="green") if s["passed"] else click.style("FAILED", fg="red")
    click.echo(f"{s['scenario']} seed {s['seed']}: {verdict}")
    if s.get("mode") == "real":
        click.echo(f"  real processes: {s['virtual_seconds']:g} s timeline in {s['wall_seconds']:g} s wall "
                   f"(startup {s['startup_seconds']:g} s), {s['trace_events']} events, chain {s['trace_hash'][:16]}")
        for item in s["unsupported"]:
            click.echo(click.style(f"  skipped: {item}", fg="yellow"))
    else:
        click.echo(f"  virtual {s['virtual_seconds']:g} s in {s['wall_seconds']:g} s wall ({s['speedup']}x), "
                   f"{s['trace_events']} events, trace {s['trace_hash'][:16]}")
    click.echo(f"  heights {min(hs.values())}..{max(hs.values())} over {len(hs)} nodes; "
               f"max round {s['rounds']['max']}")
    click.echo(f"  safety {s['safety']}  liveness {s['liveness']}  validity {s['validity']}  "
               f"accountability {s['accountability']}")
    click.echo(f"  forks {s['forks'] or 'none'}  evidence {', '.join(s['evidence']) or 'none'}  "
               f"txs acked {s['txs']['acked']} lost {s['lost_txs']} pending {s['txs']['pending']}")
    for name, reason in s["halted"].items():
        click.echo(f"  halted: {name} ({'faulty' if name in s['byzantine'] else 'honest'}): {reason}")
    for name, lines in s["details"].items():
        for line in lines[:5]:
            click.echo(f"  {name}: {line}")
    for f in s["failures"]:
        click.echo(click.style(f"  failure: {f}", fg="red"))
    if out is not None:
        extra = ", nodes/ (homes and node.log of each node)" if s.get("mode") == "real" else ""
        click.echo(f"  wrote {out}/summary.json, events.jsonl, timeline.png, report.html{extra}")
    if not s["passed"]:
        click.echo(f"  replay: {s['replay']}")


@sim.command("sweep", epilog=EPILOG)
@click.option("--seeds", type=click.IntRange(1), required=True, help="How many seeds.")
@click.option("--start", type=int, default=0, show_default=True, help="First seed.")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True, help="Parallel processes.")
@click.option("--scenario", "ref", default=RANDOM, show_default=True,
              help="Scenario every seed runs; 'random' draws a fault schedule from each seed.")
@click.option("--duration", type=float, help="Override every run's duration (virtual seconds).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write sweep.json, and each failing seed's files, here.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def sweep_cmd(seeds: int, start: int, jobs: int, ref: str, duration: float | None, out: Path | None,
              as_json: bool) -> None:  # fmt: skip
    """Run many seeds in parallel processes; print a replay command for every failure."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    failed: list[dict[str, Any]] = []
    with Progress(TextColumn("[bold]sweep {task.fields[ref]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=console,
                  transient=as_json) as progress:  # fmt: skip
        task = progress.add_task("sweep", total=seeds, ref=ref, failed=0)

        def done(r: dict[str, Any]) -> None:
            if not r["passed"]:
                failed.append(r)
            progress.update(task, advance=1, failed=len(failed))

        try:
            results = sweep(ref, range(start, start + seeds), jobs=jobs, duration_s=duration, out=out, on_result=done)
        except ScenarioError as exc:
            raise SimError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
    else:
        passed = sum(r["passed"] for r in results)
        wall = sum(r["wall_seconds"] for r in results)
        virtual = sum(r["virtual_seconds"] for r in results)
        click.echo(f"{passed}/{len(results)} seeds passed ({virtual:g} virtual s in {wall:.1f} s of runs)")
    for r in sorted(failed, key=lambda r: r["seed"]):
        click.echo(f"seed {r['seed']} failed: {'; '.join(r['failures'])}", err=True)
        click.echo(f"  replay: {r['replay']}", err=True)
    if failed:
        sys.exit(1)
