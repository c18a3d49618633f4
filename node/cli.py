"""The `ekklesia` command line."""

from __future__ import annotations

from importlib import metadata

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ekklesia — governance nodes for a borderless, voluntary digital nation."""


@main.command()
def version() -> None:
    """Print ekklesia's version and the versions of its network and storage libraries."""
    for dist in ("ekklesia", "libp2p", "trio", "plyvel", "PyNaCl", "msgpack"):
        try:
            click.echo(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            click.echo(f"{dist} (not installed)")
