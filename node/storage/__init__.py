"""The node's storage layer: one ordered key-value store per node home holding the
chain, the governance state, the tx index, the consensus sign-state and WAL, and
node metadata. `docs/storage.md` describes the layout and the guarantees."""

from node.storage.backend import Backend, LevelDBBackend, MemoryBackend
from node.storage.check import StateHasher
from node.storage.errors import (
    CorruptStore,
    GenesisMismatch,
    IncompatibleStore,
    StorageError,
    StoreLocked,
)
from node.storage.records import ChainHead, StoreIdentity, TxLocation, TxResult
from node.storage.reset import ResetResult, unsafe_reset
from node.storage.store import ConsensusRecovery, NodeStore, PruneResult, StoreInfo
from node.storage.view import StateView

__all__ = [
    "Backend",
    "ChainHead",
    "ConsensusRecovery",
    "CorruptStore",
    "GenesisMismatch",
    "IncompatibleStore",
    "LevelDBBackend",
    "MemoryBackend",
    "NodeStore",
    "PruneResult",
    "ResetResult",
    "StateHasher",
    "StateView",
    "StorageError",
    "StoreIdentity",
    "StoreInfo",
    "StoreLocked",
    "TxLocation",
    "TxResult",
    "unsafe_reset",
]
