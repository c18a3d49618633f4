"""The node home directory and where everything lives in it.

::

    <home>/                      0700
      config/                    0700
        config.toml              node configuration (see docs/config.md)
        genesis.json             the chain's genesis document
        node_key                 libp2p identity (peer id), created 0600 on first start
        validator_key.json       consensus signing key, 0600
      data/                      0700  LevelDB (blocks, state, WAL, sign-state)
      keys/                      0700  client keystore: <name>.json, each 0600

The home is ``--home DIR`` if given, else ``$EKKLESIA_HOME``, else ``~/.ekklesia``.
Nothing here touches the disk except `Home.create_dirs`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "EKKLESIA_HOME"
DEFAULT_HOME = "~/.ekklesia"

CONFIG_DIR = "config"
DATA_DIR = "data"
KEYS_DIR = "keys"
CONFIG_FILE = "config.toml"
GENESIS_FILE = "genesis.json"
NODE_KEY_FILE = "node_key"
VALIDATOR_KEY_FILE = "validator_key.json"

DIR_MODE = 0o700


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """``$EKKLESIA_HOME`` if set and non-empty, else ``~/.ekklesia`` (both with ``~`` expanded)."""
    env = os.environ if env is None else env
    return Path(env.get(HOME_ENV) or DEFAULT_HOME).expanduser()


@dataclass(frozen=True, slots=True)
class Home:
    """Paths inside one node home (`root` is used as given; `resolve` makes it absolute)."""

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Home:
        """The home given on the command line, or the default one, as an absolute path."""
        return cls((Path(home).expanduser() if home is not None else default_home(env)).absolute())

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    @property
    def config_dir(self) -> Path:
        return self.root / CONFIG_DIR

    @property
    def data_dir(self) -> Path:
        return self.root / DATA_DIR

    @property
    def keys_dir(self) -> Path:
        return self.root / KEYS_DIR

    @property
    def config_file(self) -> Path:
        return self.config_dir / CONFIG_FILE

    @property
    def genesis_file(self) -> Path:
        return self.config_dir / GENESIS_FILE

    @property
    def node_key_file(self) -> Path:
        """Reserved for the libp2p identity (`node.p2p.load_or_create_node_key`)."""
        return self.config_dir / NODE_KEY_FILE

    @property
    def validator_key_file(self) -> Path:
        return self.config_dir / VALIDATOR_KEY_FILE

    def is_initialised(self) -> bool:
        """True once `ekklesia init` has written a config or a validator key here."""
        return self.config_file.exists() or self.validator_key_file.exists()

    def create_dirs(self) -> None:
        """Create the home and its config/, data/ and keys/ directories (mode 0700).

        Existing directories are left as they are (their mode is not changed)."""
        for d in (self.root, self.config_dir, self.data_dir, self.keys_dir):
            ensure_private_dir(d)


def ensure_private_dir(path: Path) -> None:
    """Create `path`, and any missing parents, with mode 0700; existing directories are
    left as they are."""
    missing = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        # mkdir's mode is filtered by the umask, which can only remove bits: chmod makes
        # it exactly 0700 even under an unusual umask such as 0o277.
        d.chmod(DIR_MODE)
