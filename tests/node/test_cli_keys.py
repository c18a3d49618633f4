"""The `ekklesia` CLI for init, config and keys, through click's CliRunner."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import node.cli as cli
from node.config import Config
from node.home import Home
from node.keys import FAST_INSECURE_KDF, Keystore, load_validator_key
from protocol.crypto import Keypair, address_hex

SEED = bytes(range(32))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("EKKLESIA_"):
            monkeypatch.delenv(var)
    monkeypatch.setattr(cli, "KEYSTORE_KDF", FAST_INSECURE_KDF)
    monkeypatch.setattr(cli, "_interactive", lambda: False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(cli.main, list(args), input=input, env=env, catch_exceptions=True)
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def run_json(*args: str, **kw: Any) -> Any:
    return json.loads(run(*args, "--json", **kw).stdout)


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# ----------------------------------------------------------------------------- init


def test_init_creates_private_home(home: Path) -> None:
    out = run_json("init", "--home", str(home), "--moniker", "n0")
    h = Home(home)
    for d in (h.root, h.config_dir, h.data_dir, h.keys_dir):
        assert d.stat().st_mode & 0o777 == 0o700, d
    for f in (h.config_file, h.validator_key_file):
        assert f.stat().st_mode & 0o777 == 0o600, f
    assert not h.node_key_file.exists() and not h.genesis_file.exists()
    assert out["genesis_written"] is False
    assert out["validator_key_created"] is True
    assert out["node_key_file"] == str(h.node_key_file)
    key = load_validator_key(h.validator_key_file)
    assert out["validator_address"] == key.address_hex
    assert out["validator_pubkey"] == key.pubkey_hex
    cfg = Config.load(h, env={})
    assert cfg.node.moniker == "n0"
    assert cfg.p2p == Config().p2p
    assert "# Default:" in h.config_file.read_text()


def test_init_refuses_an_initialised_home(home: Path) -> None:
    run("init", "--home", str(home))
    address = load_validator_key(Home(home).validator_key_file).address_hex
    result = run("init", "--home", str(home), code=1)
    line = one_error_line(result)
    assert "already initialised" in line and "--force" in line
    assert load_validator_key(Home(home).validator_key_file).address_hex == address


def test_init_force_rewrites_config_and_keeps_the_key(home: Path) -> None:
    run("init", "--home", str(home), "--moniker", "old")
    h = Home(home)
    address = load_validator_key(h.validator_key_file).address_hex
    out = run_json("init", "--home", str(home), "--force", "--moniker", "new")
    assert out["validator_key_created"] is False
    assert out["validator_address"] == address
    assert Config.load(h, env={}).node.moniker == "new"
    backup = Path(out["config_backup"])
    assert tomllib.loads(backup.read_text())["node"]["moniker"] == "old"
    again = run_json("init", "--home", str(home), "--force")
    assert Path(again["config_backup"]) != backup and backup.exists()


def test_init_force_refuses_an_insecure_existing_key(home: Path) -> None:
    run("init", "--home", str(home))
    h = Home(home)
    before = h.config_file.read_text()
    h.validator_key_file.chmod(0o644)
    assert "chmod 600" in one_error_line(run("init", "--home", str(home), "--force", code=1))
    assert h.config_file.read_text() == before  # nothing changed


def test_init_uses_ekklesia_home_and_validates_moniker(home: Path) -> None:
    run("init", env={"EKKLESIA_HOME": str(home)})
    assert Home(home).config_file.exists()
    result = run("init", "--home", str(home / "other"), "--moniker", "", code=2)
    assert "moniker" in result.stderr
    assert not (home / "other").exists()


def test_show_validator(home: Path) -> None:
    init = run_json("init", "--home", str(home))
    out = run_json("show-validator", "--home", str(home))
    assert (out["address"], out["pubkey"]) == (init["validator_address"], init["validator_pubkey"])
    run("show-validator", "--home", str(home / "nothing"), code=1)


# ----------------------------------------------------------------------------- config


def test_config_show_reflects_env_overrides(home: Path) -> None:
    run("init", "--home", str(home))
    env = {"EKKLESIA_P2P_LISTEN": "/ip4/0.0.0.0/tcp/26656"}
    out = run_json("config", "show", "--home", str(home), env=env)
    assert out["config"]["p2p"]["listen"] == "/ip4/0.0.0.0/tcp/26656"
    assert out["env_overrides"] == {"p2p.listen": "EKKLESIA_P2P_LISTEN"}
    text = run("config", "show", "--home", str(home), env=env).stdout
    assert "overridden by EKKLESIA_P2P_LISTEN" in text
    assert tomllib.loads(text)["p2p"]["listen"] == "/ip4/0.0.0.0/tcp/26656"


def test_config_validate(home: Path) -> None:
    run("init", "--home", str(home))
    assert "config OK" in run("config", "validate", "--home", str(home)).stdout
    assert run_json("config", "validate", "--home", str(home))["valid"] is True

    env = {"EKKLESIA_API_LISTEN": "nowhere", "EKKLESIA_P2P_LISTN": "x"}
    result = run("config", "validate", "--home", str(home), env=env, code=1)
    assert "api.listen" in result.stderr and "EKKLESIA_API_LISTEN" in result.stderr
    assert "p2p.listn" in result.stderr and "did you mean 'listen'" in result.stderr
    out = json.loads(run("config", "validate", "--home", str(home), "--json", env=env, code=1).stdout)
    assert out["valid"] is False
    assert {e["key"] for e in out["errors"]} == {"api.listen", "p2p.listn"}

    warn = run("config", "validate", "--home", str(home), env={"EKKLESIA_STORAGE_SYNC_WRITES": "false"})
    assert "warning: storage.sync_writes" in warn.stderr


def test_config_errors_are_one_line(home: Path) -> None:
    assert "ekklesia init" in one_error_line(run("config", "show", "--home", str(home), code=1))
    run("init", "--home", str(home))
    line = one_error_line(run("config", "show", "--home", str(home), env={"EKKLESIA_P2P_MAX_PEERS": "x"}, code=1))
    assert "p2p.max_peers" in line
    Home(home).config_file.write_text("[p2p\n")
    assert "not valid TOML" in one_error_line(run("config", "show", "--home", str(home), code=1))


# ----------------------------------------------------------------------------- keys


def test_keys_unencrypted_lifecycle(home: Path) -> None:
    h = ["--home", str(home)]
    added = run_json("keys", "add", "alice", "--no-passphrase", *h)
    assert added["encrypted"] is False
    assert Path(added["path"]).stat().st_mode & 0o777 == 0o600
    assert (home / "keys").stat().st_mode & 0o777 == 0o700
    run_json("keys", "add", "bob", "--no-passphrase", *h)
    listed = run_json("keys", "list", *h)
    assert [k["name"] for k in listed] == ["alice", "bob"]
    assert run_json("keys", "show", "alice", *h) == added
    text = run("keys", "list", *h).stdout
    assert "alice" in text and added["address"] in text

    exported = run_json("keys", "export", "alice", "--unsafe-export", *h)
    kp = Keypair(bytes.fromhex(exported["seed"]))
    assert kp.public_key.hex() == added["pubkey"]
    plain = run("keys", "export", "alice", "--unsafe-export", *h)
    assert plain.stdout.strip() == exported["seed"]
    assert "secret seed" in plain.stderr

    assert run_json("keys", "delete", "alice", "--yes", *h)["deleted"]["name"] == "alice"
    assert [k["name"] for k in run_json("keys", "list", *h)] == ["bob"]


def test_keys_export_needs_the_flag(home: Path) -> None:
    run("keys", "add", "alice", "--no-passphrase", "--home", str(home))
    result = run("keys", "export", "alice", "--home", str(home), code=2)
    assert "--unsafe-export" in result.stderr
    assert result.stdout == ""


def test_keys_with_passphrase_file_and_env(home: Path, tmp_path: Path) -> None:
    h = ["--home", str(home)]
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret\n")
    bad.write_text("nope\n")
    added = run_json("keys", "add", "alice", "--passphrase-file", str(good), *h)
    assert added["encrypted"] is True
    assert run_json("keys", "show", "alice", *h)["encrypted"] is True  # no passphrase needed

    result = run("keys", "export", "alice", "--unsafe-export", "--passphrase-file", str(bad), *h, code=1)
    assert one_error_line(result) == "error: wrong passphrase for key 'alice'"
    result = run("keys", "export", "alice", "--unsafe-export", *h, code=1)
    assert "EKKLESIA_PASSPHRASE" in one_error_line(result)

    seed = run_json("keys", "export", "alice", "--unsafe-export", "--passphrase-file", str(good), *h)["seed"]
    assert address_hex(Keypair(bytes.fromhex(seed)).public_key) == added["address"]
    env = {"EKKLESIA_PASSPHRASE": "s3cret"}
    assert run_json("keys", "export", "alice", "--unsafe-export", *h, env=env)["seed"] == seed
    wrong = run("keys", "export", "alice", "--unsafe-export", *h, env={"EKKLESIA_PASSPHRASE": "x"}, code=1)
    assert "wrong passphrase" in one_error_line(wrong)

    assert run_json("keys", "add", "bob", *h, env=env)["encrypted"] is True
    assert Keystore(home / "keys").seed("bob", "s3cret")


def test_keys_add_without_passphrase_source_is_a_usage_error(home: Path) -> None:
    result = run("keys", "add", "alice", "--home", str(home), code=2)
    assert "--no-passphrase" in result.stderr
    assert not (home / "keys" / "alice.json").exists()
    run("keys", "add", "a", "--no-passphrase", "--passphrase-file", __file__, "--home", str(home), code=2)


def test_keys_interactive_prompts(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    h = ["--home", str(home)]
    added = run_json("keys", "add", "alice", *h, input="pw\npw\n")
    assert added["encrypted"] is True
    assert run_json("keys", "export", "alice", "--unsafe-export", *h, input="pw\n")["seed"]
    wrong = run("keys", "export", "alice", "--unsafe-export", *h, input="nope\n", code=1)
    assert wrong.stderr.splitlines()[-1] == "error: wrong passphrase for key 'alice'"  # after the prompt
    plain = run_json("keys", "add", "bob", *h, input="\n\n")  # empty: unencrypted
    assert plain["encrypted"] is False
    run("keys", "delete", "bob", *h, input="n\n", code=1)  # declined: aborted
    assert run_json("keys", "delete", "bob", *h, input="y\n")["deleted"]["name"] == "bob"
    recovered = run_json("keys", "add", "carol", "--recover", *h, input=f"{SEED.hex()}\n\n\n")
    assert recovered["address"] == address_hex(Keypair(SEED).public_key)


def test_keys_recover_from_stdin(home: Path) -> None:
    h = ["--home", str(home)]
    out = run_json("keys", "add", "alice", "--recover", "--no-passphrase", *h, input=f"0x{SEED.hex()}\n")
    assert out["pubkey"] == Keypair(SEED).public_key.hex()
    bad = run("keys", "add", "bob", "--recover", "--no-passphrase", *h, input="1234\n", code=1)
    assert "64 hexadecimal digits" in one_error_line(bad)
    empty = run("keys", "add", "bob", "--recover", "--no-passphrase", *h, input="", code=1)
    assert "stdin" in one_error_line(empty)


@pytest.mark.parametrize("name", ["../evil", ".hidden", "a/b", "x" * 65])
def test_keys_bad_names(home: Path, name: str) -> None:
    for args in (["add", name, "--no-passphrase"], ["show", name], ["delete", name, "--yes"]):
        line = one_error_line(run("keys", *args, "--home", str(home), code=1))
        assert "invalid key name" in line
    assert not (home.parent / "evil.json").exists()


def test_keys_errors(home: Path) -> None:
    h = ["--home", str(home)]
    assert "no key named 'ghost'" in one_error_line(run("keys", "show", "ghost", *h, code=1))
    run("keys", "add", "alice", "--no-passphrase", *h)
    assert "already exists" in one_error_line(run("keys", "add", "alice", "--no-passphrase", *h, code=1))
    assert "--yes" in run("keys", "delete", "alice", *h, code=2).stderr
    (home / "keys" / "alice.json").chmod(0o644)
    line = one_error_line(run("keys", "show", "alice", *h, code=1))
    assert "chmod 600" in line and str(home / "keys" / "alice.json") in line
    assert "chmod 600" in one_error_line(run("keys", "list", "--json", *h, code=1))


def test_keys_list_empty(home: Path) -> None:
    assert run_json("keys", "list", "--home", str(home)) == []
    assert "no keys" in run("keys", "list", "--home", str(home)).stderr


# ----------------------------------------------------------------------------- generic behaviour


def test_unexpected_error_is_one_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Keystore) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(Keystore, "list_keys", boom)
    line = one_error_line(run("keys", "list", "--home", str(home), code=1))
    assert "internal error: RuntimeError: kaboom" in line and "EKKLESIA_DEBUG" in line


def test_os_error_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_error_line(run("init", "--home", str(blocker / "sub"), code=1))
    assert str(blocker) in line


def test_usage_errors_exit_2() -> None:
    run("keys", "frobnicate", code=2)
    run("keys", "show", code=2)
    run("init", "--bogus", code=2)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["init"],
        ["show-validator"],
        ["version"],
        ["config"],
        ["config", "show"],
        ["config", "validate"],
        ["keys"],
        ["keys", "add"],
        ["keys", "list"],
        ["keys", "show"],
        ["keys", "export"],
        ["keys", "delete"],
    ],
)
def test_help_has_examples(command: list[str]) -> None:
    out = run(*command, "--help").stdout
    assert "Examples:" in out
    is_group = command in ([], ["config"], ["keys"])
    if not is_group:
        assert "--json" in out
        assert "--home" in out or command == ["version"]


def test_version_json() -> None:
    assert "ekklesia" in run_json("version")
