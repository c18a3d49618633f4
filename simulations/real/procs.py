"""Real node processes on 127.0.0.1 for crash and fault runs: start, SIGKILL,
SIGSTOP/SIGCONT, restart, and read each node's HTTP API."""

from __future__ import annotations

import os
import signal
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


def until(pred: Any, timeout: float, what: str) -> float:
    """Poll `pred` until true; the seconds it took. AssertionError after `timeout`."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - t0
