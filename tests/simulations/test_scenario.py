"""Scenario files: every shipped one loads; a bad one is refused with the offending key named."""

import tomllib

import pytest

from simulations.scenario import SCENARIO_DIR, ScenarioError, load, parse, scenario_names

REQUIRED = {
    "happy-4", "happy-30", "proposer-crash", "minority-partition", "even-split", "rolling-restarts",
    "f-equivocators", "fork", "twins", "message-loss",
}

BASE = """
duration_s = 30
[validators]
count = 4
"""


def test_every_required_scenario_is_shipped_and_loads():
    assert set(scenario_names()) >= REQUIRED
    for name in scenario_names():
        s = load(name)
        assert s.name == name and s.duration_ms > 0 and s.description
        assert s.validators == len(s.powers)


def test_shipped_scenarios_say_what_they_expect():
    assert load("fork").expect.forks and load("fork").expect.safety == "violated"
    assert set(load("fork").expect.evidence) == {"n0", "n1"}
    assert load("even-split").expect.no_progress == ((6_000, 20_000),)
    assert load("happy-30").validators == 30
    assert load("twins").twins == ("n0",)
    assert load("message-loss").network.drop_ppm == 200_000
    assert {b.behaviour for b in load("f-equivocators").byzantine} == {"equivocate", "double-vote"}


def test_a_path_works_as_well_as_a_name(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(BASE)
    s = load(str(p))
    assert s.name == "mine" and s.validators == 4 and s.powers == (10, 10, 10, 10)
    assert load(str(SCENARIO_DIR / "happy-4.toml")).name == "happy-4"


def test_unknown_scenario_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="happy-4"):
        load("no-such-scenario")


def test_faults_parse_into_their_shapes_in_time_order():
    s = parse(tomllib.loads(BASE + """
[[faults]]
at_s = 9
action = "heal"
[[faults]]
at_s = 2.5
action = "partition"
groups = [["n0", "n1", "n2"], ["n2", "n3"]]
[[faults]]
at_s = 3
action = "cut"
from = "n0"
to = "n1"
one_way = true
[[faults]]
at_s = 4
action = "crash"
nodes = ["n1", "n2"]
[[faults]]
at_s = 5
action = "loss"
drop = 0.25
[[faults]]
at_s = 6
action = "skew"
node = "n3"
skew_ms = -1500
[[faults]]
at_s = 7
action = "pause"
node = "@proposer"
"""))
    assert [f.action for f in s.faults] == ["partition", "cut", "crash", "loss", "skew", "pause", "heal"]
    part, cut, crash, loss, skew, pause, _ = s.faults
    assert part.at_ms == 2_500 and part.groups == (("n0", "n1", "n2"), ("n2", "n3"))
    assert (cut.src, cut.dst, cut.one_way) == ("n0", "n1", True)
    assert crash.nodes == ("n1", "n2")
    assert loss.drop_ppm == 250_000
    assert skew.skew_ms == -1500 and skew.nodes == ("n3",)
    assert pause.nodes == ("@proposer",)
    assert s.liveness_after_ms() == 9_000


BAD = [
    ("", "duration_s"),
    ("duration_s = 30", "validators"),
    ("color = 1\n" + BASE, "color"),
    (BASE + "colour = 1", "validators.colour"),
    (BASE.replace("count = 4", "count = 0"), "validators.count"),
    (BASE.replace("count = 4", "count = 'four'"), "validators.count"),
    (BASE + "powers = [1, 2]", "validators.powers"),
    (BASE + "twins = ['n7']", "validators.twins[0]"),
    (BASE + "[network]\ndrop = 1.5", "network.drop"),
    (BASE + "[network]\ndistribution = 'pareto'", "network.distribution"),
    (BASE + "[[network.links]]\nfrom = 'n0'\nto = 'n9'", "network.links[0].to"),
    (BASE + "[consensus]\ntimeout_propose_ms = -5", "consensus.timeout_propose_ms"),
    (BASE + "[consensus]\nbogus_ms = 5", "consensus.bogus_ms"),
    (BASE + "[[byzantine]]\nnode = 'n1'\nbehaviour = 'nice'", "byzantine[0].behaviour"),
    (BASE + "[[byzantine]]\nnode = 'n9'\nbehaviour = 'silent'", "byzantine[0].node"),
    (BASE + "[[byzantine]]\nnode = 'n1'\nbehaviour = 'withhold-votes'\ntypes = ['proposal']", "byzantine[0].types[0]"),
    (BASE + "[[faults]]\nat_s = 1\naction = 'explode'", "faults[0].action"),
    (BASE + "[[faults]]\nat_s = 1\naction = 'crash'\nnode = 'n9'", "faults[0].node"),
    (BASE + "[[faults]]\nat_s = 1\naction = 'crash'", "faults[0].node"),
    (BASE + "[[faults]]\nat_s = 1\naction = 'partition'", "faults[0].groups"),
    (BASE + "[[faults]]\nat_s = 1\naction = 'partition'\ngroups = [['n0'], ['n5']]", "faults[0].groups[1][0]"),
    (BASE + "[[faults]]\nat_s = 1\naction = 'heal'\nnode = 'n0'", "faults[0].node"),
    (BASE + "[[faults]]\naction = 'heal'", "faults[0].at_s"),
    (BASE + "[[faults]]\nat_s = 40\naction = 'heal'", "faults"),
    (BASE + "[[faults]]\nat_s = 20\naction = 'heal'\n[liveness]\nwithin_s = 20", "duration_s"),
    (BASE + "[workload]\nrate = -1", "workload.rate"),
    (BASE + "[workload]\nmix = { transfer = 0 }", "workload.mix"),
    (BASE + "[workload]\nmix = { mint = 1 }", "workload.mix.mint"),
    (BASE + "[workload]\nresidents = 1", "workload.residents"),
    (BASE + "[expect]\nsafety = 'fine'", "expect.safety"),
    (BASE + "[expect]\nforks = true", "expect.forks"),
    (BASE + "[expect]\nevidence = ['n0-twin']", "expect.evidence[0]"),
    (BASE + "[expect]\nno_progress = [[5, 2]]", "expect.no_progress"),
]


@pytest.mark.parametrize(("text", "key"), BAD)
def test_bad_scenarios_name_the_key(text, key):
    with pytest.raises(ScenarioError) as err:
        parse(tomllib.loads(text), source="bad.toml")
    message = str(err.value)
    assert message.startswith("bad.toml: ")
    assert f" {key}:" in message, message


def test_a_file_that_is_not_toml_is_refused(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("duration_s = = 3")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load(str(p))


def test_duration_override_drops_later_faults_and_keeps_the_liveness_window_honest():
    s = load("minority-partition")
    assert s.with_duration(45).duration_ms == 45_000
    with pytest.raises(ScenarioError, match="liveness window"):
        s.with_duration(30)  # heal at 20 s + 20 s window
    short = load("happy-4").with_duration(21)
    assert short.duration_ms == 21_000 and short.faults == ()
