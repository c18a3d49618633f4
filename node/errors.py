"""The node's exception hierarchy: one base class, so the CLI and the daemon have
exactly one thing to catch and report as a single line (never a traceback).

Every error here is an operator's problem to fix (a bad config value, a key file
with loose permissions, a wrong passphrase...), not a bug. The message says what is
wrong and, where there is one, what to do about it.

    NodeError
    ├── HomeError            the node home is missing, or already initialised
    ├── ConfigError          config.toml / EKKLESIA_* overrides: one or more problems
    └── KeystoreError        validator key file and client keystore
        ├── InvalidKeyName
        ├── KeyNotFound
        ├── KeyExists
        ├── InsecureKeyFile  group/world-accessible key file (remedy: chmod 600)
        ├── CorruptKeyFile
        ├── PassphraseRequired
        └── WrongPassphrase

Other node packages (storage, p2p) are encouraged to derive their base errors from
`NodeError` so that the CLI reports them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class NodeError(Exception):
    """Base of every error that `node` raises on purpose.

    `str(error)` is one line meant for the operator; `remedy`, when set, is also
    part of it."""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message if remedy is None else f"{message}; {remedy}")
        self.message = message
        self.remedy = remedy


class HomeError(NodeError):
    """The node home is not usable for the requested command."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration.

    `key` is the dotted key (``"p2p.listen"``), the section name for a problem with a
    whole section, or None for the file as a whole (unreadable, not TOML). `source`
    is where the offending value came from: the config file's path or the
    environment variable's name (None: a built-in default or a caller's argument)."""

    key: str | None
    problem: str
    source: str | None = None

    def __str__(self) -> str:
        text = f"{self.key}: {self.problem}" if self.key else self.problem
        return f"{text} (from {self.source})" if self.source else text


class ConfigError(NodeError):
    """The configuration is invalid. `problems` lists everything found (at least one);
    `key` is the dotted key of the first one."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        first = self.problems[0]
        self.key: str | None = first.key
        self.problem: str = first.problem
        text = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid configuration: {text}")

    @classmethod
    def single(cls, key: str | None, problem: str, source: str | None = None) -> ConfigError:
        return cls([ConfigProblem(key, problem, source)])

    @property
    def keys(self) -> tuple[str | None, ...]:
        return tuple(p.key for p in self.problems)


class KeystoreError(NodeError):
    """Base of the errors about key files (validator key and client keystore)."""


class InvalidKeyName(KeystoreError):
    """A key name that is not allowed (it must be usable as a file name, safely)."""


class KeyNotFound(KeystoreError):
    """No key of that name (or no key file at that path)."""


class KeyExists(KeystoreError):
    """Refusing to overwrite an existing key."""


class InsecureKeyFile(KeystoreError):
    """A key file (or the keystore directory) is accessible by other users."""


class CorruptKeyFile(KeystoreError):
    """A key file that cannot be parsed, or whose fields disagree with each other."""


class PassphraseRequired(KeystoreError):
    """The key is encrypted and no passphrase was given."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not decrypt the key."""
