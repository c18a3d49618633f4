"""Memory and liveness of a node under a gossip flood (issue #9).

A small testnet (`--validators`, default 2: each block needs both, so the chain stops
if the victim does) runs on 127.0.0.1; node0 is the victim. For each phase a fresh
attacker — a libp2p host in its own OS process, with a new peer id — connects to the
victim like any peer, then writes pre-signed gossip messages (strict signing, as the
victim requires), packed into RPCs of up to 900 KiB, straight onto a gossipsub stream
for `--seconds`, as fast as the connection takes them:

    txs-unfunded  tx batches of 500 correctly signed transfers each (50,000 fresh txs,
                  then mixes of them) from accounts that hold nothing: they pass the
                  gossip validator; admission refuses them (insufficient funds, checked
                  against the committed state) without a penalty, so the per-peer rate
                  limit is what bounds the work they cause
    txs-badsig    the same batches with random signatures (penalised by the mempool)
    garbage       random bytes (200-2,000 B) on both topics (the validator rejects them)
    oversize      600 KiB messages, over the victim's 512 KiB gossip cap
    stale-votes   well-formed prevotes for height 1 (ignored, not penalised: only the
                  per-peer rate limit stands in their way)

Meanwhile the victim's RSS and CPU are sampled every 0.25 s (psutil) and its
`/v1/status` every 0.5 s (height, latency). Reported per phase: what the attacker sent,
whether and when it was banned and disconnected (victim's log) and whether its re-dials
were refused, the victim's max RSS, CPU, blocks committed and longest stall.

    .venv/bin/python bench/bench_flood.py                     # 5 phases × 20 s
    .venv/bin/python bench/bench_flood.py --seconds 10 --phases garbage,stale-votes

Prints a table and writes bench/results/flood.json (with the machine description).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import trio  # noqa: E402

from bench.cluster import Cluster, free_base_port, install_signal_handlers, stop_all  # noqa: E402
from bench.common import write  # noqa: E402
from node.testnet import init_testnet  # noqa: E402

PHASES = ("txs-unfunded", "txs-badsig", "garbage", "oversize", "stale-votes")
BATCH_TXS = 500
FRESH_BATCHES = 100  # 50,000 txs signed before the phase (~2 s)
OVERSIZE = 600 * 1024
SAMPLE_S = 0.25
STATUS_S = 0.5


# ================================================================ the attacker (child process)


def _payloads(phase: str, chain_id: str, count: int) -> list[tuple[str, bytes]]:
    """`count` distinct (topic kind, payload) of a phase (gossip dedups by payload hash)."""
    from protocol import crypto, messages
    from protocol.governance.accounts import Transfer
    from protocol.types import Tx, Vote, VoteType

    rng = random.Random()
    if phase in ("txs-unfunded", "txs-badsig"):
        keys = [crypto.Keypair(os.urandom(32)) for _ in range(FRESH_BATCHES * BATCH_TXS)]
        body = Transfer(crypto.address(keys[0].public_key), 1, "").encode()
        if phase == "txs-unfunded":
            pool = [Tx.create(k, chain_id, 0, "transfer", body) for k in keys]
        else:
            pool = [Tx(chain_id, k.public_key, 0, "transfer", body, (), os.urandom(64)) for k in keys]
        # FRESH_BATCHES of txs never seen, then mixes of them: the mempool does not remember
        # refused txs, so each batch costs a check per tx (a signature check when fresh)
        batches = [pool[i : i + BATCH_TXS] for i in range(0, len(pool), BATCH_TXS)]
        batches += [rng.sample(pool, BATCH_TXS) for _ in range(count - len(batches))]
        return [("txs", messages.TxBatch(tuple(b)).encode()) for b in batches]
    if phase == "garbage":
        return [(rng.choice(("txs", "consensus")), os.urandom(rng.randint(200, 2000))) for _ in range(count)]
    if phase == "oversize":
        tail = os.urandom(OVERSIZE - 16)
        return [("txs", os.urandom(16) + tail) for _ in range(count)]
    if phase == "stale-votes":
        validator = os.urandom(32)
        now = int(time.time() * 1000)
        return [("consensus", messages.encode_tagged(
            Vote(VoteType.PREVOTE, 1, 0, os.urandom(32), validator, now + i, os.urandom(64))))
            for i in range(count)]
    raise ValueError(f"unknown phase {phase!r}")


POOL = {"txs-unfunded": 1_000, "txs-badsig": 1_000, "garbage": 20_000, "oversize": 40, "stale-votes": 20_000}
MAX_RPC = 900 * 1024  # py-libp2p drops a peer whose RPC is 1 MiB or more
MAX_RPC_MSGS = 500


def _frames(phase: str, chain_id: str, key_pair: Any, peer_id: Any) -> tuple[list[bytes], int]:
    """Signed pubsub messages of a phase packed into varint-framed RPCs, ready to write."""
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
    from libp2p.utils.varint import encode_uvarint

    from node.p2p import topic_name

    prefix = PUBSUB_SIGNING_PREFIX.encode()
    frames: list[bytes] = []
    batch: list[Any] = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        if batch:
            body = rpc_pb2.RPC(publish=batch).SerializeToString()
            frames.append(encode_uvarint(len(body)) + body)
        batch, size = [], 0

    payloads = _payloads(phase, chain_id, POOL[phase])
    for seq, (kind, data) in enumerate(payloads):
        msg = rpc_pb2.Message(data=data, topicIDs=[topic_name(chain_id, kind)], from_id=peer_id.to_bytes(),
                              seqno=seq.to_bytes(8, "big"))
        msg.signature = key_pair.private_key.sign(prefix + msg.SerializeToString())
        n = msg.ByteSize() + 8
        if batch and (size + n > MAX_RPC or len(batch) >= MAX_RPC_MSGS):
            flush()
        batch.append(msg)
        size += n
    flush()
    return frames, len(payloads)


async def _attack(victim: str, chain_id: str, phase: str, seconds: float) -> dict[str, Any]:
    """Connect as an ordinary libp2p peer, then write pre-signed pubsub RPCs straight onto a
    gossipsub stream as fast as the connection takes them (py-libp2p's own publish path
    tops out at ~100 msgs/s and silently drops the rest at its 32-RPC send queue)."""
    import logging

    import structlog
    from libp2p.custom_types import TProtocol
    from libp2p.peer.id import ID
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11

    from node.p2p import Limit, Network, NetworkConfig, RateLimits
    from node.p2p.ratelimit import UNLIMITED

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    victim_id = victim.rsplit("/p2p/", 1)[1]
    net = Network(NetworkConfig(
        chain_id=chain_id, listen_addrs=("/ip4/127.0.0.1/tcp/0",), bootstrap_peers=(victim,), min_peers=0,
        reconnect_backoff_max=2.0, rate_limits=RateLimits(txs=Limit(), consensus=Limit(), requests=UNLIMITED),
    ))
    t = time.perf_counter()
    frames, unique = _frames(phase, chain_id, net._key_pair, ID.from_base58(net.peer_id))
    msgs_per_frame = unique / len(frames)
    out: dict[str, Any] = {"phase": phase, "peer_id": net.peer_id, "unique_messages": unique,
                           "prepare_s": round(time.perf_counter() - t, 2), "sent": 0, "sent_bytes": 0,
                           "connected": False, "disconnected_after_s": None, "reconnected": False,
                           "write_errors": 0}
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        try:
            await net.wait_for_peers([victim_id], timeout=15)
            out["connected"] = True
        except trio.TooSlowError:
            out["error"] = "could not connect to the victim"
        out["start_unix"] = time.time()
        t0 = trio.current_time()
        i = 0
        stream = None
        while out["connected"] and trio.current_time() - t0 < seconds:
            if victim_id not in net.peers():
                if out["disconnected_after_s"] is None:
                    out["disconnected_after_s"] = round(trio.current_time() - t0, 3)
                stream = None
                await trio.sleep(0.1)  # our dialer keeps trying; a ban makes the victim refuse it
                continue
            try:
                if stream is None:
                    stream = await net._host.new_stream(ID.from_base58(victim_id), [TProtocol(PROTOCOL_ID_V11)])
                frame = frames[i % len(frames)]
                await stream.write(frame)
                if out["disconnected_after_s"] is not None:
                    out["reconnected"] = True  # the victim took gossip from us again after dropping us
                i += 1
                out["sent"] += round(msgs_per_frame)
                out["sent_bytes"] += len(frame)
            except Exception:
                out["write_errors"] += 1
                stream = None
                await trio.sleep(0.05)
        out["flood_s"] = round(trio.current_time() - t0, 3)
        out["frames"] = i
        st = net.stats()
        out["redials"] = st["dials"] - 1
        out["redial_failures"] = st["dial_failures"]
        net.stop()
    return out


def attacker_main(a: argparse.Namespace) -> None:
    print(json.dumps(trio.run(_attack, a.victim, a.chain, a.attack, a.seconds)), flush=True)


# ================================================================ the run


@dataclass
class Sample:
    t: float
    rss_mb: float
    cpu_s: float
    machine_busy_s: float  # all processes, all cores (psutil.cpu_times)


@dataclass
class Status:
    t: float
    height: int | None
    latency_s: float
    mempool: int | None = None


@dataclass
class Run:
    t0: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0


async def sample_victim(run: Run, cluster: Cluster, http: httpx.AsyncClient) -> None:
    victim = cluster.procs[0]

    async def memory() -> None:
        while True:
            times = psutil.cpu_times()
            busy = times.user + times.system + getattr(times, "nice", 0.0) + getattr(times, "irq", 0.0)
            run.samples.append(Sample(run.now(), victim.rss_mb(), victim.cpu_s(), busy))
            await trio.sleep(SAMPLE_S)

    async def status() -> None:
        while True:
            t = time.monotonic()
            height = mempool = None
            try:
                doc = (await http.get(f"{victim.api}/v1/status", timeout=5.0)).json()
                height, mempool = doc["height"], doc.get("mempool_size")
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            run.statuses.append(Status(run.now(), height, time.monotonic() - t, mempool))
            await trio.sleep(max(0.0, STATUS_S - (time.monotonic() - t)))

    async with trio.open_nursery() as n:
        n.start_soon(memory)
        n.start_soon(status)


def window(run: Run, start: float, end: float) -> dict[str, Any]:
    """Victim figures between two `run.now()` times."""
    ss = [s for s in run.samples if start <= s.t <= end]
    st = [s for s in run.statuses if start <= s.t <= end]
    heights = [(s.t, s.height) for s in st if s.height is not None]
    stall = 0.0
    last_t, last_h = (heights[0] if heights else (start, None))
    for t, h in heights[1:]:
        if h != last_h:
            last_t, last_h = t, h
        stall = max(stall, t - last_t)
    span = ss[-1].t - ss[0].t if len(ss) > 1 else 0.0
    cpu = (ss[-1].cpu_s - ss[0].cpu_s) / span * 100 if span > 0 else None
    machine = (ss[-1].machine_busy_s - ss[0].machine_busy_s) / span * 100 if span > 0 else None
    return {
        "rss_mb_max": round(max((s.rss_mb for s in ss), default=float("nan")), 1),
        "rss_mb_end": round(ss[-1].rss_mb, 1) if ss else None,
        "cpu_pct": round(cpu, 1) if cpu is not None else None,
        "machine_cpu_pct": round(machine, 1) if machine is not None else None,  # 100 = one core
        "blocks": (heights[-1][1] - heights[0][1]) if len(heights) > 1 else 0,
        "longest_stall_s": round(stall, 2),
        "status_max_s": round(max((s.latency_s for s in st), default=float("nan")), 3),
        "status_failed": sum(1 for s in st if s.height is None),
        "mempool_max": max((s.mempool for s in st if s.mempool is not None), default=None),
    }


def victim_log_events(log_path: Path, peer_id: str) -> dict[str, Any]:
    """What the victim's JSON log says about one attacker."""
    reasons: dict[str, int] = {}
    banned_at = None
    rate_limited = 0
    disconnected_at = None
    connected_after_ban = 0
    for line in log_path.read_text(errors="replace").splitlines():
        if peer_id not in line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("peer") != peer_id:
            continue
        event = doc.get("event")
        if event == "p2p.peer_penalised":
            reasons[doc["reason"]] = reasons.get(doc["reason"], 0) + 1
        elif event == "p2p.peer_banned" and banned_at is None:
            banned_at = _unix(doc["timestamp"])
        elif event == "p2p.rate_limited":
            rate_limited += 1
        elif event == "p2p.peer_disconnected" and disconnected_at is None:
            disconnected_at = _unix(doc["timestamp"])
        elif event == "p2p.peer_connected" and banned_at is not None:
            connected_after_ban += 1
    return {"penalties": reasons, "banned_unix": banned_at, "disconnected_unix": disconnected_at,
            "rate_limit_penalties": rate_limited, "connected_after_ban": connected_after_ban}


