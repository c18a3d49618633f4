"""Real-process mode: a scenario against `ekklesia` node processes on 127.0.0.1.

    ekklesia sim run real-partition-heal --real --seed 1 --out sim-out/real
    ekklesia sim run minority-partition --mode real --duration 30

`run_real` creates a testnet (`node.testnet.init_testnet`: one validator per scenario
validator, equal power, the testnet's fast block timing, `api.admin_enabled` on the
loopback API), starts one `ekklesia start` process per validator, waits until every
node has committed a block, and then plays the scenario's fault timeline in wall
seconds from that moment:

* crash → SIGKILL, restart → start the process again (same home, same ports),
  pause → SIGSTOP, resume → SIGCONT;
* partition / isolate / cut → `POST /v1/admin/peers/{id}/block` on both ends of
  every cut link (a one-way cut is blocked both ways: libp2p connections are
  bidirectional), restore / heal → `/unblock`. The wanted set of blocked links is
  re-applied to a node that restarts (its blocks live in memory) or resumes;
* loss, clock skew, per-link latency and loss, consensus timing overrides and
  non-transfer workload kinds cannot be expressed: they are skipped and listed in
  the summary's `unsupported`. Byzantine behaviours, twins and unequal powers are
  refused (`UnsupportedScenario`) before any process starts.

A workload of signed transfers (`POST /v1/txs?wait=commit`, one sender per demo
account, each talking to its home node) runs at the scenario's rate; a transfer
is acknowledged when its home node answers "committed". A sampler reads every
node's `/v1/status` five times a second. After the timeline, paused nodes are
resumed, the nodes get a few seconds to converge, every block is read from every
running node, and the checkers run over those chains: safety (one block hash and
app hash per height, linked chains), validity (one height per tx), liveness (the
sampled heights: every node up at the end gains `liveness.heights` heights in the
scenario's window), lost transactions (acknowledged, yet absent from the chain),
evidence (the duplicate-vote evidence in committed blocks). Every process is
stopped (SIGCONT, SIGTERM, then SIGKILL) in a `finally`, also on Ctrl-C or SIGTERM.

The run is not byte-deterministic: wall-clock scheduling decides heights, rounds and
block contents. `trace_hash` is a SHA-256 over (height, block hash) of the longest
chain read at the end; `--seed` drives the workload's choices only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.text import Text

from simulations.checkers import NOT_APPLICABLE, NOT_CHECKED, OK, VIOLATED, EvidenceItem, Verdict
from simulations.faults import NETWORK, Period
from simulations.scenario import PROPOSER, Fault, LinkSpec, Scenario, ScenarioError

MAX_REAL_VALIDATORS = 16  # one Python process each, on a shared machine
STARTUP_TIMEOUT_S = 90.0
SAMPLE_EVERY_S = 0.2
TICK_S = 0.05
TX_WAIT_S = 4.0  # ?wait=commit&timeout= of each transfer
SETTLE_S = 10.0  # after the timeline: time given to the nodes to reach the same height
MAX_SENDERS = 4  # the funded demo accounts besides the registrar
HTTP_TIMEOUT_S = 1.0
ADMIN_TIMEOUT_S = 3.0
UP, PAUSED, DOWN = "up", "paused", "down"
SIGNAL_ACTIONS = {"crash": "kill", "restart": "start", "pause": "stop", "resume": "cont"}
LINK_ACTIONS = frozenset({"partition", "isolate", "cut", "restore", "heal"})
SKIPPED_ACTIONS = {"loss": "message loss and duplication", "skew": "clock skew"}


class UnsupportedScenario(ScenarioError):
    """A scenario the real-process mode refuses to run; the message lists every reason."""


# ---------------------------------------------------------------- what can be expressed


@dataclass
class Support:
    unsupported: list[str] = field(default_factory=list)  # skipped: the run goes on without them
    notes: list[str] = field(default_factory=list)  # approximations


def check_support(scenario: Scenario) -> Support:
    """Refuse what the real mode cannot run at all (raises `UnsupportedScenario`,
    listing every item); list what it skips or approximates."""
    refused = []
    for i, b in enumerate(scenario.byzantine):
        refused.append(f"byzantine[{i}]: behaviour {b.behaviour!r} on {', '.join(b.nodes)} (a Byzantine node is a "
                       "different node program; only the deterministic mode runs them)")
    if scenario.twins:
        refused.append(f"validators.twins: {', '.join(scenario.twins)} (two processes with one key)")
    if len(set(scenario.powers)) > 1:
        refused.append(f"validators.powers: {list(scenario.powers)} (the testnet gives every validator equal power)")
    if scenario.validators > MAX_REAL_VALIDATORS:
        refused.append(f"validators.count: {scenario.validators} processes (at most {MAX_REAL_VALIDATORS})")
    if refused:
        raise UnsupportedScenario(
            f"{scenario.source or scenario.name}: the real-process mode cannot run this scenario: " + "; ".join(refused)
        )
    s = Support()
    net, default = scenario.network, LinkSpec()
    if (net.latency_ms, net.jitter_ms, net.distribution) != (default.latency_ms, default.jitter_ms,
                                                              default.distribution):
        s.unsupported.append(f"network latency {net.latency_ms} ms + {net.jitter_ms} ms {net.distribution} "
                             "(loopback latency instead)")
    if net.drop_ppm or net.duplicate_ppm:
        s.unsupported.append(f"network drop {net.drop_ppm / 1e4:g}% / duplicate {net.duplicate_ppm / 1e4:g}%")
    for i, o in enumerate(scenario.links):
        s.unsupported.append(f"network.links[{i}] {o.src}->{o.dst}: per-link latency and loss")
    for f in scenario.faults:
        if f.action in SKIPPED_ACTIONS:
            s.unsupported.append(f"fault at {f.at_ms / 1000:g} s: {f.action} ({SKIPPED_ACTIONS[f.action]})")
        elif f.action == "cut" and f.one_way:
            s.notes.append(f"fault at {f.at_ms / 1000:g} s: one-way cut {f.src}->{f.dst} is blocked both ways")
    from simulations.cluster import FAST_CONSENSUS

    if scenario.consensus != FAST_CONSENSUS:
        s.unsupported.append("consensus timing overrides (the nodes use the testnet's: 2 s propose timeout, "
                             "500 ms minimum block interval)")
    others = sorted(k for k, w in scenario.workload.mix if w and k != "transfer")
    if scenario.workload.rate > 0 and others:
        s.unsupported.append(f"workload kinds {', '.join(others)} (the real mode sends transfers only)")
    return s


class Links:
    """The wanted network topology, as the simulator's `Network` holds it: a set of
    directed cut links. Real connections are bidirectional, so a pair is blocked
    when either direction is cut."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = list(nodes)
        self.down: set[tuple[str, str]] = set()

    def apply(self, f: Fault) -> None:
        match f.action:
            case "partition":
                self.down.clear()
                member: dict[str, set[int]] = {n: set() for n in self.nodes}
                for gi, group in enumerate(f.groups):
                    for n in group:
                        member[n].add(gi)
                self.down = {(a, b) for a in self.nodes for b in self.nodes if a != b and not member[a] & member[b]}
            case "isolate":
                node = f.nodes[0]
                self.apply(Fault(f.at_ms, "partition", groups=((node,), tuple(n for n in self.nodes if n != node))))
            case "cut":
                self.down.add((f.src, f.dst))
                if not f.one_way:
                    self.down.add((f.dst, f.src))
            case "restore":
                self.down.discard((f.src, f.dst))
                self.down.discard((f.dst, f.src))
            case "heal":
                self.down.clear()
            case _:
                raise ValueError(f"{f.action!r} is not a network fault")

    def blocked_pairs(self) -> set[frozenset[str]]:
        return {frozenset(link) for link in self.down}

    def blocked_by(self, node: str) -> set[str]:
        """The peers `node` must refuse."""
        return {b for a, b in self.down if a == node} | {a for a, b in self.down if b == node}


