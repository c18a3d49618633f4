"""Scenario files: TOML in, a validated `Scenario` out.

A scenario names the validators and their power, the network, the Byzantine set,
a timeline of faults in virtual seconds, the workload, the duration and the outcome
it expects. Every problem is a `ScenarioError` naming the offending key, e.g.
``happy.toml: faults[2].node: unknown node 'n9' (nodes: n0..n3)``. The full
reference is docs/simulations.md; `simulations/scenarios/` holds the shipped ones.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.consensus.config import ConsensusConfig
from simulations.cluster import FAST_CONSENSUS, TWIN_SUFFIX

SCENARIO_DIR = Path(__file__).parent / "scenarios"
MAX_VALIDATORS = 200
OUTCOMES = ("ok", "violated")
LIVENESS = ("ok", "violated", "not-checked")

BEHAVIOURS = (
    "equivocate",  # equivocating proposer: a twin block for side_b
    "double-vote",  # every vote also for the other value (block <-> nil)
    "withhold-votes",  # sends no votes (of the listed types)
    "wrong-height",  # extra votes signed for heights ahead of / behind the current one
    "wrong-round",  # extra votes signed for rounds ahead
    "invalid-block",  # proposes blocks no honest node accepts
    "replay",  # re-sends messages of earlier heights
    "fork-coalition",  # colluding members show side_b a twin chain: forks with > 1/3 power
    "silent",  # signs but sends nothing at all
)

# action -> (required keys, optional keys) besides at_s and action
FAULTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "partition": (frozenset({"groups"}), frozenset()),
    "isolate": (frozenset({"node"}), frozenset()),
    "cut": (frozenset({"from", "to"}), frozenset({"one_way"})),
    "restore": (frozenset({"from", "to"}), frozenset()),
    "heal": (frozenset(), frozenset()),
    "crash": (frozenset(), frozenset({"node", "nodes"})),
    "restart": (frozenset(), frozenset({"node", "nodes"})),
    "pause": (frozenset(), frozenset({"node", "nodes"})),
    "resume": (frozenset(), frozenset({"node", "nodes"})),
    "skew": (frozenset({"node", "skew_ms"}), frozenset()),
    "loss": (frozenset(), frozenset({"drop", "duplicate"})),
}
NODE_FAULTS = frozenset({"crash", "restart", "pause", "resume"})
PROPOSER = "@proposer"  # in crash/pause/isolate: the validator proposing at that moment
KINDS = ("transfer", "notarise", "register", "proposal", "vote", "marriage")


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the key."""


@dataclass(frozen=True)
class LinkSpec:
    latency_ms: int = 10
    jitter_ms: int = 20
    distribution: str = "uniform"
    drop_ppm: int = 0
    duplicate_ppm: int = 0


@dataclass(frozen=True)
class LinkOverride:
    src: str  # a node or "*"
    dst: str
    link: LinkSpec


@dataclass(frozen=True)
class ByzantineSpec:
    nodes: tuple[str, ...]
    behaviour: str
    side_b: tuple[str, ...] = ()  # equivocate / fork-coalition: who sees the twin
    types: tuple[str, ...] = ("prevote", "precommit")  # withhold-votes
    offsets: tuple[int, ...] = (1, 2, 5)  # wrong-height / wrong-round


