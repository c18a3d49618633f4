"""Every shipped scenario, run in deterministic mode, meets what it expects — and the
expectations are specific enough to fail: the fork is seen and blamed, the even split
makes no progress, the crashes and partitions show in the heights."""

import pytest

from simulations import runner
from simulations.scenario import load, scenario_names

# Virtual-seconds overrides that keep the suite fast; each still covers the scenario's
# whole fault timeline and its liveness window.
SHORTER = {"happy-4": 20, "happy-30": 10}


@pytest.fixture(scope="module")
def summaries():
    cache = {}

    def get(name):
        if name not in cache:
            s = load(name)
            if name in SHORTER:
                s = s.with_duration(SHORTER[name])
            cache[name] = runner.run(s, seed=1, ref=name, duration_s=SHORTER.get(name))
        return cache[name]

    return get


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_scenario_meets_its_expectations(name, summaries):
    s = summaries(name)
    assert s["passed"], (s["failures"], s["details"], s["replay"])
    assert s["validity"] == "ok"
    assert s["accountability"] in ("ok", "not-applicable")
    assert s["lost_txs"] == 0 or name == "fork"
    assert s["txs"]["acked"] > 0


def test_happy_path_commits_every_acknowledged_tx(summaries):
    s = summaries("happy-4")
    assert s["safety"] == "ok" and s["liveness"] == "ok" and s["forks"] == []
    assert min(s["heights"].values()) >= 50
    assert s["txs"]["committed_acked"] == s["txs"]["acked"] and s["txs"]["pending"] == 0
    assert set(s["txs"]["by_kind"]) == {"transfer", "notarise", "register", "proposal", "vote", "marriage"}


def test_thirty_validators_with_uneven_power_agree(summaries):
    s = summaries("happy-30")
    assert len(s["heights"]) == 30 and min(s["heights"].values()) >= 15
    assert max(s["heights"].values()) - min(s["heights"].values()) <= 1


def test_more_than_a_third_equivocating_forks_and_the_fork_names_the_coalition(summaries):
    s = summaries("fork")
    assert s["safety"] == "violated" and s["forks"]
    assert s["accountability"] == "ok"
    assert s["evidence"] == ["n0", "n1"]
    kinds = {e["kind"] for e in s["evidence_detail"] if e["height"] in s["forks"]}
    assert "fork-commit" in kinds
    assert any("conflicting blocks" in d for d in s["details"]["safety"])


def test_f_equivocators_are_convicted_without_harm(summaries):
    s = summaries("f-equivocators")
    by = {(e["validator"], e["kind"]) for e in s["evidence_detail"]}
    assert ("n0", "conflicting-proposal") in by and ("n1", "duplicate-vote") in by
    assert s["forks"] == [] and s["liveness"] == "ok"
    assert not {e["validator"] for e in s["evidence_detail"]} - {"n0", "n1"}


def test_twins_share_a_key_and_get_caught(summaries):
    s = summaries("twins")
    assert "n0-twin" in s["heights"] and s["byzantine"] == ["n0", "n0-twin"]
    assert s["evidence"] == ["n0"] and s["safety"] == "ok"


def test_faults_show_in_the_run(summaries):
    crash = summaries("proposer-crash")
    assert crash["rounds"]["commits_after_round_0"] > 0  # the crashed proposer's round failed
    loss = summaries("message-loss")
    assert loss["network"]["dropped"] > 0.15 * loss["network"]["sent"]
    split = summaries("even-split")
    assert split["rounds"]["max"] >= 1 and split["liveness"] == "ok"
