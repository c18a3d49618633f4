"""The `ekklesia` command line.

Conventions shared by every command:

* ``--home DIR`` selects the node home (default ``$EKKLESIA_HOME``, else ``~/.ekklesia``);
* ``--json`` prints one JSON document on stdout instead of text, for scripts;
* exit status 0 on success, 1 for an error the user can fix (invalid config, missing
  or insecure key, wrong passphrase, home already initialised...), 2 for bad usage
  (unknown option, missing argument, a required confirmation flag left out);
* an error is one line on stderr (``error: ...``), never a traceback: every
  `node.errors.NodeError` and `OSError` is translated by the command group. An
  unexpected exception is reported the same way; ``EKKLESIA_DEBUG=1`` shows its traceback.
* prompts and warnings go to stderr, so stdout stays parseable.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import click

from node.config import Config, ConfigError, env_overrides, moniker_problem, render, render_default
from node.errors import HomeError, NodeError, PassphraseRequired
from node.home import Home
from node.keys import (
    INTERACTIVE_KDF,
    KdfParams,
    Keystore,
    check_key_name,
    create_validator_key,
    load_validator_key,
    parse_seed_hex,
    write_private_file,
)

PASSPHRASE_ENV = "EKKLESIA_PASSPHRASE"
DEBUG_ENV = "EKKLESIA_DEBUG"

# argon2id cost for keys the CLI encrypts. Tests replace it with FAST_INSECURE_KDF.
KEYSTORE_KDF: KdfParams = INTERACTIVE_KDF

F = TypeVar("F", bound=Callable[..., Any])


# ----------------------------------------------------------------------------- error handling


class CliError(click.ClickException):
    """A user error: printed as one ``error: ...`` line on stderr, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _os_error_message(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    return f"{what}: {exc.filename}" if exc.filename else what


class _Group(click.Group):
    """Translates the node's errors into `CliError` (one line, exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NodeError as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # stdout closed early (| head): click handles it
                raise
            raise CliError(_os_error_message(exc)) from None
        except BaseExceptionGroup as group:
            # A NodeError raised inside a trio nursery (e.g. the store refused at `start`)
            # arrives wrapped; report it like any other, if that is all the group holds.
            errors = _leaves(group)
            if not errors or not all(isinstance(e, NodeError) for e in errors):
                raise
            raise CliError("; ".join(dict.fromkeys(str(e) for e in errors))) from None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


class _RootGroup(_Group):
    """Also turns an unexpected exception into one line (``EKKLESIA_DEBUG=1``: re-raise)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise CliError(
                f"internal error: {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 to see the traceback)"
            ) from None


# ----------------------------------------------------------------------------- shared options and output


def _home_option(f: F) -> F:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        metavar="DIR",
        help="Node home directory.  [default: $EKKLESIA_HOME, else ~/.ekklesia]",
    )(f)


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (for scripts).")(f)


def _passphrase_file_option(f: F) -> F:
    return click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help=f"Read the passphrase from FILE (first line). Else ${PASSPHRASE_ENV}, else a hidden prompt.",
    )(f)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _interactive() -> bool:
    """True when secrets may be prompted for (stdin is a terminal)."""
    return sys.stdin.isatty()


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


# ----------------------------------------------------------------------------- root group

ROOT_EPILOG = """\b
Examples:
  ekklesia init --moniker my-node          create ~/.ekklesia with config and keys
  ekklesia config validate                 check config.toml and EKKLESIA_* overrides
  ekklesia keys add alice                  create a client key (asks for a passphrase)
  ekklesia --help / ekklesia keys --help   more help

\b
Environment:
  EKKLESIA_HOME               node home (instead of ~/.ekklesia)
  EKKLESIA_<SECTION>_<KEY>    override a config key, e.g. EKKLESIA_P2P_LISTEN
  EKKLESIA_PASSPHRASE         keystore passphrase, for scripts
  EKKLESIA_DEBUG=1            show tracebacks of internal errors

\b
Exit status: 0 success, 1 error (message on stderr), 2 bad usage.
"""