@dataclass(frozen=True)
class Fault:
    at_ms: int
    action: str
    nodes: tuple[str, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    src: str = ""
    dst: str = ""
    one_way: bool = False
    skew_ms: int = 0
    drop_ppm: int = 0
    duplicate_ppm: int = 0


@dataclass(frozen=True)
class WorkloadSpec:
    rate: float = 0.0  # transactions per virtual second
    clients: int = 8
    residents: int = 6
    start_ms: int = 1_000
    stop_ms: int | None = None  # default: duration - drain
    drain_ms: int = 10_000
    mix: tuple[tuple[str, int], ...] = (
        ("transfer", 4), ("notarise", 2), ("register", 1), ("proposal", 1), ("vote", 2), ("marriage", 1),
    )


@dataclass(frozen=True)
class LivenessSpec:
    heights: int = 3  # k new heights ...
    within_ms: int = 20_000  # ... within T after the last fault event
    after_ms: int | None = None  # default: the time of the last fault event


@dataclass(frozen=True)
class Expect:
    safety: str = "ok"
    liveness: str = "ok"
    forks: bool = False
    evidence: tuple[str, ...] = ()  # validators the evidence must name
    max_lost_txs: int = 0
    min_height: int = 0  # every honest node that is up at the end reached it
    no_progress: tuple[tuple[int, int], ...] = ()  # (from, to) ms: no honest node gains over one height


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_ms: int
    validators: int
    powers: tuple[int, ...]
    description: str = ""
    twins: tuple[str, ...] = ()
    network: LinkSpec = field(default_factory=LinkSpec)
    links: tuple[LinkOverride, ...] = ()
    consensus: ConsensusConfig = FAST_CONSENSUS
    byzantine: tuple[ByzantineSpec, ...] = ()
    faults: tuple[Fault, ...] = ()
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    liveness: LivenessSpec = field(default_factory=LivenessSpec)
    expect: Expect = field(default_factory=Expect)
    source: str = ""

    @property
    def node_names(self) -> list[str]:
        return [f"n{i}" for i in range(self.validators)] + [t + TWIN_SUFFIX for t in self.twins]

    @property
    def byzantine_nodes(self) -> set[str]:
        return {n for b in self.byzantine for n in b.nodes}

    def liveness_after_ms(self) -> int:
        if self.liveness.after_ms is not None:
            return self.liveness.after_ms
        return max((f.at_ms for f in self.faults), default=0)

    def workload_stop_ms(self) -> int:
        w = self.workload
        return w.stop_ms if w.stop_ms is not None else max(w.start_ms, self.duration_ms - w.drain_ms)

    def with_duration(self, seconds: float) -> Scenario:
        """The same scenario run for `seconds` (faults after the end are dropped)."""
        ms = _seconds(seconds, "duration_s", self.source)
        faults = tuple(f for f in self.faults if f.at_ms < ms)
        s = dataclasses.replace(self, duration_ms=ms, faults=faults)
        _check_timing(s)
        return s


# ---------------------------------------------------------------- loading


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def resolve(name_or_path: str) -> Path:
    """A shipped scenario's name (with or without .toml) or a path to a file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return p
    shipped = SCENARIO_DIR / f"{p.stem if p.suffix == '.toml' else name_or_path}.toml"
    if shipped.exists():
        return shipped
    raise ScenarioError(
        f"no scenario {name_or_path!r}: not a file, and not one of {', '.join(scenario_names())}"
    )


def load(name_or_path: str) -> Scenario:
    path = resolve(name_or_path)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path.name}: not valid TOML: {exc}") from None
    return parse(doc, source=path.name, default_name=path.stem)


def parse(doc: dict[str, Any], *, source: str = "<scenario>", default_name: str = "scenario") -> Scenario:
    r = _Reader(doc, source, "")
    r.only({"name", "description", "duration_s", "validators", "network", "consensus", "byzantine", "faults",
            "workload", "liveness", "expect"})
    name = r.string("name", default_name)
    duration_ms = _seconds(r.number("duration_s"), r.key("duration_s"), source)

    v = r.table("validators", required=True)
    v.only({"count", "powers", "twins"})
    count = v.integer("count", lo=1, hi=MAX_VALIDATORS)
    powers = tuple(v.int_list("powers", lo=1, hi=2**40) or [10] * count)
    if len(powers) != count:
        raise v.error("powers", f"has {len(powers)} entries for {count} validators")
    validator_names = [f"n{i}" for i in range(count)]
    twins = tuple(v.str_list("twins"))
    for i, t in enumerate(twins):
        if t not in validator_names:
            raise v.error(f"twins[{i}]", f"unknown validator {t!r} ({_names(validator_names)})")
    if len(set(twins)) != len(twins):
        raise v.error("twins", "lists a validator twice")
    names = validator_names + [t + TWIN_SUFFIX for t in twins]

    net = r.table("network")
    net.only({"latency_ms", "jitter_ms", "distribution", "drop", "duplicate", "links"})
    network = _link(net)
    links = []
    for i, lt in enumerate(net.tables("links")):
        lt.only({"from", "to", "latency_ms", "jitter_ms", "distribution", "drop", "duplicate"})
        src, dst = lt.node("from", names, wildcard=True), lt.node("to", names, wildcard=True)
        links.append(LinkOverride(src, dst, _link(lt, network)))
        del i

    cons = r.table("consensus")
    fields = {f.name: f for f in dataclasses.fields(ConsensusConfig)}
    cons.only(set(fields))
    overrides: dict[str, Any] = {}
    for k in sorted(cons.doc):
        overrides[k] = cons.boolean(k) if fields[k].type in ("bool", bool) else cons.integer(k, lo=0)
    try:
        consensus = dataclasses.replace(FAST_CONSENSUS, **overrides)
    except ValueError as exc:
        raise cons.error("", str(exc)) from None

    byz = []
    for bt in r.tables("byzantine"):
        bt.only({"node", "nodes", "behaviour", "side_b", "types", "offsets"})
        nodes = bt.nodes(names)
        if not nodes:
            raise bt.error("nodes", "names no node")
        behaviour = bt.choice("behaviour", BEHAVIOURS)
        side_b = tuple(bt.node_list("side_b", names))
        types = tuple(bt.str_list("types") or ["prevote", "precommit"])
        for i, t in enumerate(types):
            if t not in ("prevote", "precommit"):
                raise bt.error(f"types[{i}]", f"must be prevote or precommit, not {t!r}")
        offsets = tuple(bt.int_list("offsets", lo=-1000, hi=1000) or [1, 2, 5])
        if 0 in offsets:
            raise bt.error("offsets", "an offset of 0 is an honest vote")
        byz.append(ByzantineSpec(nodes, behaviour, side_b, types, offsets))
    seen: set[str] = set()
    for i, b in enumerate(byz):
        for n in b.nodes:
            if n in seen:
                raise ScenarioError(f"{source}: byzantine[{i}]: node {n} already has a behaviour")
            seen.add(n)

    faults = []
    for ft in r.tables("faults"):
        faults.append(_fault(ft, names))
    faults.sort(key=lambda f: f.at_ms)  # stable: same-time faults keep file order

    wt = r.table("workload")
    wt.only({"rate", "clients", "residents", "start_s", "stop_s", "drain_s", "mix"})
    wd = WorkloadSpec()
    mix = wd.mix
    if "mix" in wt.doc:
        mt = wt.table("mix")
        mt.only(set(KINDS))
        mix = tuple((k, mt.integer(k, lo=0, hi=1_000_000)) for k in KINDS if k in mt.doc)
        if not any(w for _, w in mix):
            raise wt.error("mix", "gives every kind a weight of 0")
    clients = wt.integer("clients", wd.clients, lo=2, hi=10_000)
    workload = WorkloadSpec(
        rate=wt.number("rate", wd.rate, lo=0, hi=100_000) or 0.0,
        clients=clients,
        residents=wt.integer("residents", min(wd.residents, clients), lo=0, hi=clients),
        start_ms=_seconds(wt.number("start_s", wd.start_ms / 1000), wt.key("start_s"), source, zero=True),
        stop_ms=_seconds(wt.number("stop_s"), wt.key("stop_s"), source) if "stop_s" in wt.doc else None,
        drain_ms=_seconds(wt.number("drain_s", wd.drain_ms / 1000), wt.key("drain_s"), source, zero=True),
        mix=mix,
    )
    if workload.residents < 2 and any(k == "marriage" and w for k, w in mix):
        raise wt.error("residents", "a marriage needs two resident clients")

    lt = r.table("liveness")
    lt.only({"heights", "within_s", "after_s"})
    ld = LivenessSpec()
    liveness = LivenessSpec(
        heights=lt.integer("heights", ld.heights, lo=1, hi=1_000_000),
        within_ms=_seconds(lt.number("within_s", ld.within_ms / 1000), lt.key("within_s"), source),
        after_ms=_seconds(lt.number("after_s"), lt.key("after_s"), source, zero=True) if "after_s" in lt.doc else None,
    )

    et = r.table("expect")
    et.only({"safety", "liveness", "forks", "evidence", "max_lost_txs", "min_height", "no_progress"})
    ed = Expect()
    evidence = tuple(et.node_list("evidence", validator_names))
    expect = Expect(
        safety=et.choice("safety", OUTCOMES, ed.safety),
        liveness=et.choice("liveness", LIVENESS, ed.liveness),
        forks=et.boolean("forks", ed.forks),
        evidence=evidence,
        max_lost_txs=et.integer("max_lost_txs", ed.max_lost_txs, lo=0),
        min_height=et.integer("min_height", ed.min_height, lo=0),
        no_progress=_windows(et, "no_progress"),
    )
    if expect.forks and expect.safety == "ok":
        raise et.error("forks", "a fork violates safety: set safety = \"violated\" too")

    s = Scenario(
        name=name,
        description=r.string("description", ""),
        duration_ms=duration_ms,
        validators=count,
        powers=powers,
        twins=twins,
        network=network,
        links=tuple(links),
        consensus=consensus,
        byzantine=tuple(byz),
        faults=tuple(faults),
        workload=workload,
        liveness=liveness,
        expect=expect,
        source=source,
    )
    _check_timing(s)
    return s


def _check_timing(s: Scenario) -> None:
    last = max((f.at_ms for f in s.faults), default=0)
    if last >= s.duration_ms:
        raise ScenarioError(f"{s.source}: faults: an event at {last / 1000:g} s is not before duration_s")
    if s.expect.liveness != "not-checked":
        end = s.liveness_after_ms() + s.liveness.within_ms
        if end > s.duration_ms:
            raise ScenarioError(
                f"{s.source}: duration_s: {s.duration_ms / 1000:g} s ends before the liveness window "
                f"(last fault at {s.liveness_after_ms() / 1000:g} s + liveness.within_s "
                f"{s.liveness.within_ms / 1000:g} s); lengthen it or set expect.liveness = \"not-checked\""
            )


def _windows(t: _Reader, k: str) -> tuple[tuple[int, int], ...]:
    raw = t.doc.get(k, [])
    ok = isinstance(raw, list) and all(
        isinstance(w, list) and len(w) == 2 and all(type(x) in (int, float) and x >= 0 for x in w) and w[0] < w[1]
        for w in raw
    )
    if not ok:
        raise t.error(k, "must be a list of [from_s, to_s] pairs with from_s < to_s")
    return tuple((round(a * 1000), round(b * 1000)) for a, b in raw)


def _seconds(value: float | None, key: str, source: str, *, zero: bool = False) -> int:
    if value is None:
        raise ScenarioError(f"{source}: {key}: is required")
    ms = round(value * 1000)
    if ms < 0 or (ms == 0 and not zero):
        raise ScenarioError(f"{source}: {key}: must be {'at least 0' if zero else 'positive'}, got {value}")
    return ms


def _names(names: list[str]) -> str:
    return f"nodes: {', '.join(names)}" if len(names) <= 8 else f"nodes: {names[0]}..{names[-1]}"


def _link(t: _Reader, base: LinkSpec | None = None) -> LinkSpec:
    b = base or LinkSpec()
    return LinkSpec(
        latency_ms=t.integer("latency_ms", b.latency_ms, lo=0, hi=600_000),
        jitter_ms=t.integer("jitter_ms", b.jitter_ms, lo=0, hi=600_000),
        distribution=t.choice("distribution", ("uniform", "exponential"), b.distribution),
        drop_ppm=t.ppm("drop", b.drop_ppm),
        duplicate_ppm=t.ppm("duplicate", b.duplicate_ppm),
    )


def _fault(t: _Reader, names: list[str]) -> Fault:
    action = t.choice("action", tuple(FAULTS))
    required, optional = FAULTS[action]
    t.only({"at_s", "action"} | required | optional)
    for k in sorted(required):
        if k not in t.doc:
            raise t.error(k, f"is required for action {action!r}")
    at_ms = _seconds(t.number("at_s"), t.key("at_s"), t.source, zero=True)
    f = Fault(at_ms=at_ms, action=action)
    if action in NODE_FAULTS or action == "isolate":
        nodes = t.nodes([*names, PROPOSER])
        if not nodes:
            raise t.error("node", f"action {action!r} needs node or nodes")
        return dataclasses.replace(f, nodes=nodes)
    if action == "partition":
        raw = t.doc["groups"]
        if not isinstance(raw, list) or not raw or not all(isinstance(g, list) for g in raw):
            raise t.error("groups", "must be a non-empty list of lists of node names")
        groups = []
        for gi, g in enumerate(raw):
            group = []
            for ni, n in enumerate(g):
                if n not in names:
                    raise t.error(f"groups[{gi}][{ni}]", f"unknown node {n!r} ({_names(names)})")
                group.append(n)
            groups.append(tuple(group))
        return dataclasses.replace(f, groups=tuple(groups))
    if action in ("cut", "restore"):
        return dataclasses.replace(
            f, src=t.node("from", names), dst=t.node("to", names), one_way=t.boolean("one_way", False)
        )
    if action == "skew":
        return dataclasses.replace(
            f, nodes=(t.node("node", names),), skew_ms=t.integer("skew_ms", lo=-3_600_000, hi=3_600_000)
        )
    if action == "loss":
        return dataclasses.replace(f, drop_ppm=t.ppm("drop", 0), duplicate_ppm=t.ppm("duplicate", 0))
    return f  # heal


class _Reader:
    """One TOML table being read; every error names the key path."""

    def __init__(self, doc: Any, source: str, path: str) -> None:
        self.source = source
        self.path = path
        if not isinstance(doc, dict):
            raise ScenarioError(f"{source}: {path or 'the file'}: must be a table")
        self.doc: dict[str, Any] = doc

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path and k else (self.path or k)

    def error(self, k: str, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {self.key(k)}: {problem}")

    def only(self, allowed: set[str] | frozenset[str]) -> None:
        unknown = sorted(set(self.doc) - set(allowed))
        if unknown:
            raise self.error(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, k: str, *, required: bool = False) -> _Reader:
        if k not in self.doc:
            if required:
                raise self.error(k, "is required")
            return _Reader({}, self.source, self.key(k))
        if not isinstance(self.doc[k], dict):
            raise self.error(k, "must be a table")
        return _Reader(self.doc[k], self.source, self.key(k))

    def tables(self, k: str) -> list[_Reader]:
        raw = self.doc.get(k, [])
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            raise self.error(k, f"must be an array of tables ([[{self.key(k)}]])")
        return [_Reader(x, self.source, f"{self.key(k)}[{i}]") for i, x in enumerate(raw)]

    def integer(self, k: str, default: int | None = None, *, lo: int | None = None, hi: int | None = None) -> int:
        v = self.doc.get(k, default)
        if v is None:
            raise self.error(k, "is required")
        if type(v) is not int:
            raise self.error(k, f"must be an integer, not {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(k, f"must be in [{lo}, {hi}], got {v}")
        return v

    def number(self, k: str, default: float | None = None, *, lo: float | None = None,
               hi: float | None = None) -> float | None:  # fmt: skip
        v = self.doc.get(k, default)
        if v is None:
            return None
        if type(v) not in (int, float):
            raise self.error(k, f"must be a number, not {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(k, f"must be in [{lo}, {hi}], got {v}")
        return float(v)

    def ppm(self, k: str, default: int) -> int:
        """A probability in [0, 1], held as integer parts per million."""
        if k not in self.doc:
            return default
        v = self.number(k, lo=0, hi=1)
        assert v is not None
        return round(v * 1_000_000)

    def boolean(self, k: str, default: bool | None = None) -> bool:
        v = self.doc.get(k, default)
        if type(v) is not bool:
            raise self.error(k, f"must be true or false, not {v!r}")
        return v

    def string(self, k: str, default: str | None = None) -> str:
        v = self.doc.get(k, default)
        if type(v) is not str:
            raise self.error(k, f"must be a string, not {v!r}")
        return v

    def choice(self, k: str, options: tuple[str, ...], default: str | None = None) -> str:
        v = self.string(k, default)
        if v not in options:
            raise self.error(k, f"must be one of {', '.join(options)}; got {v!r}")
        return v

    def str_list(self, k: str) -> list[str]:
        v = self.doc.get(k, [])
        if not isinstance(v, list) or not all(type(x) is str for x in v):
            raise self.error(k, "must be a list of strings")
        return v

    def int_list(self, k: str, *, lo: int, hi: int) -> list[int]:
        v = self.doc.get(k, [])
        if not isinstance(v, list) or not all(type(x) is int and lo <= x <= hi for x in v):
            raise self.error(k, f"must be a list of integers in [{lo}, {hi}]")
        return v

    def node(self, k: str, names: list[str], *, wildcard: bool = False) -> str:
        v = self.string(k)
        if v not in names and not (wildcard and v == "*"):
            raise self.error(k, f"unknown node {v!r} ({_names(names)})")
        return v

    def node_list(self, k: str, names: list[str]) -> list[str]:
        out = self.str_list(k)
        for i, n in enumerate(out):
            if n not in names:
                raise self.error(f"{k}[{i}]", f"unknown node {n!r} ({_names(names)})")
        return out

    def nodes(self, names: list[str]) -> tuple[str, ...]:
        """`node = "n1"` or `nodes = ["n1", "n2"]` (not both)."""
        if "node" in self.doc and "nodes" in self.doc:
            raise self.error("nodes", "give node or nodes, not both")
        if "node" in self.doc:
            return (self.node("node", names),)
        return tuple(self.node_list("nodes", names))
