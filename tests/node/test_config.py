"""node.config and node.home: defaults, rendering, loading, env overrides, validation."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import node.config as cfgmod
from node.config import (
    ApiSection,
    Config,
    ConfigError,
    MetricsSection,
    NodeSection,
    P2PSection,
    env_overrides,
    host_port_problem,
    multiaddr_problem,
    render,
    render_default,
)
from node.errors import HomeError, NodeError
from node.home import Home, default_home

REPO = Path(__file__).resolve().parents[2]
PEER = "/ip4/10.0.0.2/tcp/26656/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
PEER2 = "/dns4/seed.example.org/tcp/26656/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def load(text: str, env: dict[str, str] | None = None) -> Config:
    return Config.from_toml(text, env=env or {}, source="config.toml")


def problem_for(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return info.value


# ----------------------------------------------------------------------------- defaults and rendering


def test_defaults_are_the_documented_ones() -> None:
    c = Config()
    assert c.p2p.listen == "/ip4/127.0.0.1/tcp/26656"
    assert c.p2p.peers == ()
    assert c.api.listen == "127.0.0.1:26657"
    assert c.api.admin_enabled is False
    assert (c.consensus.timeout_propose_ms, c.consensus.timeout_propose_delta_ms) == (3000, 500)
    assert (c.consensus.timeout_prevote_ms, c.consensus.timeout_prevote_delta_ms) == (1000, 500)
    assert (c.consensus.timeout_precommit_ms, c.consensus.timeout_precommit_delta_ms) == (1000, 500)
    assert c.consensus.create_empty_blocks is True
    assert c.storage.prune_keep_last == 0
    assert c.storage.sync_writes is True
    assert c.node.log_format == "auto"
    assert c.warnings() == []
    assert list(c.to_dict()) == ["node", "p2p", "api", "consensus", "mempool", "sync", "storage", "metrics"]


def test_render_default_round_trips_through_tomllib() -> None:
    text = render_default()
    data = tomllib.loads(text)
    assert data == Config().to_dict()
    assert Config.from_mapping(data, env={}) == Config()


def test_render_default_sets_moniker_and_validates_it() -> None:
    assert load(render_default("validator-1")).node.moniker == "validator-1"
    with pytest.raises(ConfigError) as info:
        render_default("")
    assert info.value.key == "node.moniker"


def test_every_key_is_commented_with_default_and_env_var() -> None:
    lines = render_default().splitlines()
    for section, keys in Config().to_dict().items():
        assert f"[{section}]" in lines
        for key in keys:
            start = lines.index(f"[{section}]")
            i = next(n for n in range(start, len(lines)) if lines[n].startswith(f"{key} = "))
            assert lines[i - 1].startswith("# Default: ")
            assert lines[i - 1].endswith(f"Env: EKKLESIA_{section.upper()}_{key.upper()}.")
            assert lines[i - 2].startswith("# ")  # the description


def test_render_round_trips_non_default_values() -> None:
    c = Config(
        node=NodeSection(moniker='Ἐκκλησία "main" \\ node', log_level="debug", log_format="json"),
        p2p=P2PSection(listen="/ip6/::/tcp/0", peers=(PEER, PEER2), min_peers=0, max_peers=1),
        api=ApiSection(listen="[::1]:8080", admin_enabled=True),
        metrics=MetricsSection(enabled=True, listen="127.0.0.1:26660"),
    )
    assert load(render(c)) == c


@given(st.text(max_size=40))
def test_toml_string_round_trips(s: str) -> None:
    assert tomllib.loads(f"v = {cfgmod.toml_string(s)}")["v"] == s


def test_docs_reference_is_up_to_date() -> None:
    doc = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert cfgmod.with_reference(doc) == doc, "regenerate with: python -m node.config docs/config.md"
    for section, keys in Config().to_dict().items():
        assert f"### [{section}]" in doc
        for key in keys:
            assert f"| `{key}` |" in doc


def test_consensus_section_matches_engine_defaults() -> None:
    engine = pytest.importorskip("protocol.consensus.config")
    engine_defaults = {f.name: f.default for f in dataclasses.fields(engine.ConsensusConfig)}
    for f in dataclasses.fields(cfgmod.ConsensusSection):
        assert engine_defaults.get(f.name) == f.default, f.name


def test_gossip_limit_matches_network_layer() -> None:
    p2p_config = pytest.importorskip("node.p2p.config")
    assert p2p_config.HARD_GOSSIP_LIMIT == cfgmod.HARD_GOSSIP_LIMIT


def test_sections_are_frozen_and_validated_on_construction() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().p2p.listen = "x"  # type: ignore[misc]
    with pytest.raises(ConfigError) as info:
        P2PSection(max_peers=0)
    assert info.value.key == "p2p.max_peers"
    with pytest.raises(ConfigError) as info:
        P2PSection(peers=[PEER])  # type: ignore[arg-type]
    assert "tuple of strings" in info.value.problem


# ----------------------------------------------------------------------------- loading


def test_partial_file_takes_defaults() -> None:
    c = load('[p2p]\nlisten = "/ip4/0.0.0.0/tcp/26656"\n')
    assert c.p2p.listen == "/ip4/0.0.0.0/tcp/26656"
    assert dataclasses.replace(c, p2p=Config().p2p) == Config()
    assert load("") == Config()


def test_load_from_home(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.config_dir.mkdir()
    home.config_file.write_text(render_default("n0"))
    assert Config.load(home, env={}).node.moniker == "n0"
    assert Config.load(str(tmp_path), env={}).node.moniker == "n0"


def test_missing_file_is_a_home_error(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match="ekklesia init"):
        Config.load(tmp_path, env={})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.config_dir.mkdir()
    home.config_file.write_text("[p2p\nlisten = 1\n")
    with pytest.raises(ConfigError) as info:
        Config.load(home, env={})
    assert info.value.key is None
    assert str(home.config_file) in str(info.value)
    assert "not valid TOML" in str(info.value)
    assert isinstance(info.value, NodeError)


# ----------------------------------------------------------------------------- environment


def test_env_overrides_file() -> None:
    env = {
        "EKKLESIA_P2P_LISTEN": "/ip4/0.0.0.0/tcp/36656",
        "EKKLESIA_P2P_MAX_PEERS": "1_000",
        "EKKLESIA_API_ADMIN_ENABLED": "yes",
        "EKKLESIA_CONSENSUS_CREATE_EMPTY_BLOCKS": "FALSE",
        "EKKLESIA_NODE_MONIKER": "from-env",
    }
    c = load('[p2p]\nlisten = "/ip4/127.0.0.1/tcp/1"\n[node]\nmoniker = "from-file"\n', env)
    assert c.p2p.listen == "/ip4/0.0.0.0/tcp/36656"
    assert c.p2p.max_peers == 1000
    assert c.api.admin_enabled is True
    assert c.consensus.create_empty_blocks is False
    assert c.node.moniker == "from-env"
    assert env_overrides(env) == {
        "api.admin_enabled": "EKKLESIA_API_ADMIN_ENABLED",
        "consensus.create_empty_blocks": "EKKLESIA_CONSENSUS_CREATE_EMPTY_BLOCKS",
        "node.moniker": "EKKLESIA_NODE_MONIKER",
        "p2p.listen": "EKKLESIA_P2P_LISTEN",
        "p2p.max_peers": "EKKLESIA_P2P_MAX_PEERS",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{PEER}, {PEER2}", (PEER, PEER2)),
        (f'["{PEER}"]', (PEER,)),
        ("", ()),
    ],
)
def test_env_list_syntax(value: str, expected: tuple[str, ...]) -> None:
    assert load("", {"EKKLESIA_P2P_PEERS": value}).p2p.peers == expected


def test_unrelated_ekklesia_variables_are_ignored() -> None:
    env = {"EKKLESIA_HOME": "/x", "EKKLESIA_PASSPHRASE": "pw", "EKKLESIA_DEBUG": "1", "PATH": "/bin"}
    assert load("", env) == Config()
    assert env_overrides(env) == {}


def test_unknown_env_key_is_an_error_naming_the_variable() -> None:
    err = problem_for("", {"EKKLESIA_P2P_LISTN": "/ip4/0.0.0.0/tcp/1"})
    assert err.key == "p2p.listn"
    assert err.problems[0].source == "EKKLESIA_P2P_LISTN"
    assert "did you mean 'listen'" in str(err)


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("EKKLESIA_P2P_MAX_PEERS", "lots", "expected an integer"),
        ("EKKLESIA_API_ADMIN_ENABLED", "maybe", "expected a boolean"),
        ("EKKLESIA_P2P_PEERS", "[1, 2]", "array of strings"),
        ("EKKLESIA_API_LISTEN", "bad", "not host:port"),
    ],
)
def test_bad_env_value_names_key_and_variable(var: str, value: str, fragment: str) -> None:
    err = problem_for("", {var: value})
    section, key = var.removeprefix("EKKLESIA_").lower().split("_", 1)
    assert err.key == f"{section}.{key}"
    assert fragment in err.problem
    assert err.problems[0].source == var
    assert var in str(err)


# ----------------------------------------------------------------------------- strictness and validation


def test_unknown_key_in_file_is_an_error_with_a_hint() -> None:
    err = problem_for('[p2p]\nlistn = "/ip4/0.0.0.0/tcp/1"\n')
    assert err.key == "p2p.listn"
    assert "unknown key" in err.problem
    assert "did you mean 'listen'" in err.problem
    assert err.problems[0].source == "config.toml"


def test_unknown_section_and_top_level_key() -> None:
    err = problem_for("[p2pp]\nlisten = 1\n")
    assert err.key == "p2pp"
    assert "did you mean 'p2p'" in err.problem
    err = problem_for('moniker = "x"\n')
    assert err.key == "moniker"
    assert "[node]" in err.problem
    err = problem_for("[p2p.extra]\nx = 1\n")
    assert err.key == "p2p.extra"


@pytest.mark.parametrize(
    ("toml", "key", "fragment"),
    [
        ('[p2p]\nlisten = "127.0.0.1:26656"', "p2p.listen", "not a multiaddr"),
        ('[p2p]\nlisten = "/ip4/1.2.3.4/udp/1"', "p2p.listen", "only /tcp"),
        ('[p2p]\nlisten = "/ip4/300.1.1.1/tcp/1"', "p2p.listen", "not an IPv4 address"),
        (f'[p2p]\nlisten = "{PEER}"', "p2p.listen", "must not contain /p2p/"),
        ('[p2p]\npeers = ["/ip4/1.2.3.4/tcp/26656"]', "p2p.peers", "must end with /p2p/"),
        (f'[p2p]\npeers = ["{PEER}", "{PEER}"]', "p2p.peers", "more than once"),
        ("[p2p]\nmax_peers = 0", "p2p.max_peers", "between 1 and 1000"),
        ('[p2p]\nmax_peers = "50"', "p2p.max_peers", "expected an integer, got a string"),
        ("[p2p]\nmax_peers = true", "p2p.max_peers", "expected an integer, got a boolean"),
        ("[p2p]\nmax_message_bytes = 2_000_000", "p2p.max_message_bytes", "between"),
        ("[p2p]\npeers = 5", "p2p.peers", "array of strings"),
        ('[node]\nlog_level = "verbose"', "node.log_level", "one of debug, info"),
        ('[node]\nlog_format = "xml"', "node.log_format", "one of auto, json, console"),
        ('[node]\nmoniker = "  "', "node.moniker", "empty"),
        ('[node]\nmoniker = "a\\u0007b"', "node.moniker", "printable"),
        ('[api]\nlisten = "localhost"', "api.listen", "not host:port"),
        ('[api]\nlisten = "::1:80"', "api.listen", "brackets"),
        ('[api]\nlisten = "127.0.0.1:99999"', "api.listen", "bad TCP port"),
        ("[api]\nadmin_enabled = 1", "api.admin_enabled", "expected a boolean"),
        ("[consensus]\ntimeout_propose_ms = 0", "consensus.timeout_propose_ms", "between 1 and"),
        ("[consensus]\ntimeout_prevote_delta_ms = -1", "consensus.timeout_prevote_delta_ms", "between 0 and"),
        ("[consensus]\ntimeout_precommit_ms = 1.5", "consensus.timeout_precommit_ms", "got a float"),
        ("[mempool]\nbatch_max_bytes = 1000", "mempool.batch_max_bytes", "between"),
        ("[sync]\nmax_response_bytes = 1024", "sync.max_response_bytes", "between"),
        ("[storage]\nprune_keep_last = -5", "storage.prune_keep_last", "at least 0"),
        ('[metrics]\nlisten = "nope"', "metrics.listen", "not host:port"),
        ("p2p = 3", "p2p", "must be a table"),
    ],
)
def test_invalid_value_names_the_key(toml: str, key: str, fragment: str) -> None:
    err = problem_for(toml + "\n")
    assert err.key == key
    assert fragment in err.problem, err.problem
    assert str(err).startswith(f"invalid configuration: {key}: ")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[p2p]\nmin_peers = 10\nmax_peers = 5", "p2p.min_peers"),
        ("[p2p]\nmesh_degree = 5", "p2p.mesh_degree"),
        ("[p2p]\nmesh_degree_low = 3\nmesh_degree = 2\nmesh_degree_high = 2", "p2p.mesh_degree"),
        ("[mempool]\nmax_txs = 10\nmax_per_sender = 11", "mempool.max_per_sender"),
        ("[p2p]\nmax_message_bytes = 100_000\n[mempool]\nbatch_max_bytes = 200_000", "mempool.batch_max_bytes"),
        ('[metrics]\nenabled = true\nlisten = "127.0.0.1:26657"', "metrics.listen"),
    ],
)
def test_cross_key_checks(toml: str, key: str) -> None:
    assert problem_for(toml + "\n").key == key


def test_all_problems_are_reported_at_once() -> None:
    err = problem_for('[p2p]\nlistn = 1\nmax_peers = 0\n[api]\nlisten = "x"\n', {"EKKLESIA_NODE_LOG_LEVEL": "loud"})
    assert set(err.keys) == {"p2p.listn", "p2p.max_peers", "api.listen", "node.log_level"}
    sources = {p.key: p.source for p in err.problems}
    assert sources["p2p.max_peers"] == "config.toml"
    assert sources["node.log_level"] == "EKKLESIA_NODE_LOG_LEVEL"
    assert "\n" not in str(err)


def test_warnings_for_risky_settings() -> None:
    c = load('[api]\nlisten = "0.0.0.0:26657"\nadmin_enabled = true\n[storage]\nsync_writes = false\n')
    warnings = c.warnings()
    assert any("api.admin_enabled" in w for w in warnings)
    assert any("storage.sync_writes" in w for w in warnings)
    assert load('[api]\nlisten = "[::1]:26657"\nadmin_enabled = true\n').warnings() == []


@pytest.mark.parametrize(
    "addr",
    [
        "/ip4/127.0.0.1/tcp/0",
        "/ip6/::1/tcp/26656",
        "/dns4/node-1.example.org/tcp/26656",
        "/dns/localhost/tcp/1",
    ],
)
def test_valid_listen_multiaddrs(addr: str) -> None:
    assert multiaddr_problem(addr, peer_id=False) is None


@pytest.mark.parametrize("value", ["127.0.0.1:26657", "[::1]:0", "localhost:80", "node.example.org:443"])
def test_valid_host_ports(value: str) -> None:
    assert host_port_problem(value) is None


# ----------------------------------------------------------------------------- home layout


def test_home_layout(tmp_path: Path) -> None:
    h = Home(tmp_path)
    assert h.config_file == tmp_path / "config" / "config.toml"
    assert h.genesis_file == tmp_path / "config" / "genesis.json"
    assert h.node_key_file == tmp_path / "config" / "node_key"
    assert h.validator_key_file == tmp_path / "config" / "validator_key.json"
    assert h.data_dir == tmp_path / "data"
    assert h.keys_dir == tmp_path / "keys"
    assert not h.is_initialised()
    h.create_dirs()
    for d in (h.root, h.config_dir, h.data_dir, h.keys_dir):
        assert d.stat().st_mode & 0o777 == 0o700


def test_default_home(tmp_path: Path) -> None:
    assert default_home({"EKKLESIA_HOME": str(tmp_path)}) == tmp_path
    assert default_home({}) == Path("~/.ekklesia").expanduser()
    assert default_home({"EKKLESIA_HOME": ""}) == Path("~/.ekklesia").expanduser()
    assert Home.resolve("rel", {}).root.is_absolute()
    assert Home.resolve(None, {"EKKLESIA_HOME": str(tmp_path)}).root == tmp_path


def test_create_dirs_makes_missing_parents_private(tmp_path: Path) -> None:
    h = Home(tmp_path / "a" / "b")
    h.create_dirs()
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    (tmp_path / "c").mkdir()
    (tmp_path / "c").chmod(0o755)
    Home(tmp_path / "c").create_dirs()  # an existing directory keeps its mode
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o755


def test_verify_workers_default_to_the_spare_cores() -> None:
    from node.config import NodeSection, spare_cores

    assert [spare_cores(c, 1) for c in (None, 1, 2, 3, 8, 64)] == [0, 0, 1, 2, 4, 4]
    assert [spare_cores(2, n) for n in (1, 2, 4, 10)] == [1, 0, 0, 0]  # a testnet on 2 cores
    assert spare_cores(16, 4) == 3
    assert NodeSection().verify_worker_count(8) == 4
    assert NodeSection(verify_workers=0).verify_worker_count(8) == 0
    assert NodeSection(verify_workers=6).verify_worker_count(2) == 6


def test_testnet_init_sizes_workers_for_its_topology(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from node.config import Config, P2PSection, spare_cores
    from node.home import Home
    from node.testnet import init_testnet

    for n in (1, 4):
        out = tmp_path / f"tn{n}"
        init_testnet(out, n, base_port=30000 + 100 * n, genesis_time_ms=0)
        cfg = Config.load(Home(out / "node0"), env={})
        assert cfg.p2p.max_message_bytes == P2PSection().max_message_bytes
        assert cfg.node.verify_workers == spare_cores(os.cpu_count(), n)
