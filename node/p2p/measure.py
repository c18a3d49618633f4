"""Measure the network layer on this machine (127.0.0.1 only). Not used by the node.

    python -m node.p2p.measure reqresp            # request/response latency, 2 hosts
    python -m node.p2p.measure gossip --hosts 4   # one-process gossip delivery latency
    python -m node.p2p.measure cluster --hosts 4 --rate 40 --size 1000 --seconds 10
                                                  # one OS process per host
    add --no-record-cache to measure without node.p2p.record_cache

Prints one JSON object per run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import structlog
import trio

from . import Network, NetworkConfig, ReqRespLimits, TopicKind

LOCAL = "/ip4/127.0.0.1/tcp/0"


def _quiet() -> None:
    import logging

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(_pct(ms, 50), 3),
        "p95_ms": round(_pct(ms, 95), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


async def _start(nursery: trio.Nursery, n: int, **kw: Any) -> list[Network]:
    nets: list[Network] = []
    addrs: list[str] = []
    for _ in range(n):
        net = Network(NetworkConfig(chain_id="measure", listen_addrs=(LOCAL,), bootstrap_peers=tuple(addrs), **kw))
        addrs.append((await nursery.start(net.run))[0])
        nets.append(net)
    for net in nets:
        others = [o.peer_id for o in nets if o is not net]
        await net.wait_for_peers(others, timeout=30)
        for kind in TopicKind:
            await net.wait_for_mesh(kind, others, timeout=30)
    return nets


async def measure_reqresp(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"what": "reqresp", "record_cache": not args.no_record_cache}
    for reuse in (True, False):
        async with trio.open_nursery() as nursery:
            t0 = time.perf_counter()
            a, b = await _start(
                nursery,
                2,
                reqresp=ReqRespLimits(reuse_streams=reuse, max_response_bytes=2 * 1024 * 1024),
                cache_signed_records=not args.no_record_cache,
            )
            out["two_hosts_connected_and_meshed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            big = b"m" * (1024 * 1024)

            async def handler(peer: str, req: bytes, big: bytes = big) -> bytes:
                return big if req == b"big" else req

            b.set_request_handler(handler)
            await a.request(b.peer_id, b"warm-up")
            small = []
            for i in range(args.count):
                t = time.perf_counter()
                await a.request(b.peer_id, b"%d" % i)
                small.append((time.perf_counter() - t) * 1000)
            large = []
            for _ in range(max(3, args.count // 20)):
                t = time.perf_counter()
                assert len(await a.request(b.peer_id, b"big")) == len(big)
                large.append((time.perf_counter() - t) * 1000)
            key = "reused_stream" if reuse else "stream_per_request"
            out[key] = {"small_request": _summary(small), "1MiB_response": _summary(large)}
            a.stop()
            b.stop()
    return out


async def measure_gossip(args: argparse.Namespace) -> dict[str, Any]:
    """Sequential one-way delivery: host 0 publishes, wait until all others have it."""
    async with trio.open_nursery() as nursery:
        nets = await _start(nursery, args.hosts, cache_signed_records=not args.no_record_cache)
        first, last = [], []
        for i in range(args.count):
            payload = (b"%08d" % i) + b"x" * max(0, args.size - 8)
            t = time.perf_counter()
            await nets[0].publish("txs", payload)
            arrivals = []
            for net in nets[1:]:
                with trio.fail_after(10):
                    msg = await net.incoming("txs").receive()
                assert msg.data == payload
                arrivals.append((time.perf_counter() - t) * 1000)
            first.append(min(arrivals))
            last.append(max(arrivals))
        for net in nets:
            net.stop()
    return {
        "what": "gossip_one_process",
        "hosts": args.hosts,
        "size": args.size,
        "record_cache": not args.no_record_cache,
        "first_receiver": _summary(first),
        "last_receiver": _summary(last),
    }


# ---------------------------------------------------------------- multi-process


async def _child(args: argparse.Namespace) -> None:
    boot = tuple(a for a in args.bootstrap.split(",") if a)
    net = Network(
        NetworkConfig(
            chain_id="measure",
            listen_addrs=(LOCAL,),
            bootstrap_peers=boot,
            cache_signed_records=not args.no_record_cache,
            incoming_buffer=100_000,
        )
    )
    lat: list[float] = []
    expected = (args.hosts - 1) * args.count
    async with trio.open_nursery() as nursery:
        addrs = await nursery.start(net.run)
        print(json.dumps({"addr": addrs[0]}), flush=True)
        others = [o for o in sys.stdin.readline().split(",") if o.strip() and o.strip() != net.peer_id]
        others = [o.strip() for o in others]
        await net.wait_for_peers(others, timeout=60)
        await net.wait_for_mesh("txs", others, timeout=60)
        print(json.dumps({"ready": True}), flush=True)
        start_at = float(sys.stdin.readline())
        done = trio.Event()

        async def consume() -> None:
            async for msg in net.incoming("txs"):
                lat.append((time.time_ns() - int(msg.data[:20])) / 1e6)
                if len(lat) >= expected:
                    done.set()

        nursery.start_soon(consume)
        await trio.sleep(max(0.0, start_at - time.time()))
        cpu0 = time.process_time()
        interval = args.hosts / args.rate  # the cluster publishes `rate` msgs/s in total
        t_next = trio.current_time()
        for seq in range(args.count):
            payload = b"%020d" % time.time_ns() + b"%06d%02d" % (seq, args.idx)
            await net.publish("txs", payload + b"p" * max(0, args.size - len(payload)))
            t_next += interval
            await trio.sleep_until(t_next)
        with trio.move_on_after(args.drain):
            await done.wait()
        cpu = time.process_time() - cpu0
        st = net.stats()
        print(
            json.dumps(
                {
                    "idx": args.idx,
                    "received": len(lat),
                    "expected": expected,
                    "lat": _summary(lat),
                    "cpu_s": round(cpu, 3),
                    "dropped": st["gossip_dropped"],
                    "send_dropped": st["gossip_send_dropped"],
                    "record_cache_hits": st["record_cache_hits"],
                    "record_cache_misses": st["record_cache_misses"],
                    "lat_all": lat,
                }
            ),
            flush=True,
        )
        net.stop()


def measure_cluster(args: argparse.Namespace) -> dict[str, Any]:
    procs: list[subprocess.Popen[str]] = []
    addrs: list[str] = []
    count = int(args.rate * args.seconds / args.hosts)
    base = [sys.executable, "-m", "node.p2p.measure", "child", "--hosts", str(args.hosts)]
    base += ["--rate", str(args.rate), "--size", str(args.size), "--count", str(count), "--drain", "10"]
    if args.no_record_cache:
        base.append("--no-record-cache")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        for i in range(args.hosts):
            p = subprocess.Popen(
                [*base, "--idx", str(i), "--bootstrap", ",".join(addrs)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            procs.append(p)
            assert p.stdout is not None
            addrs.append(json.loads(p.stdout.readline())["addr"])
        ids = ",".join(a.rsplit("/p2p/", 1)[1] for a in addrs)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(ids + "\n")
            p.stdin.flush()
        for p in procs:
            assert p.stdout is not None
            assert json.loads(p.stdout.readline())["ready"]
        start_at = time.time() + 1.0
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{start_at}\n")
            p.stdin.flush()
        results = []
        for p in procs:
            assert p.stdout is not None
            results.append(json.loads(p.stdout.readline()))
        for p in procs:
            p.wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    all_lat = [x for r in results for x in r.pop("lat_all")]
    received = sum(r["received"] for r in results)
    expected = sum(r["expected"] for r in results)
    return {
        "what": "gossip_multi_process",
        "hosts": args.hosts,
        "rate_total_msgs_per_s": args.rate,
        "size": args.size,
        "msgs_per_host": count,
        "record_cache": not args.no_record_cache,
        "delivery_ratio": round(received / expected, 4) if expected else None,
        "latency": _summary(all_lat),
        # every process handles (hosts-1)*count received + count published messages
        "cpu_ms_per_msg_per_process": round(
            statistics.fmean(r["cpu_s"] for r in results) * 1000 / (count * args.hosts), 3
        ),
        "per_process": results,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m node.p2p.measure")
    ap.add_argument("what", choices=["reqresp", "gossip", "cluster", "child"])
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--rate", type=float, default=40.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-record-cache", action="store_true")
    ap.add_argument("--idx", type=int, default=0)
    ap.add_argument("--bootstrap", default="")
    ap.add_argument("--drain", type=float, default=10.0)
    args = ap.parse_args(argv)
    _quiet()
    if args.what == "child":
        trio.run(_child, args)
        return
    if args.what == "cluster":
        print(json.dumps(measure_cluster(args)))
        return
    fn = measure_reqresp if args.what == "reqresp" else measure_gossip
    print(json.dumps(trio.run(fn, args)))


if __name__ == "__main__":
    main()