def node_actions(f: Fault) -> list[tuple[str, str]]:
    """(action, node) for a crash, restart, pause or resume whose nodes are resolved:
    "kill" = SIGKILL, "start" = a new process, "stop" = SIGSTOP, "cont" = SIGCONT."""
    if f.action not in SIGNAL_ACTIONS:
        return []
    if PROPOSER in f.nodes:
        raise ValueError("resolve @proposer first")
    return [(SIGNAL_ACTIONS[f.action], n) for n in f.nodes]


# ---------------------------------------------------------------- checks over the chains read at the end


Chain = dict[int, dict[str, Any]]  # height -> the block as GET /v1/blocks/{height} returns it


def check_chains(chains: dict[str, Chain], chain_id: str) -> tuple[Verdict, list[int], Verdict]:
    """Safety (and the forks) and validity over every node's blocks."""
    safety, validity = Verdict(OK), Verdict(OK)
    forks = []
    heights = sorted({h for c in chains.values() for h in c})
    for h in heights:
        seen = {n: c[h] for n, c in sorted(chains.items()) if h in c}
        hashes = sorted({b["hash"] for b in seen.values()})
        if len(hashes) > 1:
            forks.append(h)
            by = {x: sorted(n for n, b in seen.items() if b["hash"] == x) for x in hashes}
            safety.note(f"height {h}: conflicting blocks " + "; ".join(f"{x[:12]} on {','.join(ns)}"
                                                                         for x, ns in by.items()))
        elif len({b["app_hash"] for b in seen.values()}) > 1:
            safety.note(f"height {h}: block {hashes[0][:12]} with different app hashes")
    for n, c in sorted(chains.items()):
        where: dict[str, int] = {}
        for h in sorted(c):
            b = c[h]
            if h - 1 in c and b["prev_hash"] != c[h - 1]["hash"]:
                safety.note(f"{n}: block {h} does not link to block {h - 1}")
            if b["height"] != h or b["chain_id"] != chain_id:
                validity.note(f"{n}: block {h} is for height {b['height']} of chain {b['chain_id']!r}")
            if b.get("commit") and b["commit"]["block_hash"] != b["hash"]:
                validity.note(f"{n}: the commit of height {h} is for another block")
            for tx in b["txs"]:
                if tx in where:
                    validity.note(f"{n}: tx {tx[:12]} committed at heights {where[tx]} and {h}")
                where[tx] = h
    return safety, forks, validity