def victim_totals(log_path: Path) -> dict[str, int]:
    last: dict[str, int] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"p2p.stopped"' in line:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            last = {k: v for k, v in doc.items() if isinstance(v, int) and not isinstance(v, bool)}
    return last


def _unix(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


async def run_attacker(victim_addr: str, chain_id: str, phase: str, seconds: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--attack", phase, "--victim", victim_addr,
           "--chain", chain_id, "--seconds", str(seconds)]
    proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False, cwd=ROOT)
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"phase": phase, "error": f"attacker exited {proc.returncode}: {proc.stderr.decode()[-500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def amain(a: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    nodes = init_testnet(workdir / "tn", a.validators, base_port=free_base_port(a.validators),
                         chain_id="ekklesia-flood", genesis_time_ms=time.time_ns() // 1_000_000)
    victim = nodes[0]
    victim_addr = f"/ip4/127.0.0.1/tcp/{victim.p2p_port}/p2p/{victim.peer_id}"
    run = Run()
    phases: list[dict[str, Any]] = []
    cluster = Cluster(nodes, {"EKKLESIA_NODE_LOG_LEVEL": "info"})
    cluster.start()
    try:
        async with httpx.AsyncClient() as http:
            await cluster.wait_ready(http, min_height=2, timeout=90)
            async with trio.open_nursery() as n:
                n.start_soon(sample_victim, run, cluster, http)
                say(f"baseline {a.baseline:.0f} s")
                start = run.now()
                await trio.sleep(a.baseline)
                baseline = window(run, start, run.now())
                for phase in a.phases:
                    say(f"phase {phase}: {a.seconds:.0f} s")
                    start = run.now()
                    attack = await run_attacker(victim_addr, "ekklesia-flood", phase, a.seconds)
                    end = run.now()
                    await trio.sleep(a.settle)
                    phases.append({"phase": phase, "attacker": attack, "victim": window(run, start, end),
                                   "victim_after": window(run, end, run.now())})
                    if cluster.dead():
                        raise RuntimeError(f"node died: {', '.join(cluster.dead())}")
                n.cancel_scope.cancel()
    finally:
        codes = cluster.stop()
    for p in phases:
        att = p["attacker"]
        if "peer_id" in att:
            ev = victim_log_events(victim.home / "node.log", att["peer_id"])
            for key in ("banned_unix", "disconnected_unix"):
                at = ev.pop(key)
                ev[key.replace("_unix", "_after_s")] = round(at - att["start_unix"], 2) if at else None
            p["victim_log"] = ev
    return {
        "validators": a.validators,
        "seconds_per_phase": a.seconds,
        "baseline": baseline,
        "phases": phases,
        "victim_rss_mb_max": round(max(s.rss_mb for s in run.samples), 1),
        "victim_totals": victim_totals(victim.home / "node.log"),
        "exit_codes": codes,
        "samples": [[round(s.t, 2), round(s.rss_mb, 1)] for s in run.samples[:: max(1, int(1 / SAMPLE_S))]],
        "notes": [
            "2 shared cores for the nodes, the attacker and the sampler, other work running: figures are noisy.",
            "sent: messages the attacker wrote to the victim's gossipsub stream (pre-signed, a pool of "
            "unique_messages cycled: later rounds are duplicates to the victim).",
            "banned_after_s / disconnected_after_s: victim's log, from the attacker's first publish.",
            "victim blocks / longest_stall_s: heights seen by polling /v1/status every 0.5 s during the phase.",
        ],
    }


