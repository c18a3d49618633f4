"""The real-process mode of `ekklesia sim run --real`: what it refuses, skips and maps
(no processes), process clean-up, and one short partition-and-heal run of real nodes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from simulations import runner
from simulations.cli import sim
from simulations.real import backend
from simulations.real.backend import Links, UnsupportedScenario, check_chains, check_liveness, check_lost, node_actions
from simulations.real.procs import NodeProc, stop_all
from simulations.scenario import Fault, load, parse

REAL = "real-partition-heal"


def _scenario(text: str):
    return parse(tomllib.loads(text), source="t.toml")


BASE = 'duration_s = 20\n[validators]\ncount = 4\n'


# ---------------------------------------------------------------- refusals and skips


def test_byzantine_twins_and_unequal_power_are_refused_with_every_reason():
    s = _scenario(BASE.replace("count = 4", "count = 4\npowers = [10, 10, 10, 20]\ntwins = [\"n0\"]") +
                  '[[byzantine]]\nnode = "n3"\nbehaviour = "double-vote"\n')
    with pytest.raises(UnsupportedScenario) as exc:
        backend.check_support(s)
    msg = str(exc.value)
    assert "byzantine[0]" in msg and "double-vote" in msg
    assert "validators.twins" in msg and "validators.powers" in msg
    for name in ("fork", "f-equivocators", "twins"):  # shipped ones too
        with pytest.raises(UnsupportedScenario):
            backend.check_support(load(name))


def test_refusal_happens_before_any_process_starts(tmp_path, monkeypatch):
    def no_processes(*a, **k):
        raise AssertionError("a process was started")

    monkeypatch.setattr(NodeProc, "start", no_processes)
    with pytest.raises(UnsupportedScenario):
        runner.run(load("fork"), 1, tmp_path / "out", mode="real")
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(sim, ["run", "fork", "--real"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "byzantine[0]" in result.output


def test_real_flag_and_mode_agree():
    assert "real" in runner.BACKENDS and "deterministic" in runner.BACKENDS
    result = CliRunner().invoke(sim, ["run", REAL, "--real", "--mode", "deterministic"])
    assert result.exit_code == 2 and "--real contradicts --mode deterministic" in result.output


def test_link_latency_loss_skew_and_other_kinds_are_skipped_and_listed():
    s = _scenario(BASE + '[network]\nlatency_ms = 80\ndrop = 0.1\n[[network.links]]\nfrom = "n0"\nto = "*"\n'
                  'latency_ms = 300\n[workload]\nrate = 5\n'
                  '[[faults]]\nat_s = 2\naction = "loss"\ndrop = 0.5\n'
                  '[[faults]]\nat_s = 3\naction = "skew"\nnode = "n1"\nskew_ms = 5000\n'
                  '[[faults]]\nat_s = 4\naction = "cut"\nfrom = "n0"\nto = "n1"\none_way = true\n'
                  '[expect]\nliveness = "not-checked"\n')
    support = backend.check_support(s)
    text = "\n".join(support.unsupported)
    assert "network latency 80 ms" in text and "drop 10%" in text and "network.links[0] n0->*" in text
    assert "2 s: loss" in text and "3 s: skew" in text
    assert "workload kinds" in text and "notarise" in text
    assert support.notes == ["fault at 4 s: one-way cut n0->n1 is blocked both ways"]
    assert backend.check_support(load(REAL)).unsupported == []  # the shipped one runs as written


# ---------------------------------------------------------------- fault mapping


def pairs(links: Links) -> set[tuple[str, ...]]:
    return {tuple(sorted(p)) for p in links.blocked_pairs()}


def test_partition_shapes_become_blocked_pairs():
    names = ["n0", "n1", "n2", "n3"]
    links = Links(names)
    links.apply(Fault(0, "partition", groups=(("n0", "n1", "n2"), ("n3",))))
    assert pairs(links) == {("n0", "n3"), ("n1", "n3"), ("n2", "n3")}
    assert links.blocked_by("n3") == {"n0", "n1", "n2"} and links.blocked_by("n0") == {"n3"}
    links.apply(Fault(0, "partition", groups=(("n0", "n1"), ("n1", "n2", "n3"))))  # n1 bridges
    assert pairs(links) == {("n0", "n2"), ("n0", "n3")}
    links.apply(Fault(0, "isolate", nodes=("n2",)))  # replaces the topology
    assert pairs(links) == {("n0", "n2"), ("n1", "n2"), ("n2", "n3")}
    links.apply(Fault(0, "partition", groups=(("n0", "n1"),)))  # nodes in no group are isolated
    assert pairs(links) == {("n0", "n2"), ("n0", "n3"), ("n1", "n2"), ("n1", "n3"), ("n2", "n3")}
    links.apply(Fault(0, "heal"))
    assert pairs(links) == set()
    links.apply(Fault(0, "cut", src="n0", dst="n1", one_way=True))  # one way: still a blocked pair
    links.apply(Fault(0, "cut", src="n2", dst="n3"))
    assert pairs(links) == {("n0", "n1"), ("n2", "n3")}
    links.apply(Fault(0, "restore", src="n1", dst="n0"))
    assert pairs(links) == {("n2", "n3")}
    with pytest.raises(ValueError):
        links.apply(Fault(0, "crash", nodes=("n0",)))


def test_node_faults_become_signals():
    assert node_actions(Fault(0, "crash", nodes=("n1", "n2"))) == [("kill", "n1"), ("kill", "n2")]
    assert node_actions(Fault(0, "restart", nodes=("n1",))) == [("start", "n1")]
    assert node_actions(Fault(0, "pause", nodes=("n0",))) == [("stop", "n0")]
    assert node_actions(Fault(0, "resume", nodes=("n0",))) == [("cont", "n0")]
    assert node_actions(Fault(0, "heal")) == []
    with pytest.raises(ValueError, match="@proposer"):
        node_actions(Fault(0, "crash", nodes=("@proposer",)))


# ---------------------------------------------------------------- checks over chains read from the API


def block(h: int, tag: str = "a", txs: tuple[str, ...] = (), prev: str | None = None) -> dict:
    return {"height": h, "hash": f"{tag}{h}", "app_hash": f"app{h}", "prev_hash": prev or f"a{h - 1}",
            "chain_id": "c", "txs": list(txs), "evidence": [], "commit": {"block_hash": f"{tag}{h}", "round": 0}}


def test_chain_checks_find_forks_broken_links_and_lost_txs():
    good = {h: block(h, txs=("t1",) if h == 2 else ()) for h in range(1, 5)}
    safety, forks, validity = check_chains({"n0": good, "n1": dict(good)}, "c")
    assert (safety.status, forks, validity.status) == ("ok", [], "ok")
    forked = dict(good) | {3: block(3, "b"), 4: block(4, "b", prev="b3")}
    safety, forks, _ = check_chains({"n0": good, "n1": forked}, "c")
    assert safety.status == "violated" and forks == [3, 4] and "conflicting blocks" in safety.details[0]
    twice = dict(good) | {3: block(3, txs=("t1",))}
    assert check_chains({"n0": twice}, "c")[2].status == "violated"

    accused = dict(good) | {4: block(4) | {"evidence": [{"validator": "pk2", "height": 3, "round": 1}]}}
    items = backend.collect_evidence({"n0": accused, "n1": accused}, {"pk2": "n2"})
    assert [(e.validator, e.kind, e.height, e.round, e.source) for e in items] == [
        ("n2", "duplicate-vote", 3, 1, "block 4")]

    acked = {"t1": (100, "n0", "transfer"), "t9": (200, "n1", "transfer")}
    lost, lagging, v = check_lost({"n0": good, "n1": {1: good[1]}}, acked)
    assert lost == ["t9"] and lagging == ["t1"] and v.status == "violated"  # n1 is behind: t1 not lost


def test_liveness_reads_the_sampled_heights():
    s = load(REAL)  # heal at 8 s; 3 heights within 6 s
    samples = {"n0": [(0, 1, 0), (8000, 10, 0), (9000, 14, 0)], "n3": [(0, 1, 0), (2000, 5, 0), (13000, 7, 0)]}
    v, gained = check_liveness(s, samples, ["n0", "n3"], {"n0": 14, "n3": 7})
    assert gained == {"n0": 4, "n3": 2} and v.status == "violated" and v.details[0].startswith("n3: 2 new heights")
    quiet = dataclasses.replace(s, expect=dataclasses.replace(s.expect, liveness="not-checked"))
    assert check_liveness(quiet, samples, ["n3"], {})[0].status == "not-checked"


# ---------------------------------------------------------------- processes end, always


def _sleeper(tmp_path: Path, name: str) -> NodeProc:
    p = NodeProc(name, tmp_path, 1)
    p.p = subprocess.Popen(["sleep", "60"])
    return p


def test_stop_all_ends_paused_processes_too(tmp_path):
    procs = [_sleeper(tmp_path, "a"), _sleeper(tmp_path, "b")]
    procs[0].pause()  # a stopped process holds SIGTERM until SIGCONT
    codes = stop_all(procs, grace=5)
    assert all(not p.alive for p in procs)
    assert codes == {"a": -signal.SIGTERM, "b": -signal.SIGTERM}  # SIGTERM worked: no SIGKILL was needed


def test_ctrl_c_during_a_run_stops_every_process(tmp_path, monkeypatch):
    started: list[NodeProc] = []

    def fake_start(self):
        self.p = subprocess.Popen(["sleep", "60"])
        started.append(self)

    def interrupted(self, live):
        self.nodes["n1"].proc.pause()
        raise KeyboardInterrupt

    monkeypatch.setattr(NodeProc, "start", fake_start)
    monkeypatch.setattr(backend._RealRun, "wait_ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        backend.run_real(load(REAL), 1, tmp_path / "out", console=Console(quiet=True))
    assert len(started) == 4 and all(not p.alive for p in started)


# ---------------------------------------------------------------- one real run


SUMMARY_KEYS = {"scenario", "seed", "mode", "trace_hash", "virtual_seconds", "wall_seconds", "heights", "safety",
                "liveness", "forks", "evidence", "lost_txs", "validity", "accountability", "txs", "passed",
                "failures", "replay", "unsupported", "details", "halted", "rounds"}


def _our_processes(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmd:
                found.append(int(pid))
    return found


@pytest.mark.slow
def test_real_partition_and_heal(tmp_path):
    out = tmp_path / "out"
    s = backend.run_real(load(REAL), 3, out, ref=REAL, console=Console(quiet=True))
    assert not _our_processes(str(out)), "node processes outlived the run"
    assert set(s) >= SUMMARY_KEYS and s["mode"] == "real" and s["unsupported"] == []
    assert s["safety"] == "ok" and s["forks"] == [] and s["evidence"] == [], s["details"]
    assert s["liveness"] == "ok", (s["details"], s["liveness_window"])
    assert s["txs"]["acked"] > 0 and s["lost_txs"] == 0, (s["txs"], s["details"])
    assert s["passed"], s["failures"]
    assert s["replay"].startswith(f"ekklesia sim run {REAL} --real --seed 3")

    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    faults = {e["details"][0]: e["t_ms"] for e in events if e["kind"] == "fault"}
    assert set(faults) == {"partition", "heal"}
    blocks = {(e["node"], e["details"][0]) for e in events if e["kind"] == "block"}
    assert blocks == {("n0", "n3"), ("n1", "n3"), ("n2", "n3"), ("n3", "n0"), ("n3", "n1"), ("n3", "n2")}

    def height(node: str, t_ms: int) -> int:
        return max([e["details"][0] for e in events if e["kind"] == "height" and e["node"] == node
                    and e["t_ms"] <= t_ms] + [0])

    cut_from = max(e["t_ms"] for e in events if e["kind"] == "block") + 1000  # the links are down by then
    heal = faults["heal"]
    assert height("n3", heal) - height("n3", cut_from) <= 1, "n3 kept committing while cut off"
    assert height("n3", heal) < max(height(n, heal) for n in ("n0", "n1", "n2")), "the majority did not move on"
    for n in ("n0", "n1", "n2", "n3"):
        assert s["heights"][n] >= height(n, heal) + 3, f"{n} did not advance after the heal"

    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "summary.json").read_text())["trace_hash"] == s["trace_hash"]
    assert (out / "report.html").exists()
