"""CLI commands that run nodes: `start` and `testnet init|run`."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click
import trio

from node import gc_tuning
from node.cli import _emit_json, _Group, _home_option, _json_option, main
from node.config import Config
from node.home import Home
from node.log import configure

START_EPILOG = """\b
Examples:
  ekklesia start                          run the node in ~/.ekklesia
  ekklesia start --home testnet/node0     run one node of a local testnet
\b
Ctrl-C (SIGINT) or SIGTERM stops the node cleanly; a second signal forces exit.
"""


@main.command(epilog=START_EPILOG)
@_home_option
def start(home: Path | None) -> None:
    """Run the node daemon in the foreground."""
    from node.runtime import load_node  # imports libp2p (slow): only when a node runs

    gc_tuning.configure()
    h = Home.resolve(home)
    config = Config.load(h)
    configure(config.node.log_level, config.node.log_format)
    node = load_node(h.root, config)
    trio.run(_run_until_signalled, node)


async def _run_until_signalled(node: object) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)  # type: ignore[attr-defined]
            frozen = gc_tuning.freeze_startup()
            node.log.debug("startup objects frozen", objects=frozen)  # type: ignore[attr-defined]

            async def watch() -> None:
                count = 0
                async for _ in signals:
                    count += 1
                    if count == 1:
                        node.stop()  # type: ignore[attr-defined]
                    else:
                        os._exit(130)  # the operator insists: leave now

            nursery.start_soon(watch)
            await node.stopped.wait()  # type: ignore[attr-defined]
            nursery.cancel_scope.cancel()


@main.group(cls=_Group)
def testnet() -> None:
    """Create and run a local multi-validator testnet on 127.0.0.1."""


TESTNET_EPILOG = """\b
Examples:
  ekklesia testnet init --validators 4 --out testnet
  ekklesia testnet run testnet
"""


@testnet.command("init", epilog=TESTNET_EPILOG)
@click.option("--validators", "-v", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("testnet"), show_default=True)
@click.option("--base-port", type=click.IntRange(1024, 65000), default=26656, show_default=True,
              help="node i listens for p2p on BASE+10i and serves its API on BASE+10i+1")
@click.option("--chain-id", default="ekklesia-local", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing testnet in --out.")
@_json_option
def testnet_init(validators: int, out: Path, base_port: int, chain_id: str, force: bool, as_json: bool) -> None:
    """Generate node homes, keys, a shared genesis and funded demo accounts."""
    from node.testnet import init_testnet

    nodes = init_testnet(out, validators, base_port=base_port, chain_id=chain_id,
                         genesis_time_ms=time.time_ns() // 1_000_000, force=force)
    if as_json:
        _emit_json({"out": str(out), "nodes": [{"name": n.name, "home": str(n.home), "p2p_port": n.p2p_port,
                                                "api_port": n.api_port, "peer_id": n.peer_id} for n in nodes]})
        return
    click.echo(f"testnet with {validators} validators in {out}/ (chain {chain_id})")
    for n in nodes:
        click.echo(f"  {n.name}: p2p 127.0.0.1:{n.p2p_port}  api http://127.0.0.1:{n.api_port}")
    click.echo(f"start it with: ekklesia testnet run {out}")


@testnet.command("run", epilog=TESTNET_EPILOG)
@click.argument("out", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("testnet"))
@click.option("--demo/--no-demo", default=False, help="Run the governance demo against the testnet.")
@click.option("--duration", type=float, default=0,
              help="Stop after this many seconds, or when the demo is done (0: run until Ctrl-C).")
def testnet_run(out: Path, demo: bool, duration: float) -> None:
    """Start every node of the testnet, show a live status table, stop all on Ctrl-C."""
    from node.supervisor import run_testnet
    from node.testnet import load_testnet

    nodes = load_testnet(out)
    sys.exit(trio.run(run_testnet, out, nodes, demo, duration))
