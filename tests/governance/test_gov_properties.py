"""Property tests over random workloads: invariants after every block, every
proposal ends in exactly one terminal state, and the same blocks give the same app
hashes in fresh states and in other Python processes (other PYTHONHASHSEEDs)."""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys

from gov_helpers import Chain
from gov_workload import Workload, replay
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocol.governance import app_hash, invariants, queries
from protocol.governance.proposals import TERMINAL

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def draw_pick(data: st.DataObject):  # type: ignore[no-untyped-def]
    return lambda lo, hi: data.draw(st.integers(lo, hi))


# Scaled with the active profile (see tests/conftest.py): 50 examples under "default".
@settings(
    max_examples=max(5, settings.default.max_examples // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_workloads_keep_the_invariants(data: st.DataObject) -> None:
    c = Chain()
    total = c.genesis.total_supply
    w = Workload(c, draw_pick(data))
    for _ in range(data.draw(st.integers(1, 25))):
        held = held_locks(c, w)
        w.block(max_txs=12)
        invariants.check(c.state, total)
        # locked tokens never move: while none of an account's locks was released,
        # its balance stays at or above the largest of them
        for addr, before in held.items():
            after = {pid for pid, _ in queries.locks(c.state, addr)}
            if after >= {pid for pid, _ in before}:
                assert queries.account(c.state, addr).balance >= max(a for _, a in before)
        s = queries.supply(c.state)
        assert s.total + s.burned == total
    # run past every deadline: each proposal reaches exactly one terminal state
    c.until(c.height + 40)
    invariants.check(c.state, total)
    for p in queries.proposals(c.state):
        assert p.status in TERMINAL, (p.id, p.status)
    assert all(a.locked == 0 for a in (queries.account(c.state, k.address) for k in w.keys))
    # a fresh state fed the same blocks ends with the same app hash
    assert replay([res_block.encode() for res_block in c.blocks])[-1] == app_hash(c.state).hex()


def held_locks(c: Chain, w: Workload) -> dict[bytes, list[tuple[int, int]]]:
    """(proposal, amount) of every vote lock on the workload's accounts."""
    out = {}
    for addr in sorted({k.address for k in w.keys} | {k.address for k in w.next_keys}):
        locks = queries.locks(c.state, addr)
        if locks:
            out[addr] = locks
    return out


class GovernanceMachine(RuleBasedStateMachine):
    """The same workload as a Hypothesis state machine: blocks of random txs and runs
    of empty blocks in any interleaving, invariants checked after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()
        self.work: Workload | None = None

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        self.work = Workload(self.chain, draw_pick(data))

    @rule()
    def busy_block(self) -> None:
        assert self.work is not None
        self.work.block(max_txs=10)

    @rule(n=st.integers(1, 8))
    def quiet_blocks(self, n: int) -> None:
        self.chain.until(self.chain.height + n)

    @invariant()
    def state_is_consistent(self) -> None:
        invariants.check(self.chain.state, self.chain.genesis.total_supply)
        for p in queries.proposals(self.chain.state):
            if p.status in TERMINAL:
                assert p.decided_height is not None


GovernanceMachine.TestCase.settings = settings(
    max_examples=max(3, settings.default.max_examples // 5),
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestGovernanceMachine = GovernanceMachine.TestCase


def workload_blocks(seed: int, n: int) -> tuple[list[bytes], list[str], Chain]:
    rng = random.Random(seed)
    c = Chain()
    w = Workload(c, rng.randint)
    hashes = []
    blocks = []
    for _ in range(n):
        w.block(max_txs=12)
        blocks.append(c.last_block.encode())
        hashes.append(app_hash(c.state).hex())
    return blocks, hashes, c


def test_fresh_states_fed_the_same_blocks_agree() -> None:
    blocks, hashes, c = workload_blocks(7, 40)
    assert sum(len(r.tx_results) for r in c.results) > 100
    assert sum(r.ok for res in c.results for r in res.tx_results) > 30  # the workload does real work
    assert replay(blocks) == hashes
    assert replay(blocks) == hashes
    assert len(set(hashes)) == len(hashes)


def test_other_processes_with_other_hash_seeds_agree(tmp_path: pathlib.Path) -> None:
    blocks, hashes, _ = workload_blocks(11, 30)
    f = tmp_path / "blocks.hex"
    f.write_text("\n".join(b.hex() for b in blocks))
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"}
        out = subprocess.run(
            [sys.executable, str(HERE / "gov_workload.py"), str(f)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.split() == hashes, f"PYTHONHASHSEED={seed}"
