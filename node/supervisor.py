"""`ekklesia testnet run`: start every node as its own process, show a live status
table, optionally run the governance demo, and stop everything cleanly on Ctrl-C.

One OS process per node: py-libp2p hosts sharing an event loop slow each other down
by an order of magnitude (see docs/network.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from node.testnet import TestnetNode

STOP_GRACE_S = 10.0


class NodeProcess:
    def __init__(self, node: TestnetNode, log_path: Path) -> None:
        self.node = node
        self.log_path = log_path
        self.proc: trio.Process | None = None
        self.restarts = 0

    async def start(self, nursery: trio.Nursery) -> None:
        log = self.log_path.open("ab")
        env = {**os.environ, "EKKLESIA_NODE_LOG_FORMAT": "json"}
        self.proc = await nursery.start(
            lambda task_status: trio.run_process(
                [sys.executable, "-m", "node", "start", "--home", str(self.node.home)],
                stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
                # Ctrl-C goes to the supervisor only; it stops the nodes in order.
                start_new_session=True, task_status=task_status,
            )
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)


def _table(
    rows: dict[str, dict[str, Any]], rates: dict[str, float], procs: list[NodeProcess], notes: list[str]
) -> Group:
    t = Table(title="ekklesia local testnet", title_style="bold")
    for col in ("node", "height", "round", "step", "peers", "mempool", "tx/s", "app hash", "state"):
        t.add_column(col, justify="right" if col in ("height", "round", "peers", "mempool", "tx/s") else "left")
    for p in procs:
        s = rows.get(p.node.name)
        state = "running" if p.alive else f"exited ({p.proc.returncode if p.proc else '-'})"
        if s is None:
            t.add_row(p.node.name, "-", "-", "-", "-", "-", "-", "-", state if p.alive else f"[red]{state}")
            continue
        t.add_row(
            p.node.name, str(s.get("height")), str(s.get("round", "-")), str(s.get("step", "-")),
            str(s.get("peers")), str(s.get("mempool_size", "-")), f"{rates.get(p.node.name, 0.0):.1f}",
            str(s.get("app_hash", ""))[:12], "syncing" if s.get("syncing") else state,
        )
    return Group(t, Text("\n".join(notes[-24:])), Text("Ctrl-C stops every node.", style="dim"))


async def run_testnet(out: Path, nodes: list[TestnetNode], demo: bool, duration: float) -> int:
    console = Console()
    procs = [NodeProcess(n, n.home / "node.log") for n in nodes]
    notes: list[str] = [f"logs: {out}/node*/node.log"]
    say: Callable[[str], None] = notes.append
    rows: dict[str, dict[str, Any]] = {}
    rates: dict[str, float] = {}
    tx_counts: dict[str, tuple[float, int]] = {}
    exit_code = 0
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            for p in procs:
                await p.start(nursery)

            async def stop_on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signal)
            if duration:
                nursery.cancel_scope.deadline = trio.current_time() + duration

            async def run_demo_when_ready() -> None:
                nonlocal exit_code
                from node.demo import run_demo

                api = f"http://127.0.0.1:{nodes[0].api_port}"
                while rows.get(nodes[0].name, {}).get("height", 0) < 2:
                    await trio.sleep(0.5)
                say("demo: governance in action")
                try:
                    await run_demo(out, api, lambda m: say(f"  {m}"))
                except Exception as exc:  # show it in the table; the testnet keeps running
                    say(f"  demo failed: {exc}")
                    exit_code = 1
                if duration:  # a bounded run (scripts, tests) ends with the demo
                    await trio.sleep(1.0)
                    nursery.cancel_scope.cancel()

            if demo:
                nursery.start_soon(run_demo_when_ready)
            try:
                async with httpx.AsyncClient(timeout=1.0) as http:
                    with Live(_table(rows, rates, procs, notes), console=console, refresh_per_second=4) as live:
                        while True:
                            for p in procs:
                                try:
                                    r = await http.get(f"http://127.0.0.1:{p.node.api_port}/v1/status")
                                    rows[p.node.name] = r.json()
                                    await _rate(http, p.node, rows[p.node.name], tx_counts, rates)
                                except (httpx.HTTPError, ValueError):
                                    rows.pop(p.node.name, None)
                            live.update(_table(rows, rates, procs, notes))
                            await trio.sleep(0.5)
            finally:
                with trio.CancelScope(shield=True):
                    await _stop_all(procs, console)
    return exit_code


async def _rate(http: httpx.AsyncClient, node: TestnetNode, status: dict[str, Any],
                counts: dict[str, tuple[float, int]], rates: dict[str, float]) -> None:
    """Committed transactions per second over the last few seconds, from block events."""
    now = trio.current_time()
    total = counts.get(node.name, (now, 0))
    h = status.get("height", 0)
    if h and counts.get(node.name + "/h", (0, 0))[1] != h:
        r = await http.get(f"http://127.0.0.1:{node.api_port}/v1/blocks/{h}")
        n = len(r.json().get("txs", [])) if r.status_code == 200 else 0
        counts[node.name + "/h"] = (now, h)
        t0, c0 = total
        counts[node.name] = (t0, c0 + n)
        if now - t0 > 5:
            rates[node.name] = (c0 + n) / (now - t0)
            counts[node.name] = (now, 0)


async def _stop_all(procs: list[NodeProcess], console: Console) -> None:
    console.print("stopping nodes…")
    for p in procs:
        p.signal(signal.SIGTERM)
    with trio.move_on_after(STOP_GRACE_S):
        while any(p.alive for p in procs):
            await trio.sleep(0.1)
    for p in procs:
        if p.alive:
            console.print(f"[yellow]{p.node.name} did not stop in {STOP_GRACE_S:.0f} s: killed")
            p.signal(signal.SIGKILL)
    console.print("all nodes stopped")
