"""Accounts, the token supply, the treasury, vote locks and the transfer tx.

An account is keyed by the address of an ed25519 key. `balance` counts every token
the account owns, locked ones included; `locked` is the largest vote lock it holds
(a token-weighted vote locks the voter's whole balance for that proposal, and the
same tokens may back votes on several proposals at once, so locks overlap and the
account's lock is their maximum). Only `balance - locked` can leave the account.

Supply: `total` tokens exist; they sit in accounts, the treasury or proposal escrow
(deposits), and `total` only falls by burns (recorded in `burned`):
    sum(balances) + treasury + escrow == total,   total + burned == genesis total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from protocol.crypto import ADDRESS_LEN
from protocol.errors import InvariantViolation
from protocol.governance import keys
from protocol.governance.codes import Code, TxFailed
from protocol.governance.context import Ctx, decode, load, need, save
from protocol.kv import KVReader, Overlay
from protocol.wire import U64, Bytes, Optional, Str, Struct

ADDRESS = Bytes(size=ADDRESS_LEN)
MAX_FORWARDS = 1_000  # a key can be rotated this many times before forwarding stops


@dataclass(frozen=True, slots=True)
class Account(Struct):
    balance: Annotated[int, U64]
    locked: Annotated[int, U64]
    nonce: Annotated[int, U64]
    # Set when the key behind this account was rotated out of an identity: the key
    # may be stolen, so it can no longer send, and whatever reaches it moves on.
    retired_to: Annotated[bytes | None, Optional(ADDRESS)]

    @property
    def spendable(self) -> int:
        return self.balance - self.locked


EMPTY = Account(0, 0, 0, None)


@dataclass(frozen=True, slots=True)
class Supply(Struct):
    total: Annotated[int, U64]
    treasury: Annotated[int, U64]
    escrow: Annotated[int, U64]
    burned: Annotated[int, U64]


@dataclass(frozen=True, slots=True)
class Transfer(Struct):
    to: Annotated[bytes, ADDRESS]
    amount: Annotated[int, U64]
    memo: Annotated[str, Str(128)]


def get_account(kv: KVReader, address: bytes) -> Account:
    key = keys.account(address)
    rec = kv.get_record(key) if isinstance(kv, Overlay) else kv.get(key)
    if rec is None:
        return EMPTY
    return rec if type(rec) is Account else decode(Account, rec)  # type: ignore[arg-type]


def put_account(kv: Overlay, address: bytes, acct: Account) -> None:
    if acct.locked > acct.balance:
        raise InvariantViolation(f"account {address.hex()} would lock more than it holds")
    if acct == EMPTY:
        kv.delete(keys.account(address))  # an untouched account is not stored
    else:
        kv.put_record(keys.account(address), acct)  # encoded once, in the block's write set


def resolve(kv: KVReader, address: bytes) -> tuple[bytes, Account]:
    """The account that receives what is sent to `address` (following rotations)."""
    acct = get_account(kv, address)
    for _ in range(MAX_FORWARDS):
        if acct.retired_to is None:
            return address, acct
        address = acct.retired_to
        acct = get_account(kv, address)
    raise InvariantViolation(f"forwarding chain from {address.hex()} is too long")


def credit(kv: Overlay, address: bytes, amount: int) -> bytes:
    """Add `amount` to the account `address` forwards to; returns that address."""
    target, acct = resolve(kv, address)
    if amount:
        put_account(kv, target, Account(acct.balance + amount, acct.locked, acct.nonce, acct.retired_to))
    return target


def require_spendable(kv: KVReader, address: bytes, amount: int) -> Account:
    """The account at `address` if it can spend `amount`, else INSUFFICIENT_FUNDS."""
    acct = get_account(kv, address)
    if acct.spendable < amount:
        raise TxFailed(
            Code.INSUFFICIENT_FUNDS, f"needs {amount} spendable tokens, has {acct.spendable} ({acct.locked} locked)"
        )
    return acct


def debit(kv: Overlay, address: bytes, amount: int) -> None:
    acct = require_spendable(kv, address, amount)
    put_account(kv, address, Account(acct.balance - amount, acct.locked, acct.nonce, acct.retired_to))


def get_supply(kv: KVReader) -> Supply:
    return need(kv, keys.META_SUPPLY, Supply)


def _put_supply(kv: Overlay, s: Supply) -> None:
    if min(s.total, s.treasury, s.escrow) < 0 or s.treasury + s.escrow > s.total:
        raise InvariantViolation(f"supply bookkeeping broke: {s}")
    save(kv, keys.META_SUPPLY, s)


def to_treasury(kv: Overlay, amount: int) -> None:
    if amount:
        s = get_supply(kv)
        _put_supply(kv, Supply(s.total, s.treasury + amount, s.escrow, s.burned))


def from_treasury(kv: Overlay, amount: int) -> None:
    s = get_supply(kv)
    if s.treasury < amount:
        raise TxFailed(Code.INSUFFICIENT_FUNDS, f"the treasury holds {s.treasury}, not {amount}")
    _put_supply(kv, Supply(s.total, s.treasury - amount, s.escrow, s.burned))


def into_escrow(kv: Overlay, address: bytes, amount: int) -> None:
    debit(kv, address, amount)
    s = get_supply(kv)
    _put_supply(kv, Supply(s.total, s.treasury, s.escrow + amount, s.burned))


def release_escrow(kv: Overlay, refund_to: bytes, refund: int, burn: int) -> None:
    """Take `refund + burn` out of escrow: refund to an account, burn the rest."""
    s = get_supply(kv)
    if s.escrow < refund + burn:
        raise InvariantViolation(f"escrow holds {s.escrow}, cannot release {refund + burn}")
    _put_supply(kv, Supply(s.total - burn, s.treasury, s.escrow - refund - burn, s.burned + burn))
    credit(kv, refund_to, refund)


# ---------------------------------------------------------------- vote locks


def add_lock(kv: Overlay, address: bytes, proposal_id: int, amount: int) -> None:
    kv.put(keys.lock(address, proposal_id), keys.u64(amount))
    acct = get_account(kv, address)
    if amount > acct.locked:
        put_account(kv, address, Account(acct.balance, amount, acct.nonce, acct.retired_to))


def release_lock(kv: Overlay, address: bytes, proposal_id: int) -> None:
    kv.delete(keys.lock(address, proposal_id))
    remaining = max((keys.read_u64(v) for _, v in kv.scan(keys.LOCK + address)), default=0)
    acct = get_account(kv, address)
    acct = Account(acct.balance, remaining, acct.nonce, acct.retired_to)
    put_account(kv, address, acct)
    if acct.retired_to is not None and acct.spendable:
        # A retired key's tokens follow its identity once they are free.
        debit(kv, address, acct.spendable)
        credit(kv, acct.retired_to, acct.spendable)


# ---------------------------------------------------------------- tx


def _positive(body: Transfer) -> None:
    if body.amount == 0:
        raise TxFailed(Code.INVALID, "transfer amount must be positive")


def check_transfer(c: Ctx, body: Transfer) -> None:
    """Admission (see app.check_tx): what `transfer` checks, its debit included."""
    _positive(body)
    require_spendable(c.kv, c.tx_sender_address, body.amount)


def transfer(c: Ctx, body: Transfer) -> None:
    _positive(body)
    sender = c.tx_sender_address
    debit(c.kv, sender, body.amount)
    target = credit(c.kv, body.to, body.amount)
    c.emit("transfer", sender=sender, to=target, amount=body.amount)


def account_view(kv: KVReader, address: bytes) -> Account | None:
    return load(kv, keys.account(address), Account)
