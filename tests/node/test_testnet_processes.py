"""Real node processes on 127.0.0.1: a late node catches up through block sync and
then takes part in consensus; a validator killed with SIGKILL restarts from its
store, signs nothing conflicting and converges; SIGTERM stops every node cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_runtime_inprocess import free_base_port

from node.keys import load_validator_key
from node.testnet import init_testnet

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class Proc:
    def __init__(self, home: Path, api_port: int) -> None:
        self.home, self.api = home, f"http://127.0.0.1:{api_port}"
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.home / "node.log").open("ab")
        env = {**os.environ, "EKKLESIA_NODE_LOG_FORMAT": "json", "EKKLESIA_NODE_LOG_LEVEL": "info"}
        self.p = subprocess.Popen([sys.executable, "-m", "node", "start", "--home", str(self.home)],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    def status(self) -> dict | None:
        try:
            return httpx.get(f"{self.api}/v1/status", timeout=1.0).json()
        except (httpx.HTTPError, ValueError):
            return None

    def height(self) -> int:
        s = self.status()
        return s["height"] if s else -1

    def block(self, h: int) -> dict:
        return httpx.get(f"{self.api}/v1/blocks/{h}", timeout=2.0).json()


def until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def test_late_join_kill_restart_and_clean_stop(tmp_path):
    out = tmp_path / "tn"
    nodes = init_testnet(out, 4, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    procs = [Proc(n.home, n.api_port) for n in nodes]
    try:
        for p in procs[:3]:
            p.start()
        until(lambda: min(p.height() for p in procs[:3]) >= 3, 60, "three validators to commit 3 blocks")

        procs[3].start()  # started late: must sync, then take part
        late_key = load_validator_key(nodes[3].home / "config" / "validator_key.json").pubkey.hex()
        start_height = procs[0].height()
        until(lambda: procs[3].height() >= start_height, 60, "the late node to catch up")

        def late_node_proposed() -> bool:
            top = procs[3].height()
            return any(procs[3].block(h)["proposer"] == late_key for h in range(start_height + 1, top + 1))

        until(late_node_proposed, 60, "the late node to propose a block")

        procs[1].p.send_signal(signal.SIGKILL)
        procs[1].p.wait(10)
        killed_at = procs[0].height()
        until(lambda: procs[0].height() >= killed_at + 2, 60, "the other three to go on")
        procs[1].start()
        until(lambda: procs[1].height() >= procs[0].height() - 1 >= killed_at + 2, 60, "the killed node to converge")

        top = min(p.height() for p in procs)
        for h in range(1, top + 1):
            blocks = [p.block(h) for p in procs]
            assert len({b["hash"] for b in blocks}) == 1, f"nodes disagree at height {h}"
            assert len({b["app_hash"] for b in blocks}) == 1
            assert all(b["evidence"] == [] for b in blocks), f"an honest validator was accused at {h}"
    finally:
        for p in procs:
            if p.p is not None and p.p.poll() is None:
                p.p.send_signal(signal.SIGTERM)
        codes = []
        for p in procs:
            if p.p is not None:
                try:
                    codes.append(p.p.wait(20))
                except subprocess.TimeoutExpired:
                    p.p.kill()
                    codes.append("hung")
    assert codes == [0, 0, 0, 0], f"exit codes after SIGTERM: {codes}"
