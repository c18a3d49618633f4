"""Transaction result codes and the internal signal a handler raises to fail a tx.

Codes 1–9 are *admission* failures: the tx never reaches execution, changes nothing
and does not consume its nonce. Codes from 10 up are *execution* failures: the
nonce and the fee are consumed, every other write of the tx is dropped; `check_tx`
returns them too when it refuses a tx that would fail so.
"""

from __future__ import annotations

import enum

MAX_REASON = 400  # UTF-8 bytes; the node stores results with a 512-byte info field


class Code(enum.IntEnum):
    OK = 0
    # admission: never executed, no state change
    WRONG_CHAIN = 1
    BAD_SIGNATURE = 2
    BAD_NONCE = 3
    KEY_RETIRED = 4
    FEE_UNPAID = 5
    # execution: nonce and fee consumed, nothing else
    UNKNOWN_KIND = 10
    BAD_BODY = 11
    INVALID = 12
    INSUFFICIENT_FUNDS = 13
    NOT_FOUND = 14
    UNAUTHORIZED = 15
    WRONG_STATUS = 16
    NOT_IDENTITY = 17
    NOT_RESIDENT = 18
    NOT_REGISTRAR = 19
    NOT_ISSUER = 20
    KEY_REUSED = 21
    NEXT_KEY_MISMATCH = 22
    VOTE_CHANGE_NOT_ALLOWED = 23
    NOT_ELIGIBLE = 24
    DEPOSIT_TOO_LOW = 25
    PARTIES_MISMATCH = 26


ADMISSION_CODES = frozenset({Code.WRONG_CHAIN, Code.BAD_SIGNATURE, Code.BAD_NONCE, Code.KEY_RETIRED, Code.FEE_UNPAID})


class TxFailed(Exception):
    """Raised inside a handler to fail the current tx; `apply_block` turns it into a
    result value. It never escapes the package."""

    def __init__(self, code: Code, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def clip(reason: str) -> str:
    raw = reason.encode()
    if len(raw) <= MAX_REASON:
        return reason
    return raw[: MAX_REASON - 3].decode(errors="ignore") + "…"
