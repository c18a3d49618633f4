"""Real node processes on 127.0.0.1 for crash and fault runs: start, SIGKILL,
SIGSTOP/SIGCONT, restart, and read each node's HTTP API. `stop_all` ends a set of
them (SIGCONT, SIGTERM, then SIGKILL after a grace period); `free_base_port` finds
a range of loopback ports a testnet can use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


class NodeProc:
    def __init__(self, name: str, home: Path, api_port: int) -> None:
        self.name, self.home = name, home
        self.api = f"http://127.0.0.1:{api_port}"
        self.p: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        log = (self.home / "node.log").open("ab")
        env = {**os.environ, "EKKLESIA_NODE_LOG_FORMAT": "json", "EKKLESIA_NODE_LOG_LEVEL": "info"}
        self.p = subprocess.Popen([sys.executable, "-m", "node", "start", "--home", str(self.home)],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def kill(self) -> None:
        if self.alive:
            assert self.p is not None
            self.p.send_signal(signal.SIGKILL)
            self.p.wait(10)

    @property
    def pid(self) -> int | None:
        return self.p.pid if self.p is not None else None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its memory and sockets but runs nothing."""
        if self.alive:
            assert self.p is not None
            self.p.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive:
            assert self.p is not None
            self.p.send_signal(signal.SIGCONT)

    def stop(self, grace: float = 15.0) -> int | str:
        if self.p is None:
            return "never started"
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
                return "hung"
        return self.p.returncode

    def get(self, path: str, timeout: float = 2.0) -> Any:
        try:
            r = httpx.get(f"{self.api}{path}", timeout=timeout)
            return r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def height(self) -> int:
        s = self.get("/v1/status", 1.0)
        return int(s["height"]) if s else -1


def stop_all(procs: list[NodeProc], grace: float = 10.0) -> dict[str, int | str]:
    """End every process at once: SIGCONT (a stopped process would hold SIGTERM
    pending), SIGTERM, then SIGKILL whatever is still running after `grace` seconds.
    Returns each one's exit code, "killed" or "never started"."""
    codes: dict[str, int | str] = {}
    running = [p for p in procs if p.alive]
    for p in running:
        assert p.p is not None
        try:
            p.p.send_signal(signal.SIGCONT)
            p.p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for p in procs:
        if p.p is None:
            codes[p.name] = "never started"
            continue
        try:
            codes[p.name] = p.p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.p.kill()
            p.p.wait(10)
            codes[p.name] = "killed"
    return codes


def free_base_port(nodes: int, *, attempts: int = 50) -> int:
    """A base port whose testnet ports (p2p base + 10 i, API base + 10 i + 1) are free now."""
    for _ in range(attempts):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 10 * nodes > 65_000:
            continue
        ok = True
        for off in [10 * i + j for i in range(nodes) for j in (0, 1)]:
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", base + off))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free range of loopback ports")


def until(pred: Any, timeout: float, what: str) -> float:
    """Poll `pred` until true; the seconds it took. AssertionError after `timeout`."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - t0
