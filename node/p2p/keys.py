"""The node's persistent libp2p identity (its peer id) kept in the home directory.

The file holds the libp2p protobuf encoding of an Ed25519 private key, the format other
libp2p implementations and tools read. It is created with mode 0600 in one atomic step
(written to a private temporary file, then hard-linked into place, so a crash never
leaves a half-written key and two starting processes cannot both create one), and a key
file readable by group or others is refused, as ssh does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from node.keys import fsync_dir


class NodeKeyError(Exception):
    """The node key file exists but cannot be used (bad permissions or contents)."""


def load_or_create_node_key(path: str | os.PathLike[str]) -> KeyPair:
    """Load the node's Ed25519 key from ``path``, creating it (mode 0600) if absent.

    Raises ``NodeKeyError`` if the file is group/world-accessible, unreadable as a
    libp2p private key, or not an Ed25519 key.
    """
    p = Path(path)
    try:
        return _load(p)
    except FileNotFoundError:
        pass
    p.parent.mkdir(parents=True, exist_ok=True)
    key_pair = create_new_key_pair()
    blob = key_pair.private_key.serialize()
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, p)  # fails if another process created the key meanwhile
        except FileExistsError:
            return _load(p)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(p.parent)
    return key_pair


def peer_id_of(key_pair: KeyPair) -> str:
    """The base58 peer id (``12D3Koo…``) that ``key_pair`` gives a node."""
    return ID.from_pubkey(key_pair.public_key).to_base58()


def _load(p: Path) -> KeyPair:
    fd = os.open(p, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise NodeKeyError(f"node key {p} is not a regular file")
        if mode & 0o077:
            raise NodeKeyError(
                f"node key {p} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {p}"
            )
        blob = f.read(4096)
    try:
        private_key = deserialize_private_key(blob)
    except Exception as exc:
        raise NodeKeyError(f"node key {p} is not a libp2p private key: {exc}") from exc
    if private_key.get_type() != KeyType.Ed25519:
        raise NodeKeyError(f"node key {p} is {private_key.get_type().name}, not Ed25519")
    return KeyPair(private_key, private_key.get_public_key())


