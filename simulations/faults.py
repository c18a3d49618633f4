"""The fault timeline: partitions, cuts, loss, crashes, restarts, pauses, clock skew.

`FaultInjector.install` schedules every `Fault` of a scenario on the cluster's
virtual clock; each one applied is recorded in the trace and in `periods` (what the
timeline plot shades). `random_faults` draws a fault schedule from a seeded stream
for sweeps: every fault it starts it also ends, so the cluster is whole again at
the returned time and liveness can be checked from there.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from protocol.consensus.proposer import ProposerSchedule
from protocol.governance.validator_set import validators_for
from simulations.cluster import Cluster
from simulations.scenario import PROPOSER, Fault

NETWORK = "network"


@dataclass
class Period:
    """A stretch of virtual time during which something was broken."""

    what: str  # "partition", "loss", "crash", "pause"
    node: str  # NETWORK for network-wide faults
    start_ms: int
    end_ms: int | None = None
    detail: str = ""


class FaultInjector:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.periods: list[Period] = []
        self.applied: list[tuple[int, str, str]] = []  # (t, action, detail)
        self.proposer: str | None = None  # what "@proposer" named last
        self._fresh = False

    def resolve(self, name: str) -> str:
        """A node name; "@proposer" is the validator proposing now in the round of the
        most advanced honest node (for restart/resume: the one it named last)."""
        if name != PROPOSER:
            return name
        if self.proposer is None or self._fresh:
            c = self.cluster
            live = [n for n in c.honest_nodes() if n.replica is not None and n.replica.engine is not None]
            lead = max(live or c.honest_nodes(), key=lambda n: (n.disk.height, n.name))
            height = lead.disk.height + 1
            state = lead.replica.engine.state if lead.replica is not None and lead.replica.engine else None
            rnd = state.round if state is not None and state.height == height else 0
            vals = validators_for(lead.disk.state, height)
            pk = ProposerSchedule(vals).proposer(height, rnd)
            self.proposer = next(
                n for n in sorted(c.nodes)
                if c.validator_of[n] == n and (key := c.nodes[n].key) is not None and key.public_key == pk
            )
        return self.proposer

    def install(self, faults: tuple[Fault, ...] | list[Fault]) -> None:
        for f in faults:
            self.cluster.sched.at(f.at_ms, self.apply, f)

    # ------------------------------------------------------------ applying

    def apply(self, f: Fault) -> None:
        c = self.cluster
        net = c.net
        now = c.sched.now_ms
        detail = ""
        self._fresh = f.action in ("crash", "pause", "isolate")
        if f.nodes:
            f = dataclasses.replace(f, nodes=tuple(self.resolve(n) for n in f.nodes))
        match f.action:
            case "partition":
                net.partition([list(g) for g in f.groups])
                detail = " | ".join(",".join(g) for g in f.groups)
                self._open("partition", NETWORK, detail)
            case "isolate":
                net.isolate(f.nodes[0])
                detail = f.nodes[0]
                self._open("partition", NETWORK, f"isolate {detail}")
            case "cut":
                net.cut(f.src, f.dst, one_way=f.one_way)
                detail = f"{f.src}{'->' if f.one_way else '<->'}{f.dst}"
                self._open("partition", NETWORK, f"cut {detail}")
            case "restore":
                net.restore(f.src, f.dst)
                detail = f"{f.src}<->{f.dst}"
                if not net.partitioned:
                    self._close("partition", NETWORK)
            case "heal":
                net.heal()
                self._close("partition", NETWORK)
            case "loss":
                net.default = dataclasses.replace(net.default, drop_ppm=f.drop_ppm, duplicate_ppm=f.duplicate_ppm)
                detail = f"drop={f.drop_ppm / 1e4:g}% duplicate={f.duplicate_ppm / 1e4:g}%"
                self._close("loss", NETWORK)
                if f.drop_ppm or f.duplicate_ppm:
                    self._open("loss", NETWORK, detail)
            case "crash":
                for n in f.nodes:
                    c.nodes[n].crash()
                    self._open("crash", n)
            case "restart":
                for n in f.nodes:
                    c.nodes[n].boot()
                    self._close("crash", n)
            case "pause":
                for n in f.nodes:
                    c.nodes[n].pause()
                    self._open("pause", n)
            case "resume":
                for n in f.nodes:
                    c.nodes[n].resume()
                    self._close("pause", n)
            case "skew":
                c.nodes[f.nodes[0]].skew_ms = f.skew_ms
                detail = f"{f.nodes[0]} {f.skew_ms:+d} ms"
            case _:
                raise ValueError(f"unknown fault action {f.action!r}")
        if f.action in ("crash", "restart", "pause", "resume"):
            detail = ",".join(f.nodes)
        self.applied.append((now, f.action, detail))
        c.trace.record(now, "-", "fault", f.action, detail)

    def _open(self, what: str, node: str, detail: str = "") -> None:
        if not any(p.what == what and p.node == node and p.end_ms is None for p in self.periods):
            self.periods.append(Period(what, node, self.cluster.sched.now_ms, None, detail))

    def _close(self, what: str, node: str) -> None:
        for p in self.periods:
            if p.what == what and p.node == node and p.end_ms is None:
                p.end_ms = self.cluster.sched.now_ms

    def closed_periods(self, end_ms: int) -> list[Period]:
        """Every period, those still open ending at `end_ms`."""
        return [dataclasses.replace(p, end_ms=end_ms if p.end_ms is None else p.end_ms) for p in self.periods]


# ---------------------------------------------------------------- random schedules


def random_faults(
    rng: random.Random, nodes: list[str], start_ms: int, end_ms: int, *, episodes: int
) -> list[Fault]:
    """`episodes` fault episodes between start and end, each healed before the next
    begins, drawn from every partition shape, loss, crashes, pauses and skew."""
    out: list[Fault] = []
    n = len(nodes)
    span = max(1, (end_ms - start_ms) // max(1, episodes))
    t = start_ms
    for _ in range(episodes):
        begin = t + rng.randrange(0, max(1, span // 4))
        length = rng.randrange(max(1, span // 4), max(2, span * 3 // 4))
        stop = min(begin + length, t + span - 1)
        kind = rng.choice(
            ["isolate", "minority", "even-split", "bridge", "overlap", "one-way", "crash", "pause", "loss", "skew",
             "rolling"]
        )
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        if kind == "isolate":
            out.append(Fault(begin, "isolate", nodes=(shuffled[0],)))
            out.append(Fault(stop, "heal"))
        elif kind == "minority":
            k = rng.randrange(1, max(2, (n - 1) // 3 + 1))
            out.append(Fault(begin, "partition", groups=(tuple(sorted(shuffled[:k])), tuple(sorted(shuffled[k:])))))
            out.append(Fault(stop, "heal"))
        elif kind == "even-split":
            half = n // 2
            out.append(Fault(begin, "partition", groups=(tuple(sorted(shuffled[:half])),
                                                         tuple(sorted(shuffled[half:])))))
            out.append(Fault(stop, "heal"))
        elif kind == "bridge" and n >= 3:
            half = (n - 1) // 2
            bridge = shuffled[0]
            a, b = shuffled[1 : 1 + half], shuffled[1 + half :]
            out.append(Fault(begin, "partition", groups=(tuple(sorted([bridge, *a])), tuple(sorted([bridge, *b])))))
            out.append(Fault(stop, "heal"))
        elif kind == "overlap" and n >= 4:
            # two majorities that share a core: everyone outside the core sees one side only
            core = shuffled[: n // 2]
            rest = shuffled[n // 2 :]
            a, b = rest[: len(rest) // 2], rest[len(rest) // 2 :]
            out.append(Fault(begin, "partition", groups=(tuple(sorted(core + a)), tuple(sorted(core + b)))))
            out.append(Fault(stop, "heal"))
        elif kind == "one-way" and n >= 2:
            out.append(Fault(begin, "cut", src=shuffled[0], dst=shuffled[1], one_way=True))
            out.append(Fault(stop, "heal"))
        elif kind == "crash":
            out.append(Fault(begin, "crash", nodes=(shuffled[0],)))
            out.append(Fault(stop, "restart", nodes=(shuffled[0],)))
        elif kind == "rolling" and n >= 2:
            step = max(1, (stop - begin) // 2)
            out.append(Fault(begin, "crash", nodes=(shuffled[0],)))
            out.append(Fault(begin + step, "restart", nodes=(shuffled[0],)))
            out.append(Fault(begin + step, "crash", nodes=(shuffled[1],)))
            out.append(Fault(stop, "restart", nodes=(shuffled[1],)))
        elif kind == "pause":
            out.append(Fault(begin, "pause", nodes=(shuffled[0],)))
            out.append(Fault(stop, "resume", nodes=(shuffled[0],)))
        elif kind == "loss":
            drop = rng.choice([50_000, 100_000, 200_000, 300_000])
            out.append(Fault(begin, "loss", drop_ppm=drop, duplicate_ppm=rng.choice([0, 20_000])))
            out.append(Fault(stop, "loss"))
        else:  # skew (or a shape that needs more nodes): a clock off by up to 5 s, fixed later
            node = shuffled[0]
            out.append(Fault(begin, "skew", nodes=(node,), skew_ms=rng.randrange(-5_000, 5_001)))
            out.append(Fault(stop, "skew", nodes=(node,), skew_ms=0))
        t += span
    return sorted(out, key=lambda f: f.at_ms)