def collect_evidence(chains: dict[str, Chain], names_by_pubkey: dict[str, str]) -> list[EvidenceItem]:
    out: dict[tuple[str, int, int], EvidenceItem] = {}
    for _, c in sorted(chains.items()):
        for h, b in sorted(c.items()):
            for e in b.get("evidence", []):
                name = names_by_pubkey.get(e["validator"], e["validator"][:12])
                out.setdefault((name, e["height"], e["round"]),
                               EvidenceItem(name, "duplicate-vote", e["height"], e["round"], f"block {h}"))
    return [out[k] for k in sorted(out)]


def check_lost(chains: dict[str, Chain], acked: dict[str, tuple[int, str, str]]
               ) -> tuple[list[str], list[str], Verdict]:  # fmt: skip
    """Lost: an acknowledged tx that is missing from a chain that reached the height
    where the longest chain holds it (or that no chain holds). Lagging: held by the
    longest chain above some node's last height (that node did not catch up)."""
    v = Verdict(OK)
    longest = max(chains.values(), key=len, default={})
    where = {tx: h for h, b in longest.items() for tx in b["txs"]}
    held = {n: {tx for b in c.values() for tx in b["txs"]} for n, c in chains.items()}
    lost, lagging = [], []
    for tx in sorted(acked):
        t, home, _ = acked[tx]
        if tx not in where:
            lost.append(tx)
            v.note(f"tx {tx[:16]} acknowledged by {home} at {t / 1000:g} s is in no block of the longest chain")
            continue
        missing = sorted(n for n, c in chains.items() if max(c, default=0) >= where[tx] and tx not in held[n])
        if missing:
            lost.append(tx)
            v.note(f"tx {tx[:16]} (height {where[tx]}) is missing on {', '.join(missing)}")
        elif any(max(c, default=0) < where[tx] for c in chains.values()):
            lagging.append(tx)
    return lost, lagging, v


def height_at(samples: list[tuple[int, int, int]], t_ms: int) -> int:
    best = 0
    for t, h, _ in samples:
        if t > t_ms:
            break
        best = max(best, h)
    return best


def check_liveness(scenario: Scenario, samples: dict[str, list[tuple[int, int, int]]], live: list[str],
                   heights: dict[str, int]) -> tuple[Verdict, dict[str, int]]:  # fmt: skip
    """After the last fault (or `liveness.after_s`), every live node gains `heights`
    heights within `within_s` (wall seconds of the timeline, from the samples)."""
    if scenario.expect.liveness == NOT_CHECKED:
        return Verdict(NOT_CHECKED), {}
    v = Verdict(OK)
    after = scenario.liveness_after_ms()
    until = after + scenario.liveness.within_ms
    gained = {n: height_at(samples[n], until) - height_at(samples[n], after) for n in live}
    if not live:
        v.note("no node is up at the end")
    for n in live:
        if gained[n] < scenario.liveness.heights:
            v.note(f"{n}: {gained[n]} new heights in {after / 1000:g}–{until / 1000:g} s, "
                   f"needs {scenario.liveness.heights}")
        if heights.get(n, 0) < scenario.expect.min_height:
            v.note(f"{n}: height {heights.get(n, 0)} at the end, expected at least {scenario.expect.min_height}")
    return v, gained


# ---------------------------------------------------------------- the run


@dataclass
class _Node:
    name: str
    proc: Any  # NodeProc
    peer_id: str
    address: str  # validator address, hex
    state: str = DOWN
    blocked: set[str] = field(default_factory=set)  # peers this process refuses now (as far as we know)
    pids: list[int] = field(default_factory=list)


