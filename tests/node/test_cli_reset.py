"""`ekklesia unsafe-reset`: the CLI around node.storage.reset, and the whole remedy with
real processes — a validator whose store is damaged is refused by `ekklesia start`
with the remedy, is reset, keeps its sign-state, re-syncs from its peer and signs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from test_runtime_inprocess import free_base_port
from test_storage import build

import node.cli as cli
from node.storage import LevelDBBackend, NodeStore
from node.storage import layout as L
from node.storage.records import ChainHead
from node.testnet import init_testnet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("EKKLESIA_"):
            monkeypatch.delenv(var)
    monkeypatch.setattr(cli, "_interactive", lambda: False)


def run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=True)
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def make_store(home: Path, sign_state: bytes = b"signed height 4") -> Path:
    """A home whose data/store holds 3 blocks, a sign-state, and garbage at the head block."""
    path = home / "data" / "store"
    path.parent.mkdir(parents=True)
    store = NodeStore.open_leveldb(path)
    build(store, 3)
    store.save_sign_state(sign_state)
    store.close()
    backend = LevelDBBackend(path)
    backend.write([(L.block_key(3), b"\x93garbage")], sync=True)
    backend.close()
    return path


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------- the command


def test_reset_moves_the_store_aside_and_keeps_the_sign_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = make_store(home)
    out = json.loads(run("unsafe-reset", "--home", str(home), "--yes", "--json").stdout)
    assert out["reset"] is True and out["sign_state_kept"] is True
    assert out["store"] == str(store)
    moved = Path(out["moved_to"])
    assert moved.parent == store.parent and moved.name.startswith("store.reset-")
    assert entries(store.parent) == sorted(["store", moved.name])
    old = LevelDBBackend(moved)  # the old store is all there, damage included
    assert old.get(L.block_key(3)) == b"\x93garbage" and old.get(L.block_key(2)) is not None
    old.close()
    fresh = NodeStore.open_leveldb(store)  # opens: new and uninitialised
    assert not fresh.initialized and fresh.sign_state() == b"signed height 4"
    fresh.close()


def test_text_output_says_where_the_data_went_and_what_happens_next(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_store(home)
    result = run("unsafe-reset", "--home", str(home), "--yes")
    assert "moved the old store to " + str(home / "data" / "store.reset-") in result.stdout
    assert "with the validator sign-state carried over" in result.stdout
    assert "re-sync the chain from its peers" in result.stdout


def test_home_from_the_environment(tmp_path: Path) -> None:
    home = tmp_path / "envhome"
    make_store(home)
    out = json.loads(run("unsafe-reset", "--yes", "--json", env={"EKKLESIA_HOME": str(home)}).stdout)
    assert out["reset"] is True and Path(out["moved_to"]).parent == home / "data"


def test_without_yes_it_only_describes_the_reset_and_exits_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = make_store(home)
    before = entries(store)
    result = run("unsafe-reset", "--home", str(home), code=2)
    assert "store.reset-" in result.stderr and "pass --yes" in result.stderr
    assert entries(store.parent) == ["store"] and entries(store) == before


def test_refused_while_a_node_holds_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = make_store(home)
    backend = LevelDBBackend(store)  # what a running node holds
    try:
        for args in (("--yes",), ()):  # refused before any prompt, too
            result = run("unsafe-reset", "--home", str(home), *args, code=1)
            assert result.stderr.startswith("error: ") and "in use" in result.stderr
            assert "stop the node" in result.stderr
            assert entries(store.parent) == ["store"]
    finally:
        backend.close()


def test_a_missing_home_is_an_error_and_a_missing_store_is_nothing_to_do(tmp_path: Path) -> None:
    result = run("unsafe-reset", "--home", str(tmp_path / "nowhere"), "--yes", code=1)
    assert "no node home" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run("unsafe-reset", "--home", str(tmp_path / "empty"), "--yes")
    assert "nothing to reset" in result.stdout
    out = json.loads(run("unsafe-reset", "--home", str(tmp_path / "empty"), "--yes", "--json").stdout)
    assert out["reset"] is False and out["moved_to"] is None


def test_an_unreadable_sign_state_is_dropped_with_a_warning_for_a_validator(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = make_store(home)
    (home / "config").mkdir()
    (home / "config" / "validator_key.json").write_text("{}")  # only its presence matters here
    (log,) = store.glob("*.log")
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x20  # damage LevelDB's log: nothing in it can be trusted
    log.write_bytes(bytes(data))
    out = json.loads(run("unsafe-reset", "--home", str(home), "--yes", "--json").stdout)
    assert out["reset"] is True and out["sign_state_kept"] is False
    assert any("may sign again" in w for w in out["warnings"])
    assert (Path(out["moved_to"]) / log.name).read_bytes() == bytes(data)  # moved untouched


# ---------------------------------------------------------------- real processes


class Proc:
    def __init__(self, home: Path, api_port: int) -> None:
        self.home, self.api = home, f"http://127.0.0.1:{api_port}"
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.home / "node.log").open("ab")
        self.p = subprocess.Popen([sys.executable, "-m", "node", "start", "--home", str(self.home)],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=node_env())

    def stop(self) -> int | str:
        if self.p is None:
            return 0
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return "hung"

    def get(self, path: str) -> Any:
        try:
            return httpx.get(f"{self.api}{path}", timeout=1.0).json()
        except (httpx.HTTPError, ValueError):
            return None

    def height(self) -> int:
        s = self.get("/v1/status")
        return s["height"] if s else -1


def node_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKKLESIA_")}
    return {**env, "EKKLESIA_NODE_LOG_FORMAT": "json", "EKKLESIA_NODE_LOG_LEVEL": "info"}


def ekklesia(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, cwd=ROOT,
                          env=node_env(), timeout=60)


def until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def corrupt_head_block(store: Path) -> int:
    """Garbage in place of the head block: LevelDB reads fine, the startup check refuses."""
    backend = LevelDBBackend(store)
    try:
        raw = backend.get(L.META_HEAD)
        assert raw is not None
        height = ChainHead.decode(raw).height
        backend.write([(L.block_key(height), b"\x93garbage")], sync=True)
    finally:
        backend.close()
    return height


def test_start_refuses_a_damaged_store_with_the_remedy_and_starts_over_after_a_reset(tmp_path: Path) -> None:
    (node,) = init_testnet(tmp_path / "tn", 1, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    store = node.home / "data" / "store"
    store.parent.mkdir(exist_ok=True)
    backend = LevelDBBackend(store)
    backend.write([(L.block_key(1), b"not written by ekklesia")], sync=True)
    backend.close()
    refused = ekklesia("start", "--home", str(node.home))
    assert refused.returncode == 1, refused
    (line,) = [ln for ln in refused.stderr.splitlines() if ln.startswith("error: ")]  # besides the JSON log
    assert "Traceback" not in refused.stderr and "ExceptionGroup" not in line
    assert "no schema record" in line and "run `ekklesia unsafe-reset --home <home>`" in line
    reset = ekklesia("unsafe-reset", "--home", str(node.home), "--yes")
    assert reset.returncode == 0, reset
    assert "moved the old store to" in reset.stdout and "without a sign-state" in reset.stdout
    fresh = NodeStore.open_leveldb(store)
    assert not fresh.initialized and fresh.sign_state() is None
    fresh.close()


@pytest.mark.slow
def test_a_reset_validator_is_refused_then_resyncs_from_its_peer_and_signs_again(tmp_path: Path) -> None:
    """Two validators of equal power: the chain needs both, so it halts while node1 is
    down and moves on only once node1 has re-synced every block from node0 and signs."""
    nodes = init_testnet(tmp_path / "tn", 2, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    procs = [Proc(n.home, n.api_port) for n in nodes]
    store = nodes[1].home / "data" / "store"
    try:
        for p in procs:
            p.start()
        until(lambda: min(p.height() for p in procs) >= 3, 40, "both validators to commit 3 blocks")
        assert procs[1].stop() == 0
        head = corrupt_head_block(store)
        sign_state = LevelDBBackend(store)
        kept = sign_state.get(L.SIGN_STATE)
        sign_state.close()
        assert kept is not None

        refused = ekklesia("start", "--home", str(nodes[1].home))
        assert refused.returncode == 1, refused
        (line,) = [ln for ln in refused.stderr.splitlines() if ln.startswith("error: ")]
        assert f"block {head}" in line and "run `ekklesia unsafe-reset --home" in line

        reset = ekklesia("unsafe-reset", "--home", str(nodes[1].home), "--yes", "--json")
        assert reset.returncode == 0, reset
        out = json.loads(reset.stdout)
        assert out["sign_state_kept"] is True and out["warnings"] == []
        fresh = NodeStore.open_leveldb(store)
        assert not fresh.initialized and fresh.sign_state() == kept
        fresh.close()

        procs[1].start()
        # Every new block needs node1's precommit (two equal validators): height head + 2
        # means node1 re-synced 1..head from node0, then signed again with its sign-state.
        until(lambda: procs[1].height() >= head + 2, 40, "the reset node to re-sync and the chain to go on")
        top = min(p.height() for p in procs)
        for h in range(1, top + 1):
            blocks = [p.get(f"/v1/blocks/{h}") for p in procs]
            assert blocks[0]["hash"] == blocks[1]["hash"], f"nodes disagree at height {h}"
            assert blocks[0]["evidence"] == [], f"a validator was accused at height {h}"
    finally:
        codes = [p.stop() for p in procs]
    assert codes == [0, 0], f"exit codes after SIGTERM: {codes}"
