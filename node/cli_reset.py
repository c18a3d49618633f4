"""`ekklesia unsafe-reset`: set a refused store aside so the node re-syncs from its peers.

The remedy the storage errors name (node/storage/errors.py). Nothing is deleted: the
store directory is renamed next to the new, empty one; the validator sign-state is
carried over when it can be read with every check on (node/storage/reset.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import structlog

from node.cli import CliError, _emit_json, _home_option, _interactive, _json_option, _warn, main
from node.config import Config
from node.errors import HomeError, NodeError
from node.home import Home
from node.log import configure
from node.storage.errors import StoreLocked
from node.storage.reset import check_unlocked, unsafe_reset

# The node's store directory inside <home>/data (node.runtime opens data/store).
STORE_DIR = "store"

RESET_EPILOG = """\b
Examples:
  ekklesia unsafe-reset                      show what would be done, ask (a terminal) or exit 2
  ekklesia unsafe-reset --home ./n0 --yes    do it without asking
  ekklesia unsafe-reset --yes --json         for scripts

\b
What it does, with the node stopped:
  <home>/data/store  is renamed to  <home>/data/store.reset-<UTC time>   (nothing is deleted)
  a new, empty <home>/data/store holds the validator sign-state, if it could be read safely
On the next `ekklesia start` the node re-syncs the chain from its peers (p2p.peers).
Transactions this node had accepted but not yet seen committed stay in the old store.
Refused while a node runs from this home. Exit status 0 also when there is no store.
"""


def store_path(home: Home) -> Path:
    return home.data_dir / STORE_DIR


def _peers_hint(home: Home) -> str | None:
    """A warning when the node has no configured peer to re-sync from (None: fine)."""
    try:
        peers = Config.load(home).p2p.peers
    except NodeError:
        return None  # `ekklesia start` reports config problems; not this command's business
    if peers:
        return None
    return (
        "p2p.peers is empty: the node can re-sync only from peers that dial it; add the other "
        "nodes with `ekklesia init --force --peer ...` or in config.toml"
    )


@main.command("unsafe-reset", epilog=RESET_EPILOG)
@_home_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@_json_option
def unsafe_reset_command(home: Path | None, yes: bool, as_json: bool) -> None:
    """Move the node's chain data aside; the node re-syncs it from peers on the next start.

    The remedy for a store the node refuses (corrupt, another chain, another schema
    version). The validator sign-state is kept, so a validator does not sign twice at
    a height it signed before."""
    h = Home.resolve(home)
    if not h.root.is_dir():
        raise HomeError(f"no node home at {h.root}", "check --home or $EKKLESIA_HOME")
    store = store_path(h)
    if not store.exists():
        if as_json:
            _emit_json({"reset": False, "store": str(store), "moved_to": None, "sign_state_kept": False})
        else:
            click.echo(f"nothing to reset: there is no store at {store}")
        return
    if not store.is_dir():
        raise CliError(f"{store} is not a directory; move it away by hand")
    _refuse_if_running(store)

    if not yes:
        click.echo(f"This moves the chain data of {h.root} aside:", err=True)
        click.echo(f"  {store}  ->  {store}.reset-<UTC time>  (nothing is deleted)", err=True)
        click.echo("  a new, empty store keeps only the validator sign-state (when it can be read safely);", err=True)
        click.echo("  the node re-syncs the chain from its peers on the next start.", err=True)
        if not _interactive():
            raise click.UsageError("pass --yes to reset the store without a confirmation prompt")
        click.confirm("Reset the store?", abort=True, err=True)

    try:
        with _store_logs_quiet():
            result = unsafe_reset(store)
    except StoreLocked:  # a node started between the check and now
        _refuse_if_running(store)
        raise
    hint = _peers_hint(h)
    out: dict[str, Any] = {
        "reset": True,
        "store": str(store),
        "moved_to": str(result.moved_to),
        "sign_state_kept": result.sign_state_kept,
        "warnings": [],
    }
    if not result.sign_state_kept and h.validator_key_file.exists():
        out["warnings"].append(
            "no sign-state was carried over (none stored, or it could not be read safely): if this "
            "node is a validator, it may sign again at a height it signed before the reset; restart it "
            "only after the chain has moved past the heights it was signing"
        )
    if hint:
        out["warnings"].append(hint)
    if as_json:
        _emit_json(out)
        return
    click.echo(f"moved the old store to {result.moved_to}")
    kept = "with the validator sign-state carried over" if result.sign_state_kept else "without a sign-state"
    click.echo(f"created an empty store at {store} ({kept})")
    click.echo("the node will re-sync the chain from its peers on the next `ekklesia start`")
    for w in out["warnings"]:
        _warn(w)


def _refuse_if_running(store: Path) -> None:
    try:
        check_unlocked(store)
    except StoreLocked:
        raise CliError(
            f"the store {store} is in use (is a node running from this home?); stop the node, "
            "then run unsafe-reset again"
        ) from None


@contextlib.contextmanager
def _store_logs_quiet() -> Iterator[None]:
    """The storage layer logs with structlog, whose default is stdout; this command
    reports everything itself, so only errors are logged, on stderr."""
    saved = structlog.get_config()
    configure("error", "json")
    try:
        yield
    finally:
        structlog.configure(**saved)
