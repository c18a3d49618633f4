"""The CLI against real nodes (LevelDB, libp2p on 127.0.0.1) in one trio process: a
one-validator testnet, and a full node that joins it with `ekklesia init --genesis
--peer`, syncs, follows, relays a transaction, and serves proofs that verify."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
from click.testing import CliRunner, Result
from test_runtime_inprocess import free_base_port, wait_for

import node.cli as cli
from node.config import Config
from node.home import Home
from node.log import configure
from node.runtime import Node
from node.testnet import init_testnet
from protocol import crypto

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in list(os.environ):
        if var.startswith("EKKLESIA_"):
            monkeypatch.delenv(var)
    monkeypatch.setattr(cli, "_interactive", lambda: False)
    # The nodes log from the trio thread while CliRunner has swapped sys.stdout in a
    # worker thread: send the logs elsewhere so the CLI's output stays its own.
    with open(os.devnull, "w") as devnull:
        configure("warning", "json", stream=devnull)
        yield
    structlog.reset_defaults()


async def ekklesia(*args: str, code: int = 0) -> Result:
    def invoke() -> Result:
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=True)

    result = await trio.to_thread.run_sync(invoke)
    assert "Traceback" not in result.output
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    return result


async def ekklesia_json(*args: str, code: int = 0) -> Any:
    return json.loads((await ekklesia(*args, "--json", code=code)).stdout)


async def test_cli_on_a_real_chain_and_a_joining_full_node(tmp_path: Path) -> None:
    out = tmp_path / "tn"
    init_testnet(out, 1, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    meta = json.loads((out / "testnet.json").read_text())["nodes"][0]
    v_home = Home(out / "node0")
    validator = Node(v_home, Config.load(v_home, env={"EKKLESIA_API_LISTEN": "127.0.0.1:0"}))
    keys = ("--home", str(out))  # the testnet's funded demo keys are in <out>/keys

    async with trio.open_nursery() as nursery:
        await nursery.start(validator.run)
        v_api = f"http://{validator.api_address}"
        await wait_for(lambda: validator.height >= 1, 30)

        # transactions through the CLI, against the validator
        t = await ekklesia_json("tx", "transfer", "bob", "1234", "--memo", "hi", "--from", "alice", *keys,
                                "--node", v_api)
        assert t["status"] == "committed" and t["code_name"] == "ok"
        bob = await ekklesia_json("query", "account", "bob", *keys, "--node", v_api)
        assert bob["balance"] == 1_000_000 + 1234
        deed = tmp_path / "deed.txt"
        deed.write_bytes(b"a real deed")
        n = await ekklesia_json("tx", "notarise", str(deed), "--from", "bob", *keys, "--node", v_api)
        assert n["code_name"] == "ok" and n["doc_hash"] == crypto.sha256(b"a real deed").hex()
        verified = await ekklesia_json("query", "notary", str(deed), "--verify", "--node", v_api)
        assert verified["verified"] is True
        failed = await ekklesia("tx", "transfer", "bob", str(10**15), "--from", "carol", *keys, "--node", v_api,
                                code=1)
        assert "insufficient funds" in failed.stdout  # refused at admission (issue #9)

        # a full node joins: genesis and bootstrap peer through `ekklesia init`
        j_root = tmp_path / "joiner"
        peer = f"/ip4/127.0.0.1/tcp/{meta['p2p_port']}/p2p/{meta['peer_id']}"
        init = await ekklesia_json("init", "--home", str(j_root), "--moniker", "joiner",
                                   "--genesis", str(out / "genesis.json"), "--peer", peer)
        assert init["genesis_written"] is True
        j_home = Home(j_root)
        joiner = Node(j_home, Config.load(j_home, env={"EKKLESIA_API_LISTEN": "127.0.0.1:0",
                                                        "EKKLESIA_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0"}))
        await nursery.start(joiner.run)
        j_api = f"http://{joiner.api_address}"
        target = validator.height
        await wait_for(lambda: joiner.height >= target, 30)
        assert joiner.block(n["height"])[0].hash == validator.block(n["height"])[0].hash
        status = await ekklesia_json("status", "--node", j_api)
        assert status["chain_id"] == validator.chain_id and status["peers"] >= 1

        # it relays a tx to the validator and follows the chain past it
        relayed = await ekklesia_json("tx", "transfer", "alice", "5", "--from", "dave", *keys, "--node", j_api)
        assert relayed["status"] == "committed" and relayed["code_name"] == "ok"
        await wait_for(lambda: validator.height >= relayed["height"], 30)
        assert validator.tx(bytes.fromhex(relayed["hash"]))[0].status == "committed"

        # proofs from the full node, checked against the validator and against genesis
        cross = await ekklesia_json("query", "notary", str(deed), "--verify", "--node", j_api,
                                    "--trusted-node", v_api)
        anchored = await ekklesia_json("query", "notary", str(deed), "--verify", "--node", j_api,
                                       "--genesis", str(out / "genesis.json"))
        assert cross["verified"] is True and anchored["verified"] is True

        joiner.stop()
        validator.stop()