@click.group(cls=_RootGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=ROOT_EPILOG)
def main() -> None:
    """ekklesia — governance nodes for a borderless, voluntary digital nation."""


@main.command(epilog="\b\nExamples:\n  ekklesia version\n  ekklesia version --json")
@_json_option
def version(as_json: bool) -> None:
    """Print ekklesia's version and the versions of its network and storage libraries."""
    versions: dict[str, str | None] = {}
    for dist in ("ekklesia", "libp2p", "trio", "plyvel", "PyNaCl", "msgpack"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    if as_json:
        _emit_json(versions)
        return
    for dist, v in versions.items():
        click.echo(f"{dist} {v if v is not None else '(not installed)'}")


# ----------------------------------------------------------------------------- init


@dataclass(frozen=True, slots=True)
class InitResult:
    home: Path
    config_file: Path
    config_backup: Path | None  # the previous config.toml, moved aside by --force
    validator_key_file: Path
    validator_key_created: bool  # False: an existing key was kept
    validator_address: str
    validator_pubkey: str
    node_key_file: Path  # reserved: the libp2p identity is created on first start
    genesis_file: Path
    genesis_written: bool

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}


def default_moniker() -> str:
    """The host name, if it is a valid moniker; else "node"."""
    name = socket.gethostname()
    return name if name and moniker_problem(name) is None else "node"


def init_node(
    home: Home, *, moniker: str | None = None, force: bool = False, genesis: Path | None = None,
    peers: tuple[str, ...] = (),
) -> InitResult:
    """Create a node home: directories (0700), config.toml with the defaults (0600),
    a validator key (0600). The libp2p node key is created by the node on first start
    at `home.node_key_file`.

    An initialised home (config.toml or validator key present) is refused unless
    `force`; then config.toml is rewritten (the old one moved to
    ``config.toml.<UTC time>.bak``) and an existing validator key is kept — a key is
    never overwritten. Data and keystore are left alone.

    Joining a network: `genesis` (the network's genesis.json) is validated and copied
    to `home.genesis_file` (an existing, different one is replaced only with `force`,
    moved to a ``.bak``, and never while data/ holds a chain);
    `peers` (multiaddrs ending in /p2p/<peer id>) are written to ``p2p.peers``."""
    if home.root.exists() and not home.root.is_dir():
        raise HomeError(f"{home.root} exists and is not a directory")
    if home.is_initialised() and not force:
        present = home.config_file if home.config_file.exists() else home.validator_key_file
        raise HomeError(
            f"{home.root} is already initialised ({present} exists)",
            "pass --force to rewrite config.toml (the validator key is kept), or choose another --home",
        )
    text = render_default(moniker if moniker is not None else default_moniker())  # validates the moniker
    if peers:  # validated like any config value (ConfigError names a bad multiaddr)
        text = render(Config.from_mapping(
            {"node": {"moniker": moniker if moniker is not None else default_moniker()}, "p2p": {"peers": list(peers)}},
            env={}, source="--peer"))
    genesis_text = _read_genesis(genesis) if genesis is not None else None
    replace_genesis = False
    if genesis_text is not None and home.genesis_file.exists():
        if home.genesis_file.read_text(encoding="utf-8") == genesis_text:
            genesis_text = None  # already there
        elif not force:
            raise HomeError(f"{home.genesis_file} exists and differs from {genesis}", "pass --force to replace it")
        elif home.data_dir.exists() and any(home.data_dir.iterdir()):
            raise HomeError(f"{home.data_dir} holds the chain of the current genesis",
                            "remove it before replacing the genesis")
        else:
            replace_genesis = True

    # Check an existing validator key before changing anything.
    existing_key = load_validator_key(home.validator_key_file) if home.validator_key_file.exists() else None

    home.create_dirs()
    backup = None
    if home.config_file.exists():
        backup = _backup_path(home.config_file)
        os.replace(home.config_file, backup)
    write_private_file(home.config_file, text.encode("utf-8"), what="config file")
    Config.load(home, env={})  # what init wrote must load

    key = existing_key if existing_key is not None else create_validator_key(home.validator_key_file)

    # Genesis: copied with --genesis. Generating one: `write_genesis(home, ...)` goes here
    # once it exists (lead, issue #6).
    genesis_written = False
    if genesis_text is not None:
        if replace_genesis:
            os.replace(home.genesis_file, _backup_path(home.genesis_file))
        write_private_file(home.genesis_file, genesis_text.encode("utf-8"), what="genesis file")
        genesis_written = True

    return InitResult(
        home=home.root,
        config_file=home.config_file,
        config_backup=backup,
        validator_key_file=home.validator_key_file,
        validator_key_created=existing_key is None,
        validator_address=key.address_hex,
        validator_pubkey=key.pubkey_hex,
        node_key_file=home.node_key_file,
        genesis_file=home.genesis_file,
        genesis_written=genesis_written,
    )


