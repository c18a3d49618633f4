"""Real local testnets for the benchmarks: one OS process per node, on 127.0.0.1.

* `make_testnet` — `node.testnet.init_testnet` plus thousands of funded benchmark
  accounts: the genesis is rewritten in `<out>/genesis.json` and in every home
  before the first start, so all nodes share it. Account keys are derived from a
  fixed seed (`account_key(i)`), so the load generator can sign for them.
* `Cluster` — starts `python -m node start --home …` per node (own session, log in
  `<home>/node.log`), stops them with SIGTERM then SIGKILL. Every process started
  is also in a module registry that `stop_all()` (called from the scripts' outer
  `finally` and from `atexit`) cleans up, whatever happens.
* Observation without touching the nodes' code: CPU and RSS per process
  (psutil), Prometheus `/metrics`, and the TCP bytes of the nodes' p2p
  connections (`ss -tin`: bytes_sent of each socket between testnet p2p ports,
  i.e. the encrypted libp2p traffic actually written to loopback).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from node.home import Home  # noqa: E402
from node.testnet import TestnetNode, init_testnet  # noqa: E402
from protocol import crypto  # noqa: E402
from protocol.governance.genesis import Genesis, GenesisAccount  # noqa: E402

ACCOUNT_SEED = b"ekklesia/bench/account/"
ACCOUNT_BALANCE = 1_000_000_000
STOP_GRACE_S = 10.0


# ---------------------------------------------------------------- accounts and genesis


@functools.cache
def account_key(i: int) -> crypto.Keypair:
    """The i-th benchmark account (deterministic: the generator and genesis agree)."""
    return crypto.Keypair(crypto.sha256(ACCOUNT_SEED + i.to_bytes(4, "big")))


def make_testnet(
    out: Path, validators: int, *, base_port: int, accounts: int, balance: int = ACCOUNT_BALANCE,
) -> list[TestnetNode]:
    """A fresh testnet in `out` whose genesis also funds benchmark accounts 0…accounts-1."""
    nodes = init_testnet(out, validators, base_port=base_port, chain_id="ekklesia-bench",
                         genesis_time_ms=time.time_ns() // 1_000_000, force=True)
    g = Genesis.from_json((out / "genesis.json").read_text())
    extra = [GenesisAccount(crypto.address(account_key(i).public_key), balance) for i in range(accounts)]
    merged = sorted({a.address: a for a in (*g.accounts, *extra)}.values(), key=lambda a: a.address)
    g = dataclasses.replace(g, accounts=tuple(merged))
    g.validate()
    text = g.to_json()
    (out / "genesis.json").write_text(text)
    for n in nodes:
        Home(n.home).genesis_file.write_text(text)
    return nodes


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(validators: int, start: int = 36656, *, extra: int = 0) -> int:
    """A base port whose p2p (base+10i) and API (base+10i+1) ports are all free now."""
    base = start
    while base < 60000:
        ports = [base + 10 * i + d for i in range(validators + extra) for d in (0, 1)]
        if all(_port_free(p) for p in ports):
            return base
        base += 1000
    raise RuntimeError("no free port range for a testnet")


# ---------------------------------------------------------------- processes

_REGISTRY: set[subprocess.Popen[bytes]] = set()


def _terminate(procs: Iterable[subprocess.Popen[bytes]], grace: float = STOP_GRACE_S) -> list[int | None]:
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        _REGISTRY.discard(p)
    return [p.returncode for p in procs]


def stop_all() -> None:
    """Stop every node process this Python process started and that still runs."""
    if _REGISTRY:
        _terminate(list(_REGISTRY))


atexit.register(stop_all)


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP behave like Ctrl-C, so `finally` blocks stop the nodes."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


@dataclass
class NodeProc:
    node: TestnetNode
    proc: subprocess.Popen[bytes]
    ps: psutil.Process
    api: str
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_s(self) -> float:
        try:
            t = self.ps.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return float("nan")

    def rss_mb(self) -> float:
        return self.memory_mb()[0]

    def memory_mb(self) -> tuple[float, float]:
        """(RSS, its anonymous part). The rest is file-backed: shared libraries and the
        pages of LevelDB tables the node has memory-mapped and read (a compaction reads
        its whole input that way; those pages are clean and the kernel may drop them)."""
        try:
            m = self.ps.memory_info()
            return float(m.rss) / 2**20, float(m.rss - m.shared) / 2**20
        except psutil.Error:
            return float("nan"), float("nan")


def start_node(node: TestnetNode, env: Mapping[str, str] | None = None, python_args: Sequence[str] = ()) -> NodeProc:
    """`python [python_args] -m node start --home <home>`; `python_args` e.g. ("-m", "cProfile", "-o", f)."""
    log_path = node.home / "node.log"
    full_env = {**os.environ, "EKKLESIA_NODE_LOG_FORMAT": "json", **(env or {})}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, *python_args, "-m", "node", "start", "--home", str(node.home)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env, cwd=ROOT,
            start_new_session=True,  # our Ctrl-C reaches the bench only; it stops the nodes itself
        )
    _REGISTRY.add(proc)
    return NodeProc(node, proc, psutil.Process(proc.pid), f"http://127.0.0.1:{node.api_port}", log_path)


@dataclass
class Cluster:
    nodes: list[TestnetNode]
    env: dict[str, str] = field(default_factory=dict)
    procs: list[NodeProc] = field(default_factory=list)
    python_args: dict[int, tuple[str, ...]] = field(default_factory=dict)  # per node index

    def start(self) -> None:
        self.procs = [start_node(n, self.env, self.python_args.get(i, ())) for i, n in enumerate(self.nodes)]

    def stop(self) -> list[int | None]:
        return _terminate([p.proc for p in self.procs])

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def p2p_ports(self) -> set[int]:
        return {n.p2p_port for n in self.nodes}

    def dead(self) -> list[str]:
        return [f"{p.node.name} (exit {p.proc.returncode})" for p in self.procs if not p.alive]

    async def wait_ready(self, http: httpx.AsyncClient, *, min_height: int = 2, timeout: float = 90.0) -> float:
        """Until every node answers, sees all its peers and has committed `min_height`."""
        t = time.monotonic()
        want_peers = len(self.nodes) - 1
        with trio.fail_after(timeout):
            while True:
                if self.dead():
                    raise RuntimeError(f"node died during start-up: {', '.join(self.dead())}")
                ok = 0
                for p in self.procs:
                    try:
                        s = (await http.get(f"{p.api}/v1/status", timeout=2.0)).json()
                    except (httpx.HTTPError, ValueError):
                        continue
                    if s.get("peers", 0) >= want_peers and s.get("height", 0) >= min_height and not s.get("syncing"):
                        ok += 1
                if ok == len(self.procs):
                    return time.monotonic() - t
                await trio.sleep(0.5)

    async def statuses(self, http: httpx.AsyncClient) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for p in self.procs:
            try:
                out.append((await http.get(f"{p.api}/v1/status", timeout=5.0)).json())
            except (httpx.HTTPError, ValueError):
                out.append(None)
        return out

    async def metrics(self, http: httpx.AsyncClient) -> list[dict[str, float]]:
        out = []
        for p in self.procs:
            try:
                out.append(parse_metrics((await http.get(f"{p.api}/metrics", timeout=10.0)).text))
            except httpx.HTTPError:
                out.append({})
        return out

    def cpu(self) -> list[float]:
        return [p.cpu_s() for p in self.procs]

    def memory(self) -> list[tuple[float, float]]:
        return [p.memory_mb() for p in self.procs]

    def wire_bytes(self) -> int | None:
        return p2p_tcp_bytes(self.p2p_ports)

    def p2p_stats(self) -> list[dict[str, int]]:
        """Each node's libp2p counters as logged on a clean stop (`p2p.stopped`: cumulative
        since start; e.g. `gossip_send_dropped`, which /metrics does not export)."""
        out = []
        for p in self.procs:
            last: dict[str, int] = {}
            try:
                for line in p.log_path.read_text(errors="replace").splitlines():
                    if '"p2p.stopped"' in line:
                        with contextlib.suppress(ValueError):
                            doc = json.loads(line)
                            last = {k: v for k, v in doc.items() if isinstance(v, int) and not isinstance(v, bool)}
            except OSError:
                pass
            out.append(last)
        return out


# ---------------------------------------------------------------- metrics and wire bytes

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value} (labels as printed; `*_created` dropped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = _SAMPLE.match(line)
        if m is None or m.group(1).endswith("_created"):
            continue
        try:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        except ValueError:
            continue
    return out


def metric(sample: Mapping[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, v in sample.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{val}"' in rest for k, val in labels.items()):
            total += v
    return total


_SS_ADDR = re.compile(r"(\S+):(\d+)\s+(\S+):(\d+)\s*$")
_SS_SENT = re.compile(r"\bbytes_sent:(\d+)")


def p2p_tcp_bytes(ports: set[int]) -> int | None:
    """TCP payload bytes sent so far on established connections between testnet p2p
    ports (a connection's two sockets: the dialler's has the listener's port as its
    remote port, the listener's has it as its local port; each counts what it sent).
    None if `ss` is unavailable."""
    try:
        out = subprocess.run(["ss", "-tinH", "state", "established"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total = 0
    current: tuple[int, int] | None = None
    for line in out.splitlines():
        if line[:1].isspace():  # the info line of the socket above
            if current is not None and (current[0] in ports or current[1] in ports):
                sent = _SS_SENT.search(line)
                if sent:
                    total += int(sent.group(1))
            current = None
        else:
            m = _SS_ADDR.search(line.strip())
            current = (int(m.group(2)), int(m.group(4))) if m else None
    return total