def table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(170, Console().width))
    t = Table(title=f"flood: one attacker at a time against node0 of a {result['validators']}-validator testnet",
              title_style="bold")
    for col in ("phase", "msgs sent", "MB sent", "msgs/s", "banned after s", "disconnected",
                "re-dials refused", "victim RSS max MB", "victim CPU %", "machine CPU %", "blocks", "longest stall s",
                "status max s", "mempool max", "penalties"):
        t.add_column(col, justify="left" if col in ("phase", "penalties") else "right")
    b = result["baseline"]
    t.add_row("baseline", "-", "-", "-", "-", "-", "-", f"{b['rss_mb_max']}", f"{b['cpu_pct']}",
              f"{b['machine_cpu_pct']}", f"{b['blocks']}", f"{b['longest_stall_s']}", f"{b['status_max_s']}",
              f"{b['mempool_max']}", "")
    for p in result["phases"]:
        att, v, log = p["attacker"], p["victim"], p.get("victim_log", {})
        if "error" in att:
            t.add_row(p["phase"], "error", att["error"][:60])
            continue
        banned = log.get("banned_after_s")
        t.add_row(
            p["phase"], f"{att['sent']:,}", f"{att['sent_bytes'] / 1e6:.1f}",
            f"{att['sent'] / max(att['disconnected_after_s'] or att['flood_s'], 1e-9):,.0f}",
            f"{banned}" if banned is not None else "no",
            "yes" if att["disconnected_after_s"] is not None else "no",
            ("no: reconnected" if att["reconnected"] or log.get("connected_after_ban") else
             f"yes ({att['redials']} re-dials)") if att["disconnected_after_s"] is not None else "-",
            f"{v['rss_mb_max']}", f"{v['cpu_pct']}", f"{v['machine_cpu_pct']}", f"{v['blocks']}",
            f"{v['longest_stall_s']}",
            f"{v['status_max_s']}", f"{v['mempool_max']}",
            ", ".join(f"{k} ×{n}" for k, n in log.get("penalties", {}).items()),
        )
    console.print(t)
    console.print(f"victim max RSS over the run: {result['victim_rss_mb_max']} MB")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--validators", type=int, default=2)
    p.add_argument("--seconds", type=float, default=20.0, help="flood time per phase")
    p.add_argument("--phases", type=lambda s: s.split(","), default=list(PHASES))
    p.add_argument("--baseline", type=float, default=5.0, help="quiet seconds measured before the first phase")
    p.add_argument("--settle", type=float, default=3.0, help="quiet seconds after each phase")
    p.add_argument("--out", default="flood", help="results file name in bench/results")
    p.add_argument("--keep", action="store_true", help="keep the testnet directory (node logs) and print its path")
    p.add_argument("--attack", help=argparse.SUPPRESS)  # the attacker child process
    p.add_argument("--victim", help=argparse.SUPPRESS)
    p.add_argument("--chain", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.attack:
        attacker_main(a)
        return 0
    for phase in a.phases:
        if phase not in PHASES:
            p.error(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="ekklesia-flood-"))
    t0 = time.monotonic()
    try:
        result = trio.run(amain, a, workdir, lambda msg: print(msg, flush=True))
    finally:
        stop_all()
        if a.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    table(result)
    path = write(a.out, result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