def _backup_path(path: Path) -> Path:
    """``<path>.<UTC time>.bak``, never an existing file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while backup.exists():  # never replace an earlier backup
        n += 1
        backup = path.with_name(f"{path.name}.{stamp}.{n}.bak")
    return backup


def _read_genesis(path: Path) -> str:
    """The text of a genesis file, after checking that it is one."""
    from protocol.errors import ValidationError
    from protocol.governance.genesis import Genesis

    text = path.read_text(encoding="utf-8")
    try:
        Genesis.from_json(text)
    except (ValidationError, ValueError) as exc:
        raise HomeError(f"{path} is not a valid genesis: {exc}") from None
    return text


def _check_moniker(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (problem := moniker_problem(value)):
        raise click.BadParameter(problem)
    return value


INIT_EPILOG = """\b
Examples:
  ekklesia init                              ~/.ekklesia, moniker = host name
  ekklesia init --home ./n0 --moniker n0     another home
  ekklesia init --home ./n0 --force          rewrite config.toml; keys are kept
  ekklesia init --genesis genesis.json --peer /dns4/seed.example.org/tcp/26656/p2p/12D3KooW…
                                             join a running network (a full node)

\b
Creates (directories 0700, files 0600):
  config/config.toml          every key with its default, commented
  config/validator_key.json   consensus key (an existing one is never replaced)
  data/ keys/                 empty
