"""The governance state machine: genesis, apply_block, check_tx, queries.

Queries live in `protocol.governance.queries` (a module, so that their names do not
shadow the modules that hold the records: `queries.identity` vs `identity`).
See docs/governance.md for the tx kinds, result codes, genesis format and state
key layout. Everything here is pure and deterministic.
"""

from protocol.governance import queries
from protocol.governance.app import BlockResult, TxResult, apply_block, check_tx
from protocol.governance.apphash import app_hash
from protocol.governance.codes import Code
from protocol.governance.context import Event
from protocol.governance.genesis import Genesis, genesis_app_hash, init_state
from protocol.governance.kinds import KINDS
from protocol.governance.validator_set import validators_for

__all__ = [
    "KINDS",
    "BlockResult",
    "Code",
    "Event",
    "Genesis",
    "TxResult",
    "app_hash",
    "apply_block",
    "check_tx",
    "genesis_app_hash",
    "init_state",
    "queries",
    "validators_for",
]
