"""Open-loop load generator and commit tracker for a real testnet.

Pre-signing (`presign`): a step of `rate` tx/s for `duration` s is signed before it
starts, so signing never limits the generator. Tx j (j = 0…rate·duration−1) is a
`transfer` of 1 unit from sender s = j mod S with nonce ⌊j/S⌋ (S fresh benchmark
accounts per step, so every step starts from nonce 0 and earlier steps cannot
poison it), scheduled at j/rate s. Txs are grouped into batches of `tick` seconds
(50 ms) per client stream; a sender always goes to stream s mod C, in nonce order,
and stream c to node c mod N. C = N × max(1, 4 // N): one client per node from 4
nodes up, several on fewer nodes (a lone validator is not fed by a single client).

Submission (`run_step`): one task per client stream POSTs its batches to
`/v1/txs/batch` at their scheduled times, one request at a time per stream (so
nonces arrive in order), over its own kept-alive connection (`bench.http11`: the
generator shares the CPU with the nodes it measures, and httpx cost it ~1 ms per
request). Open loop: if a node answers slowly, the batches that fell due meanwhile
are merged into the next request (≤ 2,000 txs) — the offered rate does not drop
with the system under test, and the **submit time of a tx is the scheduled time
of its batch**, not the moment it was finally sent (no coordinated omission).

Commit observation (`Tracker`): one server-sent-events connection to node0's
`/v1/events?kinds=block`; each `block` event is stamped with the generator's
wall clock on arrival, then the block is read from `/v1/blocks/{h}` for its tx
hashes, its commit round and its commit signatures. Heights missing from the
stream (a slow subscriber loses events) are fetched too and stamped with the
arrival time of the next event (an upper bound). For each tx:

* commit latency = arrival of node0's `block` event for its height − submit time:
  what a client following one node sees (includes node0's synced store write
  and event delivery, ~ms);
* decision latency = median of the commit's precommit timestamps − submit time:
  when +2/3 of the validators had precommitted (validators' wall clocks; the
  same clock as the generator's, all processes run on one machine).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import trio

from bench.cluster import Cluster, account_key, metric
from bench.http11 import Http11Connection, HttpError
from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.messages import MAX_BATCH_TXS, MAX_TX_BATCH_BYTES
from protocol.types import Tx

TICK_S = 0.05
MSGPACK = ((b"content-type", b"application/msgpack"),)
SUBMIT_TARGET = "/v1/txs/batch?results=refused"


# ---------------------------------------------------------------- pre-signed plans


@dataclass
class Batch:
    t_off: float  # scheduled send time, seconds after the step's start
    txs: list[bytes] = field(default_factory=list)  # encoded, nonce order per sender
    hashes: list[bytes] = field(default_factory=list)


@dataclass
class StepPlan:
    rate: float
    duration: float
    senders: int
    first_account: int
    per_stream: list[list[Batch]]  # stream c submits to node c mod nodes
    n_txs: int
    sign_s: float


def streams_for(nodes: int) -> int:
    return nodes * max(1, 4 // nodes)


def senders_for(rate: float, nodes: int) -> int:
    """Enough senders that each sends ≤ 2 tx/s: a sender has at most 256 pending txs
    (mempool.max_per_sender), so even a minute of backlog fits."""
    return max(4 * nodes, math.ceil(rate / 2))


def tx_batch_body(txs: Sequence[bytes]) -> bytes:
    """The canonical msgpack of `TxBatch(txs)` from already-encoded txs: a 1-array
    holding an n-array of the tx arrays (equal to `TxBatch(...).encode()`)."""
    n = len(txs)
    head = bytes([0x90 | n]) if n < 16 else (b"\xdc" + n.to_bytes(2, "big") if n < 65536 else
                                             b"\xdd" + n.to_bytes(4, "big"))
    return b"\x91" + head + b"".join(txs)


def presign(
    chain_id: str, rate: float, duration: float, nodes: int, first_account: int, *, tick: float = TICK_S,
) -> StepPlan:
    t = time.perf_counter()
    n_txs = int(rate * duration)
    senders = senders_for(rate, nodes)
    keys = [account_key(first_account + s) for s in range(senders)]
    bodies = [Transfer(crypto.address(keys[(s + 1) % senders].public_key), 1, "").encode() for s in range(senders)]
    n_ticks = max(1, math.ceil(duration / tick))
    streams = streams_for(nodes)
    per_stream = [[Batch(k * tick) for k in range(n_ticks)] for _ in range(streams)]
    for j in range(n_txs):
        s = j % senders
        tx = Tx.create(keys[s], chain_id, j // senders, "transfer", bodies[s])
        raw = tx.encode()
        b = per_stream[s % streams][min(n_ticks - 1, int(j / rate / tick))]
        b.txs.append(raw)
        b.hashes.append(crypto.sha256(raw))
    per_stream = [[b for b in batches if b.txs] for batches in per_stream]
    return StepPlan(rate, duration, senders, first_account, per_stream, n_txs, time.perf_counter() - t)


# ---------------------------------------------------------------- commit tracking


@dataclass
class BlockSeen:
    height: int
    t_obs: float  # generator wall clock (s) when node0's event arrived (upper bound if gap)
    gap: bool
    time_ms: int = 0  # header time (BFT time: median precommit time of the previous block)
    decided_ms: float = 0.0  # median precommit timestamp of this block's commit
    round: int = 0
    n_txs: int = 0
    tracked: int = 0  # txs of the current step in this block


class Tracker:
    """Follows node0's committed blocks and matches their txs with submitted ones."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.submitted: dict[bytes, float] = {}  # tx hash → submit time (wall s)
        self.committed: dict[bytes, tuple[float, float, int]] = {}  # hash → (t_obs, decided_s, height)
        self.blocks: dict[int, BlockSeen] = {}
        self.last_height = 0
        self.sse_gaps = 0
        self.sse_reconnects = 0
        self.fetch_errors = 0
        self._send, self._recv = trio.open_memory_channel[BlockSeen](10_000)

    async def run(self, http: httpx.AsyncClient, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as n:
            await n.start(self._follow, http)
            n.start_soon(self._fetch, http)
            task_status.started()

    async def _follow(self, http: httpx.AsyncClient, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                async with http.stream("GET", f"{self.api}/v1/events?kinds=block",
                                       timeout=httpx.Timeout(None, connect=5.0)) as r:
                    event = ""
                    async for line in r.aiter_lines():
                        if line.startswith(": subscribed") and not started:
                            started = True
                            task_status.started()
                        elif line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:") and event == "block":
                            t_obs = time.time()
                            h = json.loads(line[5:])["height"]
                            self._saw(h, t_obs)
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            self.sse_reconnects += 1
            await trio.sleep(0.2)

    def _saw(self, h: int, t_obs: float) -> None:
        if self.last_height and h > self.last_height + 1:
            for missing in range(self.last_height + 1, h):
                self.sse_gaps += 1
                self._send.send_nowait(BlockSeen(missing, t_obs, True))
        if h > self.last_height:
            self._send.send_nowait(BlockSeen(h, t_obs, False))
            self.last_height = h

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        async for seen in self._recv:
            for _attempt in range(20):
                try:
                    r = await http.get(f"{self.api}/v1/blocks/{seen.height}", timeout=30.0)
                    if r.status_code == 200:
                        self._record(seen, r.json())
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                self.fetch_errors += 1
                await trio.sleep(0.2)

    def _record(self, seen: BlockSeen, b: dict[str, Any]) -> None:
        seen.time_ms = b["time_ms"]
        seen.round = b["commit"]["round"]
        seen.n_txs = b["num_txs"]
        stamps = [s["timestamp_ms"] for s in b["commit"]["signatures"]]
        seen.decided_ms = float(statistics.median(stamps)) if stamps else float(seen.time_ms)
        self.blocks[seen.height] = seen
        sub = self.submitted
        for hx in b["txs"]:
            h = bytes.fromhex(hx)
            if h in sub:
                seen.tracked += 1
                self.committed[h] = (seen.t_obs, seen.decided_ms / 1000, seen.height)

    def forget(self, hashes: Sequence[bytes]) -> None:
        for h in hashes:
            self.submitted.pop(h, None)
            self.committed.pop(h, None)


# ---------------------------------------------------------------- one step


@dataclass
class StepRaw:
    plan: StepPlan
    t0: float  # wall
    t_end: float  # wall: end of the offered window
    t_drained: float
    admitted: list[bytes]
    rejected: Counter[str]
    http_errors: int
    lags: list[float]
    requests: int
    cpu0: list[float]
    cpu1: list[float]
    gen_cpu: float
    machine_busy_s: float  # all processes on the machine, CPU seconds during the window
    rss: list[list[float]]  # samples per node
    rss_anon: list[list[float]]  # the anonymous part of each sample (cluster.NodeProc.memory_mb)
    probes: list[float]  # GET /v1/status response times (s)
    metrics0: list[dict[str, float]]
    metrics1: list[dict[str, float]]
    wire0: int | None
    wire1: int | None
    dead: list[str]
    busy_waits: int = 0  # 429 answers: the generator waited Retry-After and sent the batch again


async def _sampler(cluster: Cluster, rss: list[list[float]], anon: list[list[float]], stop: trio.Event) -> None:
    while not stop.is_set():
        for i, (total, anonymous) in enumerate(cluster.memory()):
            rss[i].append(total)
            anon[i].append(anonymous)
        with trio.move_on_after(1.0):
            await stop.wait()


async def _prober(http: httpx.AsyncClient, cluster: Cluster, out: list[float], stop: trio.Event) -> None:
    """Response time of GET /v1/status on every node, twice a second: how long a node's
    trio loop is busy with other work (the handler itself is a few dict lookups)."""
    while not stop.is_set():
        for p in cluster.procs:
            t = time.perf_counter()
            try:
                await http.get(f"{p.api}/v1/status", timeout=30.0)
            except httpx.HTTPError:
                continue
            out.append(time.perf_counter() - t)
        with trio.move_on_after(0.5):
            await stop.wait()


async def run_step(
    http: httpx.AsyncClient, cluster: Cluster, plan: StepPlan, tracker: Tracker, *, drain_s: float,
) -> StepRaw:
    """Offer `plan` open-loop, then wait up to `drain_s` for the admitted txs to commit."""
    admitted: list[bytes] = []
    rejected: Counter[str] = Counter()
    lags: list[float] = []
    http_errors = 0
    busy_waits = 0
    requests = 0
    rss: list[list[float]] = [[] for _ in cluster.procs]
    rss_anon: list[list[float]] = [[] for _ in cluster.procs]
    probes: list[float] = []
    me = psutil.Process()
    stop_sampling = trio.Event()

    metrics0 = await cluster.metrics(http)
    wire0 = cluster.wire_bytes()
    cpu0 = cluster.cpu()
    g0 = sum(me.cpu_times()[:2])
    m0 = _busy()
    start = trio.current_time() + 0.1
    t0 = time.time() + 0.1

    async def submit(i: int) -> None:
        batches = plan.per_stream[i]
        async with Http11Connection(cluster.procs[i % len(cluster.procs)].api) as conn:
            await stream(batches, conn)

    async def stream(batches: list[Batch], conn: Http11Connection) -> None:
        nonlocal http_errors, requests, busy_waits
        k = 0
        # A batch refused with 429 is sent again after Retry-After, ahead of everything
        # due since, as a client honouring backpressure does: pre-signed nonces must
        # arrive in order, so dropping it would doom every later tx of its senders.
        carry: tuple[list[bytes], list[bytes]] = ([], [])
        while k < len(batches) or carry[0]:
            if not carry[0]:
                await trio.sleep_until(start + batches[k].t_off)
            now = trio.current_time()
            if not carry[0]:
                lags.append(now - (start + batches[k].t_off))
            txs, hashes = carry
            carry = ([], [])
            size = sum(len(t) for t in txs)
            while k < len(batches) and start + batches[k].t_off <= now:
                b = batches[k]
                bsize = sum(len(t) for t in b.txs)
                if txs and (len(txs) + len(b.txs) > MAX_BATCH_TXS or size + bsize > MAX_TX_BATCH_BYTES - 4096):
                    break
                txs += b.txs
                hashes += b.hashes
                size += bsize
                for h in b.hashes:
                    tracker.submitted[h] = t0 + b.t_off
                k += 1
            requests += 1
            try:
                r = await conn.request("POST", SUBMIT_TARGET, body=tx_batch_body(txs), headers=MSGPACK, timeout=60.0)
                if r.status_code == 429:  # backpressure: the node refused the whole batch for now
                    if trio.current_time() > start + plan.duration:  # the step is over: give up
                        rejected["busy (HTTP 429)"] += len(hashes)
                        tracker.forget(hashes)
                        continue
                    busy_waits += 1
                    carry = (txs, hashes)
                    await trio.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                body = json.loads(r.body) if r.status_code == 200 else None
                refused = {int(st["position"]): st for st in body["results"]} if body is not None else None
            except (HttpError, ValueError, KeyError, TypeError):
                refused = None
            if refused is None or body is None or body["accepted"] + body["rejected"] != len(hashes):
                http_errors += 1
                rejected["http error"] += len(hashes)
                tracker.forget(hashes)
                continue
            for idx, h in enumerate(hashes):
                st = refused.get(idx)
                if st is None:
                    admitted.append(h)
                else:
                    rejected[_reason_class(st.get("reason") or "")] += 1
                    tracker.forget([h])

    async with trio.open_nursery() as n:
        n.start_soon(_sampler, cluster, rss, rss_anon, stop_sampling)
        n.start_soon(_prober, http, cluster, probes, stop_sampling)
        async with trio.open_nursery() as senders:
            for i in range(len(plan.per_stream)):
                senders.start_soon(submit, i)
        await trio.sleep_until(start + plan.duration)
        t_end = time.time()
        cpu1 = cluster.cpu()
        g1 = sum(me.cpu_times()[:2])
        m1 = _busy()
        wire1 = cluster.wire_bytes()
        metrics1 = await cluster.metrics(http)
        stop_sampling.set()

    # Drain: wait for the admitted txs to commit (bounded).
    with trio.move_on_after(drain_s):
        while sum(1 for h in admitted if h in tracker.committed) < len(admitted):
            if cluster.dead():
                break
            await trio.sleep(0.25)
    await trio.sleep(0.3)  # let the last fetched block land
    return StepRaw(plan, t0, t_end, time.time(), admitted, rejected, http_errors, lags, requests, cpu0, cpu1,
                   g1 - g0, m1 - m0, rss, rss_anon, probes, metrics0, metrics1, wire0, wire1, cluster.dead(),
                   busy_waits=busy_waits)


def _busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _reason_class(reason: str) -> str:
    r = reason.lower()
    for key, name in (("full", "mempool full"), ("pending transactions", "sender limit"),
                      ("nonce", "bad nonce"), ("syncing", "syncing"), ("duplicate", "duplicate")):
        if key in r:
            return name
    return reason[:60] or "rejected"


# ---------------------------------------------------------------- summary


def _by_reason(raw: StepRaw) -> dict[str, int]:
    """Mempool refusals at all nodes during the window, by reason label (gossip and API)."""
    out: Counter[str] = Counter()
    for m0, m1 in zip(raw.metrics0, raw.metrics1, strict=True):
        for key, v in m1.items():
            if key.startswith("ekklesia_mempool_rejected_total{"):
                d = int(v - m0.get(key, 0.0))
                if d:
                    out[key.split('reason="', 1)[1].split('"', 1)[0]] += d
    return dict(out)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; values may contain inf (never committed)."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else round(x, 3)


def summarize(raw: StepRaw, tracker: Tracker, *, warmup_s: float) -> dict[str, Any]:
    plan = raw.plan
    window = raw.t_end - raw.t0
    lat: list[float] = []
    dec: list[float] = []
    committed = 0
    committed_in_window = 0
    committed_measured = 0
    w0 = raw.t0 + warmup_s
    for h in raw.admitted:
        sub = tracker.submitted.get(h)
        c = tracker.committed.get(h)
        if c is None or sub is None:
            lat.append(math.inf)
            dec.append(math.inf)
            continue
        committed += 1
        lat.append(c[0] - sub)
        dec.append(c[1] - sub)
        if raw.t0 <= c[0] <= raw.t_end:
            committed_in_window += 1
            if c[0] >= w0:
                committed_measured += 1
    blocks = [b for b in tracker.blocks.values() if raw.t0 <= b.t_obs <= raw.t_end]
    heights = sorted(b.height for b in blocks)
    # Committed rate, block to block after the warm-up: the step's txs in every block but the
    # first, over the time from the first to the last (no quantisation error of ±1 block).
    steady = sorted((b for b in blocks if b.t_obs >= w0), key=lambda b: b.height)
    if len(steady) >= 3 and steady[-1].t_obs - steady[0].t_obs >= 1.0:
        committed_tps = sum(b.tracked for b in steady[1:]) / (steady[-1].t_obs - steady[0].t_obs)
    else:
        committed_tps = committed_measured / max(1e-9, raw.t_end - w0)
    n_nodes = len(raw.cpu0)
    cpu_pct = [round(100 * (c1 - c0) / window, 1) for c0, c1 in zip(raw.cpu0, raw.cpu1, strict=True)]
    rss_max = [round(max(s), 1) if s else None for s in raw.rss]
    anon_max = [round(max(s), 1) if s else None for s in raw.rss_anon]

    def delta(name: str, **labels: str) -> float:
        return sum(metric(m1, name, **labels) - metric(m0, name, **labels)
                   for m0, m1 in zip(raw.metrics0, raw.metrics1, strict=True))

    def mean(hist: str, **labels: str) -> float | None:
        n = delta(hist + "_count", **labels)
        return round(delta(hist + "_sum", **labels) / n, 4) if n else None

    dh = (metric(raw.metrics1[0], "ekklesia_consensus_height") - metric(raw.metrics0[0], "ekklesia_consensus_height")
          if raw.metrics0 and raw.metrics1 else 0.0)
    rounds_sum = delta("ekklesia_consensus_rounds_per_height_sum")
    rounds_n = delta("ekklesia_consensus_rounds_per_height_count")
    wire = raw.wire1 - raw.wire0 if raw.wire0 is not None and raw.wire1 is not None else None
    gossip_out = delta("ekklesia_gossip_bytes_total", direction="out")
    gossip_in = delta("ekklesia_gossip_bytes_total", direction="in")
    cons_msgs_out = delta("ekklesia_gossip_messages_total", direction="out", topic="consensus")
    cons_msgs_in = delta("ekklesia_gossip_messages_total", direction="in", topic="consensus")
    tx_msgs_out = delta("ekklesia_gossip_messages_total", direction="out", topic="txs")
    per_tx = max(1, committed_in_window)
    lags = sorted(raw.lags)
    return {
        "validators": n_nodes,
        "offered_tps": plan.rate,
        "duration_s": round(window, 2),
        "senders": plan.senders,
        "sign_s": round(plan.sign_s, 2),
        "submitted": plan.n_txs,
        "admitted": len(raw.admitted),
        "rejected": dict(raw.rejected),
        "committed": committed,
        "committed_fraction": round(committed / max(1, len(raw.admitted)), 4),
        "committed_tps": round(committed_tps, 1),
        "committed_tps_window": round(committed_in_window / window, 1),
        "p50_commit_s": _finite(percentile(lat, 50)),
        "p95_commit_s": _finite(percentile(lat, 95)),
        "p99_commit_s": _finite(percentile(lat, 99)),
        "max_commit_s": _finite(max(lat, default=math.nan)),
        "p50_decided_s": _finite(percentile(dec, 50)),
        "p99_decided_s": _finite(percentile(dec, 99)),
        "blocks": len(blocks),
        "blocks_per_s": round(len(blocks) / window, 2),
        "txs_per_block_mean": round(statistics.fmean([b.n_txs for b in blocks]), 1) if blocks else 0,
        "txs_per_block_max": max((b.n_txs for b in blocks), default=0),
        "rounds_per_height": round(statistics.fmean([b.round + 1 for b in blocks]), 3) if blocks else None,
        "max_round": max((b.round for b in blocks), default=None),
        "rounds_per_height_all_nodes": round(rounds_sum / rounds_n, 3) if rounds_n else None,
        "heights": [heights[0], heights[-1]] if heights else None,
        "cpu_pct": cpu_pct,
        "cpu_pct_nodes_total": round(sum(cpu_pct), 1),
        "generator_cpu_pct": round(100 * raw.gen_cpu / window, 1),
        "machine_cpu_pct": round(100 * raw.machine_busy_s / window, 1),
        "other_cpu_pct": round(max(0.0, 100 * (raw.machine_busy_s - raw.gen_cpu) / window - sum(cpu_pct)), 1),
        "rss_mb_max": max((r for r in rss_max if r is not None), default=None),
        "rss_mb": rss_max,
        # without file-backed pages (libraries, LevelDB's memory-mapped tables)
        "rss_anon_mb": anon_max,
        "wire_bytes": wire,
        "wire_bytes_per_tx": round(wire / per_tx, 1) if wire is not None and committed_in_window else None,
        "wire_bytes_per_height": round(wire / dh, 1) if wire is not None and dh else None,
        "gossip_bytes_out": int(gossip_out),
        "gossip_bytes_in": int(gossip_in),
        "gossip_bytes_per_tx": round((gossip_out + gossip_in) / per_tx, 1) if committed_in_window else None,
        "consensus_msgs_per_height_out": round(cons_msgs_out / dh, 2) if dh else None,
        "consensus_msgs_per_height_in": round(cons_msgs_in / dh, 2) if dh else None,
        "tx_gossip_msgs_per_s": round(tx_msgs_out / window, 1),
        "compact_waits": int(delta("ekklesia_consensus_compact_waits_total")),
        "block_requests": int(delta("ekklesia_consensus_block_requests_total")),
        "mempool_rejected_at_nodes": int(delta("ekklesia_mempool_rejected_total")),
        "mempool_rejected_by_reason": _by_reason(raw),
        "node_cpu_ms_per_tx": round(10 * sum(cpu_pct) / committed_tps, 3) if committed_tps else None,
        "step_mean_s": {st: mean("ekklesia_consensus_step_duration_seconds", step=st)
                        for st in ("propose", "prevote", "precommit", "commit")},
        "block_exec_mean_s": mean("ekklesia_block_execution_seconds"),
        "block_store_mean_s": mean("ekklesia_block_commit_seconds"),
        "status_probe_p50_s": round(percentile(raw.probes, 50), 4) if raw.probes else None,
        "status_probe_p99_s": round(percentile(raw.probes, 99), 4) if raw.probes else None,
        "status_probe_max_s": round(max(raw.probes), 4) if raw.probes else None,
        "generator_lag_p99_s": round(percentile(lags, 99), 3) if lags else None,
        "generator_lag_max_s": round(lags[-1], 3) if lags else None,
        "requests": raw.requests,
        "http_errors": raw.http_errors,
        "busy_waits": raw.busy_waits,
        "drain_s": round(raw.t_drained - raw.t_end, 1),
        "sse_gaps": tracker.sse_gaps,
        "dead_nodes": raw.dead,
    }