The libp2p key config/node_key is created on first start. --genesis FILE copies
the network's genesis to config/genesis.json; each --peer is written to p2p.peers.
The node is a validator only if its validator key is in the genesis (or later
validator) set; otherwise it syncs and follows the chain as a full node.
"""


@main.command(epilog=INIT_EPILOG)
@_home_option
@click.option("--moniker", callback=_check_moniker, help="Node name for config.toml.  [default: host name]")
@click.option("--force", is_flag=True, help="Rewrite config.toml of an initialised home (old one kept as .bak).")
@click.option("--genesis", "genesis", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="The network's genesis.json, copied into the home.")
@click.option("--peer", "peers", multiple=True, metavar="MULTIADDR",
              help="A peer to connect to, /ip4/…/tcp/…/p2p/<peer id> (repeatable): written to p2p.peers.")
@_json_option
def init(home: Path | None, moniker: str | None, force: bool, genesis: Path | None, peers: tuple[str, ...],
         as_json: bool) -> None:
    """Create a node home: config, validator key, directories."""
    result = init_node(Home.resolve(home), moniker=moniker, force=force, genesis=genesis, peers=peers)
    if as_json:
        _emit_json(result.to_json())
        return
    click.echo(f"initialised node home {result.home}")
    if result.config_backup:
        click.echo(f"  previous config moved to {result.config_backup}")
    click.echo(f"  config         {result.config_file}")
    kept = "created" if result.validator_key_created else "kept existing"
    click.echo(f"  validator key  {result.validator_key_file} ({kept})")
    click.echo(f"    address      {result.validator_address}")
    click.echo(f"    pubkey       {result.validator_pubkey}")
    click.echo(f"  node key       {result.node_key_file} (created on first start)")
    if result.genesis_written:
        click.echo(f"  genesis        {result.genesis_file} (copied from {genesis})")
    else:
        click.echo(f"  genesis        {result.genesis_file} (not created: give --genesis FILE to join a network)")
    for p in peers:
        click.echo(f"  peer           {p}")


@main.command("show-validator", epilog="\b\nExamples:\n  ekklesia show-validator\n  ekklesia show-validator --json")
@_home_option
@_json_option
def show_validator(home: Path | None, as_json: bool) -> None:
    """Print the validator's address and public key.

    They are read from <home>/config/validator_key.json."""
    key = load_validator_key(Home.resolve(home).validator_key_file)
    data = {"address": key.address_hex, "pubkey": key.pubkey_hex, "path": str(key.path)}
    if as_json:
        _emit_json(data)
        return
    click.echo(f"address  {key.address_hex}\npubkey   {key.pubkey_hex}")


# ----------------------------------------------------------------------------- config

CONFIG_EPILOG = """\b
Examples:
  ekklesia config show                      effective config.toml (after EKKLESIA_* overrides)
  ekklesia config show --json | jq .config.p2p
  EKKLESIA_P2P_LISTEN=/ip4/0.0.0.0/tcp/26656 ekklesia config validate
"""


@main.group(cls=_Group, epilog=CONFIG_EPILOG)
def config() -> None:
    """Show or check the node configuration.

    The file is <home>/config/config.toml; any key can be overridden by an
    EKKLESIA_<SECTION>_<KEY> environment variable. Reference: docs/config.md."""


@config.command("show", epilog=CONFIG_EPILOG)
@_home_option
@_json_option
def config_show(home: Path | None, as_json: bool) -> None:
    """Print the effective configuration: config.toml plus EKKLESIA_* overrides."""
    h = Home.resolve(home)
    cfg = Config.load(h)
    overrides = env_overrides()
    if as_json:
        _emit_json({"config_file": str(h.config_file), "env_overrides": overrides, "config": cfg.to_dict()})
        return
    click.echo(f"# Effective configuration: {h.config_file}")
    for key, var in overrides.items():
        click.echo(f"# {key} overridden by {var}")
    click.echo(render(cfg), nl=False)


@config.command("validate", epilog=CONFIG_EPILOG)
@_home_option
@_json_option
@click.pass_context
def config_validate(ctx: click.Context, home: Path | None, as_json: bool) -> None:
    """Check config.toml and EKKLESIA_* overrides; list every problem (exit status 1)."""
    h = Home.resolve(home)
    try:
        cfg = Config.load(h)
    except ConfigError as exc:
        if as_json:
            errors = [{"key": p.key, "problem": p.problem, "source": p.source} for p in exc.problems]
            _emit_json({"valid": False, "config_file": str(h.config_file), "errors": errors, "warnings": []})
        else:
            n = len(exc.problems)
            click.echo(f"error: {h.config_file}: {n} problem{'s' if n > 1 else ''}", err=True)
            for p in exc.problems:
                click.echo(f"  {p}", err=True)
        ctx.exit(1)
    warnings = cfg.warnings()
    if as_json:
        _emit_json({"valid": True, "config_file": str(h.config_file), "errors": [], "warnings": warnings})
        return
    for w in warnings:
        _warn(w)
    click.echo(f"config OK: {h.config_file}")


# ----------------------------------------------------------------------------- keys

KEYS_EPILOG = """\b
Examples:
  ekklesia keys add alice                          new key; prompts for a passphrase
  ekklesia keys add bot --no-passphrase --json     unencrypted, for a test script
  ekklesia keys add alice --recover                restore from a seed (hex, prompted)
  ekklesia keys list
  ekklesia keys show alice --json
  ekklesia keys export alice --unsafe-export       print the seed (back it up offline)
  ekklesia keys delete alice --yes