class _RealRun:
    def __init__(self, scenario: Scenario, seed: int, workdir: Path, console: Console, base_port: int | None) -> None:
        self.scenario, self.seed, self.workdir, self.console = scenario, seed, workdir, console
        self.base_port = base_port
        self.names = scenario.node_names
        self.links = Links(self.names)
        self.nodes: dict[str, _Node] = {}
        self.lock = threading.Lock()
        self.events: list[tuple[int, str, str, list[Any]]] = []
        self.samples: dict[str, list[tuple[int, int, int]]] = {n: [] for n in self.names}
        self.periods: list[Period] = []
        self.acked: dict[str, tuple[int, str, str]] = {}  # tx hash -> (t_ms, home node, kind)
        self.submitted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.admin = Counter[str]()
        self.halted: dict[str, str] = {}
        self.proposer: str | None = None
        self.stop_sampling = threading.Event()
        self.stop_workload = threading.Event()
        self.t0 = time.monotonic()
        self.startup_s = 0.0
        self.chain_id = ""
        self.faults_applied = 0
        self.pool = ThreadPoolExecutor(max_workers=2 * len(self.names), thread_name_prefix="sim-real-admin")

    # ------------------------------------------------------------ bookkeeping

    def now_ms(self) -> int:
        return round((time.monotonic() - self.t0) * 1000)

    def event(self, node: str, kind: str, *details: Any) -> None:
        with self.lock:
            self.events.append((self.now_ms(), node, kind, list(details)))

    def _open(self, what: str, node: str, detail: str = "") -> None:
        if not any(p.what == what and p.node == node and p.end_ms is None for p in self.periods):
            self.periods.append(Period(what, node, self.now_ms(), None, detail))

    def _close(self, what: str, node: str) -> None:
        for p in self.periods:
            if p.what == what and p.node == node and p.end_ms is None:
                p.end_ms = self.now_ms()

    # ------------------------------------------------------------ processes

    def create(self) -> None:
        from node.testnet import init_testnet
        from simulations.real.procs import NodeProc, free_base_port

        base = self.base_port or free_base_port(len(self.names))
        tn = init_testnet(self.workdir, len(self.names), base_port=base, chain_id="ekklesia-sim-real",
                          genesis_time_ms=time.time_ns() // 1_000_000, force=True)
        self.chain_id = "ekklesia-sim-real"
        for name, n in zip(self.names, tn, strict=True):
            self.nodes[name] = _Node(name, NodeProc(name, n.home, n.api_port), n.peer_id, n.validator_address)

    def start(self, name: str) -> None:
        node = self.nodes[name]
        node.proc.start()
        node.state, node.blocked = UP, set()  # a new process refuses no one yet
        node.pids.append(node.proc.pid)

    def wait_ready(self, live: Live) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            hs = {n: self._height(n) for n in self.names}
            live.update(Text(f"starting {len(self.names)} nodes: heights {_fmt_heights(hs)}"))
            if min(hs.values()) >= 1:
                break
            for n in self.names:
                if not self.nodes[n].proc.alive:
                    raise RuntimeError(f"{n} exited during startup (see {self.nodes[n].proc.home / 'node.log'})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the testnet did not commit a block within {STARTUP_TIMEOUT_S:g} s: "
                                   f"heights {_fmt_heights(hs)} (node logs in {self.workdir})")
            time.sleep(0.2)
        self.startup_s = time.monotonic() - self.t0
        self.t0 = time.monotonic()
        for n, h in hs.items():
            self.samples[n].append((0, h, 0))
        self.event("-", "started", round(self.startup_s, 3), [hs[n] for n in self.names])

    def _get(self, name: str, path: str, timeout: float = HTTP_TIMEOUT_S) -> Any:
        return self.nodes[name].proc.get(path, timeout)

    def _height(self, name: str) -> int:
        s = self._get(name, "/v1/status")
        return int(s["height"]) if s else -1

    # ------------------------------------------------------------ faults

    def resolve(self, name: str, action: str) -> str:
        """@proposer: the proposer of the next height, at the round of the most advanced
        running node; for restart/resume the node it named last."""
        if name != PROPOSER:
            return name
        if action in ("restart", "resume") and self.proposer is not None:
            return self.proposer
        from protocol import crypto
        from protocol.consensus.proposer import proposer
        from protocol.validators import ValidatorSet

        best: tuple[int, int, str] | None = None
        for n in self.names:
            if self.nodes[n].state == UP:
                s = self._get(n, "/v1/status")
                if s and (best is None or int(s["height"]) > best[0]):
                    best = (int(s["height"]), int(s.get("round") or 0), n)
        if best is None:
            raise RuntimeError("@proposer: no node answers")
        height, rnd, lead = best
        vals = self._get(lead, f"/v1/validators?height={height + 1}")
        if not vals:
            raise RuntimeError(f"@proposer: {lead} did not return the validator set")
        vs = ValidatorSet.of((bytes.fromhex(v["pubkey"]), int(v["power"])) for v in vals["validators"])
        address = crypto.address(proposer(vs, height + 1, rnd)).hex()
        self.proposer = next(n for n in self.names if self.nodes[n].address == address)
        return self.proposer

    def apply(self, f: Fault, console: Console) -> None:
        self.faults_applied += 1
        if f.action in SKIPPED_ACTIONS:
            self.event("-", "skipped", f.action, f"not expressible with real processes ({SKIPPED_ACTIONS[f.action]})")
            console.print(f"[yellow]{self.now_ms() / 1000:6.2f} s  skipped {f.action} (unsupported)")
            return
        nodes = tuple(self.resolve(n, f.action) for n in f.nodes)
        f = Fault(f.at_ms, f.action, nodes=nodes, groups=f.groups, src=f.src, dst=f.dst, one_way=f.one_way)
        if f.action in LINK_ACTIONS:
            self.links.apply(f)
            detail = _describe(f)
            if self.links.down:
                self._close("partition", NETWORK)
                self._open("partition", NETWORK, detail)
            else:
                self._close("partition", NETWORK)
            self.event("-", "fault", f.action, detail)
            console.print(f"{self.now_ms() / 1000:6.2f} s  {f.action} {detail}".rstrip())
            self.reconcile()
        else:
            detail = ",".join(f.nodes)
            self.event("-", "fault", f.action, detail)
            console.print(f"{self.now_ms() / 1000:6.2f} s  {f.action} {detail}".rstrip())
            for act, n in node_actions(f):
                self._signal(act, n)

    def _signal(self, act: str, name: str) -> None:
        node = self.nodes[name]
        if act == "kill":
            if node.state == DOWN:
                self.event(name, "ignored", "crash", "already down")
                return
            node.proc.kill()
            node.state = DOWN
            self._open("crash", name)
        elif act == "start":
            if node.state != DOWN:
                self.event(name, "ignored", "restart", f"is {node.state}")
                return
            self.start(name)
            self._close("crash", name)
        elif act == "stop":
            if node.state != UP:
                self.event(name, "ignored", "pause", f"is {node.state}")
                return
            node.proc.pause()
            node.state = PAUSED
            self._open("pause", name)
        elif act == "cont":
            if node.state != PAUSED:
                self.event(name, "ignored", "resume", f"is {node.state}")
                return
            node.proc.resume()
            node.state = UP
            self._close("pause", name)
        self.event(name, act, node.proc.pid)

    def reconcile(self) -> None:
        """Bring every running process's blocked peers to what the topology wants, all
        calls at once (a block waits for the connection to close: ~0.5 s). A process
        that does not answer (restarting) is tried again at the next tick."""
        calls = []
        for name in self.names:
            node = self.nodes[name]
            if node.state != UP:
                continue
            want = self.links.blocked_by(name)
            calls += [(name, p, "block") for p in sorted(want - node.blocked)]
            calls += [(name, p, "unblock") for p in sorted(node.blocked - want)]
        if not calls:
            return
        for (name, peer, verb), ok in zip(calls, self.pool.map(self._admin, calls), strict=True):
            if not ok:
                self.admin["failed"] += 1
                continue
            self.admin[verb] += 1
            (self.nodes[name].blocked.add if verb == "block" else self.nodes[name].blocked.discard)(peer)
            self.event(name, verb, peer)

    def _admin(self, call: tuple[str, str, str]) -> bool:
        name, peer, verb = call
        url = f"{self.nodes[name].proc.api}/v1/admin/peers/{self.nodes[peer].peer_id}/{verb}"
        try:
            return httpx.post(url, timeout=ADMIN_TIMEOUT_S).status_code == 200
        except httpx.HTTPError:
            return False

    def check_exits(self) -> None:
        for name, node in self.nodes.items():
            if node.state != DOWN and not node.proc.alive:
                code = node.proc.p.returncode if node.proc.p is not None else None
                node.state = DOWN
                self.halted[name] = f"the process exited by itself with code {code}"
                self.event(name, "exited", code)
                self._open("crash", name, "exited")

    # ------------------------------------------------------------ sampling and workload

    def sampler(self, name: str) -> None:
        node = self.nodes[name]
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
            while not self.stop_sampling.is_set():
                if node.state == UP:
                    try:
                        r = http.get(f"{node.proc.api}/v1/status")
                        h = int(r.json()["height"]) if r.status_code == 200 else -1
                    except (httpx.HTTPError, ValueError, KeyError):
                        h = -1
                    with self.lock:
                        last = self.samples[name][-1][1] if self.samples[name] else 0
                    if h > last:
                        t = self.now_ms()
                        with self.lock:
                            self.samples[name].append((t, h, 0))
                        self.event(name, "height", h)
                self.stop_sampling.wait(SAMPLE_EVERY_S)

    def sender(self, key: Any, home: str, to: list[bytes], interval_s: float, rng: random.Random) -> None:
        from protocol import crypto
        from protocol.governance.accounts import Transfer
        from protocol.types import Tx

        w = self.scenario.workload
        stop_ms = self.scenario.workload_stop_ms()
        addr = crypto.address_hex(key.public_key)
        node = self.nodes[home]
        nonce = 0
        next_s = w.start_ms / 1000 + rng.uniform(0, interval_s)
        with httpx.Client(timeout=TX_WAIT_S + 5) as http:
            while not self.stop_workload.is_set():
                if self.stop_workload.wait(max(0.0, next_s - (time.monotonic() - self.t0))):
                    return
                if self.now_ms() >= stop_ms:
                    return
                next_s += interval_s
                if node.state != UP:
                    with self.lock:
                        self.refused[f"home node {node.state}"] += 1
                    continue
                tx = Tx.create(key, self.chain_id, nonce, "transfer",
                               Transfer(rng.choice(to), rng.randint(1, 100), f"sim {self.seed}").encode())
                t_sub = self.now_ms()
                with self.lock:
                    self.submitted["transfer"] += 1
                try:
                    r = http.post(f"{node.proc.api}/v1/txs", params={"wait": "commit", "timeout": f"{TX_WAIT_S:g}"},
                                  content=tx.encode(), headers={"content-type": "application/msgpack"})
                    body = r.json()
                except (httpx.HTTPError, ValueError):
                    with self.lock:
                        self.refused["no answer"] += 1
                    acct = self._get(home, f"/v1/accounts/{addr}")
                    if acct is not None:
                        nonce = int(acct["nonce"])
                    continue
                if r.status_code == 200 and body.get("status") == "committed":
                    with self.lock:
                        self.acked[body["hash"]] = (t_sub, home, "transfer")
                    self.event(home, "tx-acked", body["hash"], body.get("height"))
                    nonce += 1
                elif r.status_code == 202:  # admitted, not committed within TX_WAIT_S: not acknowledged
                    with self.lock:
                        self.refused[f"not committed within {TX_WAIT_S:g} s"] += 1
                    nonce += 1  # it waits in the home node's mempool
                else:
                    msg = str((body.get("error") or {}).get("message", f"HTTP {r.status_code}"))
                    m = re.search(r"is not the next one \((\d+)\)", msg)
                    with self.lock:
                        self.refused["nonce" if m else msg[:60]] += 1
                    if m:
                        nonce = int(m.group(1))

    def start_workload(self) -> list[threading.Thread]:
        w = self.scenario.workload
        if w.rate <= 0:
            return []
        from node.keys import Keystore
        from node.testnet import DEMO_ACCOUNTS
        from protocol import crypto

        store = Keystore(self.workdir / "keys")
        names = list(DEMO_ACCOUNTS[1:1 + min(MAX_SENDERS, w.clients)])
        keys = [store.keypair(n, None) for n in names]
        everyone = [crypto.address(store.keypair(n, None).public_key) for n in DEMO_ACCOUNTS]
        interval = len(keys) / w.rate
        threads = []
        for i, k in enumerate(keys):
            to = [a for a in everyone if a != crypto.address(k.public_key)]
            rng = random.Random(f"{self.seed}/workload/{i}")
            t = threading.Thread(target=self.sender, args=(k, self.names[i % len(self.names)], to, interval, rng),
                                 name=f"sim-real-sender-{i}", daemon=True)
            t.start()
            threads.append(t)
        return threads

    # ------------------------------------------------------------ the timeline

    def play(self, live: Live) -> list[str]:
        """Run the fault timeline; the nodes up (not paused, not down) at its end."""
        samplers = [threading.Thread(target=self.sampler, args=(n,), name=f"sim-real-sampler-{n}", daemon=True)
                    for n in self.names]
        for t in samplers:
            t.start()
        senders = self.start_workload()
        pending = list(self.scenario.faults)
        end_ms = self.scenario.duration_ms
        try:
            while (now := self.now_ms()) < end_ms:
                while pending and pending[0].at_ms <= now:
                    self.apply(pending.pop(0), live.console)
                self.reconcile()
                self.check_exits()
                live.update(self._status_line(now, len(self.scenario.faults) - len(pending)))
                nxt = min(end_ms, pending[0].at_ms) if pending else end_ms
                time.sleep(max(0.0, min(TICK_S, (nxt - self.now_ms()) / 1000)))
            self.check_exits()
            live_nodes = [n for n in self.names if self.nodes[n].state == UP]
            self.event("-", "end", [self.nodes[n].state for n in self.names])
        finally:  # on an exception the processes are stopped next, which ends the threads' requests
            self.stop_workload.set()
            self.stop_sampling.set()
        for n in self.names:  # resumed for the checks (and for a sender waiting on one)
            if self.nodes[n].state == PAUSED:
                self._signal("cont", n)
        for t in samplers + senders:
            t.join(TX_WAIT_S + 6)
        return live_nodes

    def _status_line(self, now: int, done: int) -> Text:
        with self.lock:
            hs = {n: (s[-1][1] if s else 0) for n, s in self.samples.items()}
            acked = len(self.acked)
        marks = {n: "" if self.nodes[n].state == UP else f"({self.nodes[n].state})" for n in self.names}
        cut = {n for pair in self.links.blocked_pairs() for n in pair}
        parts = [f"{n} {hs[n]}{marks[n]}{'✂' if n in cut else ''}" for n in self.names]
        return Text(f"{self.scenario.name}  {now / 1000:5.1f}/{self.scenario.duration_ms / 1000:g} s  "
                    f"heights {'  '.join(parts)}  faults {done}/{len(self.scenario.faults)}  acked txs {acked}")

    # ------------------------------------------------------------ after the timeline

    def settle(self, live: Live) -> None:
        """Give the running nodes SETTLE_S seconds to reach the same height, unless the
        topology is still cut."""
        running = [n for n in self.names if self.nodes[n].state == UP]
        if self.links.down or not running:
            return
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            hs = {n: self._height(n) for n in running}
            live.update(Text(f"checking: waiting for the nodes to converge, heights {_fmt_heights(hs)}"))
            if min(hs.values()) >= max(hs.values()) >= 1:
                return
            time.sleep(0.2)

    def names_by_pubkey(self, chains: dict[str, Chain]) -> dict[str, str]:
        """Node names of the validator keys that evidence in `chains` names."""
        from protocol import crypto

        by_address = {n.address: name for name, n in self.nodes.items()}
        keys = {e["validator"] for c in chains.values() for b in c.values() for e in b.get("evidence", [])}
        return {pk: by_address[a] for pk in keys if (a := crypto.address(bytes.fromhex(pk)).hex()) in by_address}

    def read_chains(self) -> tuple[dict[str, Chain], list[str]]:
        chains: dict[str, Chain] = {}
        problems = []
        with httpx.Client(timeout=5.0) as http:
            for n in self.names:
                node = self.nodes[n]
                if node.state != UP:
                    continue
                top = self._height(n)
                chain: Chain = {}
                for h in range(1, top + 1):
                    for _ in range(3):
                        try:
                            r = http.get(f"{node.proc.api}/v1/blocks/{h}")
                            if r.status_code == 200:
                                chain[h] = r.json()
                                break
                        except (httpx.HTTPError, ValueError):
                            pass
                    else:
                        problems.append(f"{n} did not return block {h}")
                chains[n] = chain
        return chains, problems


def _fmt_heights(hs: dict[str, int]) -> str:
    return " ".join(f"{n}={h}" for n, h in hs.items())


def _describe(f: Fault) -> str:
    if f.action == "partition":
        return " | ".join(",".join(g) for g in f.groups)
    if f.action == "isolate":
        return f.nodes[0]
    if f.action in ("cut", "restore"):
        return f"{f.src}{'->' if f.one_way else '<->'}{f.dst}"
    return ""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (so `finally` stops the nodes), in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_real(
    scenario: Scenario,
    seed: int,
    out: Path | None = None,
    *,
    ref: str | None = None,
    duration_s: float | None = None,
    console: Console | None = None,
    base_port: int | None = None,
) -> dict[str, Any]:
    """Run `scenario` against real node processes; the summary has the deterministic
    mode's keys (and `mode: "real"`, `unsupported`, `notes`). With `out`, writes
    summary.json, events.jsonl, timeline.png, report.html and the node homes (logs
    in `out/nodes/node*/node.log`)."""
    support = check_support(scenario)  # refuses before any process starts
    console = console or Console(stderr=True)
    wall = time.perf_counter()
    tmp = None
    if out is not None:
        workdir = out / "nodes"
    else:
        tmp = tempfile.mkdtemp(prefix="ekklesia-sim-real-")
        workdir = Path(tmp) / "nodes"
    r = _RealRun(scenario, seed, workdir, console, base_port)
    for item in support.unsupported:
        console.print(f"[yellow]skipped (not expressible with real processes): {item}")
    try:
        with _sigterm_interrupts(), Live(Text("creating the testnet"), console=console, refresh_per_second=4,
                                         transient=True) as live:  # fmt: skip
            try:
                r.create()
                for n in r.names:
                    r.start(n)
                r.wait_ready(live)
                live_nodes = r.play(live)
                live.update(Text("checking"))
                r.settle(live)
                chains, problems = r.read_chains()
                heights = {n: (max(chains[n], default=0) if n in chains else
                               (r.samples[n][-1][1] if r.samples[n] else 0)) for n in r.names}
            finally:
                codes = _stop(r)
                r.pool.shutdown(wait=False, cancel_futures=True)
        wall = time.perf_counter() - wall
        summary = _summarise(r, support, chains, problems, live_nodes, heights, codes, wall, ref, duration_s)
        if out is not None:
            _write(out, r, summary, chains)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _stop(r: _RealRun) -> dict[str, int | str]:
    from simulations.real.procs import stop_all

    procs = [n.proc for n in r.nodes.values()]
    try:
        return stop_all(procs)
    except BaseException:  # a second Ctrl-C while stopping: kill what is left, then go
        for p in procs:
            if p.alive:
                p.p.kill()
                p.p.wait(5)
        raise


def _summarise(r: _RealRun, support: Support, chains: dict[str, Chain], problems: list[str], live: list[str],
               heights: dict[str, int], codes: dict[str, int | str], wall: float, ref: str | None,
               duration_s: float | None) -> dict[str, Any]:  # fmt: skip
    s = r.scenario
    safety, forks, validity = check_chains(chains, r.chain_id)
    liveness, gained = check_liveness(s, r.samples, live, heights)
    evidence = collect_evidence(chains, r.names_by_pubkey(chains))
    named = sorted({item.validator for item in evidence})
    accountability = Verdict(NOT_APPLICABLE if not forks and not evidence else OK)
    for item in evidence:  # every node runs the honest program
        accountability.note(f"evidence names {item.validator} (height {item.height}, round {item.round}, "
                            f"{item.source})")
    if forks and not evidence:
        accountability.note(f"forks at {forks} and no evidence")

    lost, lagging, lost_v = check_lost(chains, r.acked)
    longest = max(chains.values(), key=len, default={})
    committed = {tx for b in longest.values() for tx in b["txs"]}
    rounds = [int(b["commit"]["round"]) for b in longest.values() if b.get("commit")]
    digest = hashlib.sha256(b"ekklesia/sim-real/v1")
    for h in sorted(longest):
        digest.update(f"{h}:{longest[h]['hash']}\n".encode())
    virtual = s.duration_ms / 1000
    acked_n = len(r.acked)
    summary: dict[str, Any] = {
        "scenario": s.name,
        "seed": r.seed,
        "mode": "real",
        "trace_hash": digest.hexdigest(),
        "trace_events": len(r.events),
        "virtual_seconds": virtual,
        "wall_seconds": round(wall, 3),
        "startup_seconds": round(r.startup_s, 3),
        "speedup": round(virtual / wall, 2) if wall > 0 else None,
        "validators": s.validators,
        "nodes": list(r.names),
        "byzantine": [],
        "heights": heights,
        "safety": safety.status,
        "liveness": liveness.status,
        "validity": validity.status,
        "accountability": accountability.status,
        "forks": forks,
        "evidence": named,
        "evidence_detail": [e.__dict__ for e in evidence[:50]],
        "lost_txs": len(lost),
        "lost_tx_causes": {"in no block of the chain read at the end": len(lost)} if lost else {},
        "txs": {
            "submitted": sum(r.submitted.values()),
            "acked": acked_n,
            "by_kind": {k: {"submitted": r.submitted[k], "acked": acked_n} for k in sorted(r.submitted)},
            "refused": dict(sorted(r.refused.items())),
            "committed_acked": acked_n - len(lost),
            "committed_total": len(committed),
            "pending": len(lagging),  # acked and committed, not yet on every node read
        },
        "halted": dict(sorted(r.halted.items())),
        "rounds": {"max": max(rounds, default=0), "commits_after_round_0": sum(1 for x in rounds if x > 0)},
        "network": {"block_calls": r.admin["block"], "unblock_calls": r.admin["unblock"],
                    "failed_admin_calls": r.admin["failed"], "blocked_pairs_at_end": len(r.links.blocked_pairs())},
        "events_run": r.faults_applied,
        "liveness_window": {"after_s": s.liveness_after_ms() / 1000,
                            "until_s": (s.liveness_after_ms() + s.liveness.within_ms) / 1000, "gained": gained},
        "unsupported": support.unsupported,
        "notes": support.notes + [f"not read (down at the end): {n}" for n in r.names if n not in chains],
        "exit_codes": codes,
        "processes": {n: list(node.pids) for n, node in r.nodes.items()},
        "details": {
            name: v.details
            for name, v in (("safety", safety), ("liveness", liveness), ("validity", validity),
                            ("accountability", accountability), ("lost_txs", lost_v))
            if v.details
        } | ({"collection": problems[:20]} if problems else {}),
    }
    exp = s.expect
    summary["expected"] = {"safety": exp.safety, "liveness": exp.liveness, "forks": exp.forks,
                           "evidence": list(exp.evidence), "max_lost_txs": exp.max_lost_txs,
                           "min_height": exp.min_height}
    failures = _compare(r, safety.status, liveness.status, forks, validity.status, accountability.status, named,
                        len(lost), problems)
    summary["passed"] = not failures
    summary["failures"] = failures
    summary["replay"] = replay_command(ref or s.name, r.seed, duration_s)
    return summary


def _compare(r: _RealRun, safety: str, liveness: str, forks: list[int], validity: str, accountability: str,
             named: list[str], lost: int, problems: list[str]) -> list[str]:  # fmt: skip
    """How the run compares with the scenario's expectations (as `runner.compare`)."""
    e = r.scenario.expect
    failures = []
    if safety != e.safety:
        failures.append(f"safety is {safety}, expected {e.safety}")
    if e.liveness != NOT_CHECKED and liveness != e.liveness:
        failures.append(f"liveness is {liveness}, expected {e.liveness}")
    if e.forks and not forks:
        failures.append("expected a fork, none happened")
    if validity == VIOLATED:
        failures.append("validity violated")
    if accountability == VIOLATED:
        failures.append("accountability violated")
    missing = sorted(set(e.evidence) - set(named))
    if missing:
        failures.append(f"evidence does not name {', '.join(missing)}")
    if lost > e.max_lost_txs:
        failures.append(f"{lost} acknowledged txs lost (at most {e.max_lost_txs} allowed)")
    for a, b in e.no_progress:
        for n in r.names:
            g = height_at(r.samples[n], b) - height_at(r.samples[n], a)
            if g > 1:
                failures.append(f"{n} gained {g} heights in {a / 1000:g}–{b / 1000:g} s, expected no progress")
    if r.halted and e.safety == "ok":
        failures.append(f"nodes exited by themselves: {', '.join(sorted(r.halted))}")
    if problems:
        failures.append(f"could not read every block: {problems[0]}" + (f" (+{len(problems) - 1})"
                                                                        if len(problems) > 1 else ""))
    return failures


def replay_command(ref: str, seed: int, duration_s: float | None = None) -> str:
    cmd = f"ekklesia sim run {ref} --real --seed {seed}"
    if duration_s is not None:
        cmd += f" --duration {duration_s:g}"
    return cmd + f" --out sim-out/{Path(ref).stem.replace(':', '-')}-{seed}-real"


# ---------------------------------------------------------------- files


def _write(out: Path, r: _RealRun, summary: dict[str, Any], chains: dict[str, Chain]) -> None:
    from simulations import report

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    with (out / "events.jsonl").open("w") as f:
        for t_ms, node, kind, details in sorted(r.events, key=lambda e: e[0]):
            f.write(json.dumps({"t_ms": t_ms, "node": node, "kind": kind, "details": details}, sort_keys=True) + "\n")
    end = r.scenario.duration_ms
    periods = [Period(p.what, p.node, p.start_ms, end if p.end_ms is None or p.end_ms > end else p.end_ms, p.detail)
               for p in r.periods if p.start_ms <= end]
    png = out / "timeline.png"
    title = (f"{r.scenario.name} · real processes (x: wall seconds since start) · seed {r.seed} · "
             f"safety {summary['safety']} · liveness {summary['liveness']}")
    acked = {bytes.fromhex(h): v for h, v in r.acked.items()}
    report.timeline(_ClusterView(r, chains), periods, png, title=title, acked=acked)  # type: ignore[arg-type]
    report.html_report(summary, png, out / "report.html")


class _ClusterView:
    """What `simulations.report.timeline` reads of a `Cluster`, from the samples and
    the chains read at the end (sample times stand for commit times)."""

    def __init__(self, r: _RealRun, chains: dict[str, Chain]) -> None:
        end = r.scenario.duration_ms
        rounds = {h: int(b["commit"]["round"]) for c in chains.values() for h, b in c.items() if b.get("commit")}
        self.commit_times = {n: [(t, h, rounds.get(h, 0)) for t, h, _ in r.samples[n] if t <= end] for n in r.names}
        self.faulty: set[str] = set()
        self.sched = SimpleNamespace(now_ms=end)
        self.nodes = {
            n: SimpleNamespace(name=n, disk=SimpleNamespace(blocks={
                h: (SimpleNamespace(txs=[SimpleNamespace(hash=bytes.fromhex(x)) for x in b["txs"]]), None)
                for h, b in chains.get(n, {}).items()
            }))
            for n in r.names
        }

    def honest_nodes(self) -> list[Any]:
        return [self.nodes[n] for n in sorted(self.nodes)]

