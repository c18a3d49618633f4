"""Why the store refuses to work, and what the operator can do about it.

Every refusal carries a `reason` (what is wrong, with the key or height involved)
and a `remedy` (what to do next), so the node can print one clear message and
exit instead of a LevelDB status string or a traceback.
"""

from __future__ import annotations

from node.errors import NodeError

REMEDY_RESYNC = (
    "stop the node and run `ekklesia unsafe-reset --home <home>`: it moves the data "
    "directory aside (nothing is deleted), carries the validator sign-state over when it "
    "is readable, and the node re-syncs the chain from peers on the next start"
)
REMEDY_LOCKED = (
    "another process (probably another ekklesia node) has this data directory open; "
    "stop it, or start this node with a different --home"
)
REMEDY_GENESIS = (
    "this data directory belongs to a different chain; check --home and the genesis "
    "file, or run `ekklesia unsafe-reset --home <home>` to start over for this genesis"
)
REMEDY_SCHEMA = (
    "run the ekklesia version that wrote this store, or run "
    "`ekklesia unsafe-reset --home <home>` and re-sync from peers"
)
REMEDY_IO = "check free disk space, permissions and the disk itself, then restart the node"


class StorageError(NodeError):
    """Base of every storage failure. A `NodeError`, so the CLI reports it as one line:
    `str(error)` is the reason followed by the remedy."""

    def __init__(self, reason: str, remedy: str | None = None) -> None:
        super().__init__(reason, remedy)
        self.reason = reason


class StoreLocked(StorageError):
    """Another process holds the LevelDB lock of this directory."""

    def __init__(self, reason: str, remedy: str = REMEDY_LOCKED) -> None:
        super().__init__(reason, remedy)


class CorruptStore(StorageError):
    """Stored bytes are unreadable, or the chain, state and app hash disagree."""

    def __init__(self, reason: str, remedy: str = REMEDY_RESYNC) -> None:
        super().__init__(reason, remedy)


class GenesisMismatch(StorageError):
    """The store was initialised for another chain id or genesis."""

    def __init__(self, reason: str, remedy: str = REMEDY_GENESIS) -> None:
        super().__init__(reason, remedy)


class IncompatibleStore(StorageError):
    """The store was written with a schema version this code does not read."""

    def __init__(self, reason: str, remedy: str = REMEDY_SCHEMA) -> None:
        super().__init__(reason, remedy)