\b
Passphrases come from --passphrase-file FILE, else $EKKLESIA_PASSPHRASE, else a
hidden prompt (only when stdin is a terminal). Without a terminal, --recover reads
the seed from the first line of stdin.
"""


@main.group(cls=_Group, epilog=KEYS_EPILOG)
def keys() -> None:
    """Manage the client keys in <home>/keys.

    Each key is a file <home>/keys/NAME.json (mode 0600), optionally encrypted with a
    passphrase (argon2id + XSalsa20-Poly1305)."""


def _keystore(home: Path | None) -> Keystore:
    return Keystore(Home.resolve(home).keys_dir, kdf=KEYSTORE_KDF)


def _read_passphrase_file(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    line = text.split("\n", 1)[0].removesuffix("\r")
    if not line:
        raise CliError(f"passphrase file {path} is empty")
    return line


def _new_passphrase(passphrase_file: Path | None, name: str) -> str | None:
    """The passphrase to encrypt a new key with; None: store it unencrypted."""
    if passphrase_file is not None:
        return _read_passphrase_file(passphrase_file)
    if env := os.environ.get(PASSPHRASE_ENV):
        return env
    if not _interactive():
        raise click.UsageError(
            f"no passphrase for key {name!r}: give --passphrase-file FILE or set {PASSPHRASE_ENV}, "
            "or pass --no-passphrase to store it unencrypted"
        )
    value: str = click.prompt(
        f"Passphrase to encrypt key {name!r} (empty: no encryption)",
        default="",
        show_default=False,
        hide_input=True,
        confirmation_prompt="Repeat the passphrase",
        err=True,
    )
    if not value:
        _warn(f"key {name!r} is stored unencrypted")
    return value or None


def _existing_passphrase(passphrase_file: Path | None, name: str) -> str:
    if passphrase_file is not None:
        return _read_passphrase_file(passphrase_file)
    if env := os.environ.get(PASSPHRASE_ENV):
        return env
    if not _interactive():
        raise PassphraseRequired(f"key {name!r} is encrypted: give --passphrase-file FILE or set {PASSPHRASE_ENV}")
    value: str = click.prompt(f"Passphrase of key {name!r}", hide_input=True, err=True)
    return value


def _read_seed() -> bytes:
    if _interactive():
        text: str = click.prompt("Seed to recover (64 hex digits)", hide_input=True, err=True)
    else:
        text = sys.stdin.readline()
        if not text.strip():
            raise CliError("--recover: expected the seed (64 hex digits) on the first line of stdin")
    return parse_seed_hex(text)


@keys.command("add", epilog=KEYS_EPILOG)
@click.argument("name")
@click.option("--recover", is_flag=True, help="Restore a key from its seed instead of creating a fresh one.")
@click.option("--no-passphrase", is_flag=True, help="Store the key unencrypted (no passphrase asked).")
@_passphrase_file_option
@_home_option
@_json_option
def keys_add(
    name: str, recover: bool, no_passphrase: bool, passphrase_file: Path | None, home: Path | None, as_json: bool
) -> None:
    """Create a key NAME (or restore it with --recover) in the keystore."""
    if no_passphrase and passphrase_file is not None:
        raise click.UsageError("--no-passphrase and --passphrase-file exclude each other")
    ks = _keystore(home)
    path = ks.path_of(check_key_name(name))
    if path.exists():
        raise CliError(f"a key named {name!r} already exists ({path}); choose another name")
    seed = _read_seed() if recover else None
    passphrase = None if no_passphrase else _new_passphrase(passphrase_file, name)
    info = ks.add(name, seed=seed, passphrase=passphrase)
    if as_json:
        _emit_json(info.to_json())
        return
    click.echo(f"added key {info.name}{' (encrypted)' if info.encrypted else ''}")
    click.echo(f"  address  {info.address}\n  pubkey   {info.pubkey}\n  file     {info.path}")
    if not recover:
        click.echo(f"Back up its seed: ekklesia keys export {info.name} --unsafe-export", err=True)


@keys.command("list", epilog=KEYS_EPILOG)
@_home_option
@_json_option
def keys_list(home: Path | None, as_json: bool) -> None:
    """List the keys in the keystore (no passphrase needed)."""
    ks = _keystore(home)
    infos = ks.list_keys()
    if as_json:
        _emit_json([i.to_json() for i in infos])
        return
    if not infos:
        click.echo(f"no keys in {ks.directory}", err=True)
        return
    width = max(len(i.name) for i in infos)
    for i in infos:
        click.echo(f"{i.name:<{width}}  {i.address}  {'encrypted' if i.encrypted else 'unencrypted'}")


@keys.command("show", epilog=KEYS_EPILOG)
@click.argument("name")
@_home_option
@_json_option
def keys_show(name: str, home: Path | None, as_json: bool) -> None:
    """Show the address and public key of key NAME (no passphrase needed)."""
    info = _keystore(home).show(name)
    if as_json:
        _emit_json(info.to_json())
        return
    click.echo(f"name       {info.name}\naddress    {info.address}\npubkey     {info.pubkey}")
    click.echo(f"encrypted  {'yes' if info.encrypted else 'no'}\nfile       {info.path}")


@keys.command("export", epilog=KEYS_EPILOG)
@click.argument("name")
@click.option("--unsafe-export", is_flag=True, help="Required: confirms that the secret seed may be printed on stdout.")
@_passphrase_file_option
@_home_option
@_json_option
def keys_export(name: str, unsafe_export: bool, passphrase_file: Path | None, home: Path | None, as_json: bool) -> None:
    """Print the secret seed of key NAME (hex). Anyone who sees it controls the key."""
    if not unsafe_export:
        raise click.UsageError(
            f"refusing to print the seed of {name!r} without --unsafe-export: anyone who sees it controls the key"
        )
    ks = _keystore(home)
    info = ks.show(name)
    passphrase = _existing_passphrase(passphrase_file, name) if info.encrypted else None
    seed = ks.seed(name, passphrase)
    if as_json:
        _emit_json({"name": info.name, "address": info.address, "pubkey": info.pubkey, "seed": seed.hex()})
        return
    _warn(f"the line below is the secret seed of key {name!r}; keep it offline and private")
    click.echo(seed.hex())


@keys.command("delete", epilog=KEYS_EPILOG)
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@_home_option
@_json_option
def keys_delete(name: str, yes: bool, home: Path | None, as_json: bool) -> None:
    """Delete key NAME from the keystore. Without a backup of its seed it is gone for good."""
    ks = _keystore(home)
    info = ks.show(name)
    if not yes:
        if not _interactive():
            raise click.UsageError(f"pass --yes to delete key {name!r} without a confirmation prompt")
        click.confirm(f"Delete key {name!r} ({info.address})? This cannot be undone", abort=True, err=True)
    ks.delete(name)
    if as_json:
        _emit_json({"deleted": info.to_json()})
        return
    click.echo(f"deleted key {name} ({info.address})")
from node import cli_reset as _cli_reset  # noqa: E402,F401  (registers unsafe-reset)
from node import cli_run as _cli_run  # noqa: E402,F401  (registers start and testnet)
from node import cli_tx as _cli_tx  # noqa: E402,F401  (registers status, query and tx)
from simulations.cli import sim as _sim  # noqa: E402

main.add_command(_sim)
