"""The invariant checker notices damage (so the property tests can fail)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gov_helpers import OUTSIDER, PEOPLE, Chain, new, open_voting, vote

from protocol.errors import InvariantViolation
from protocol.governance import invariants, keys
from protocol.governance.accounts import Account
from protocol.governance.actions import ActionType, ChangeParams
from protocol.governance.proposals import Choice
from protocol.kv import MemoryKV


def voting_chain() -> tuple[Chain, int]:
    c = Chain()
    pid = new(c, ActionType.CHANGE_PARAMS, ChangeParams(1, None, None, None, None, ()))
    open_voting(c, pid)
    vote(c, pid, (OUTSIDER, Choice.YES), (PEOPLE[1], Choice.NO))
    invariants.check(c.state, c.genesis.total_supply)
    return c, pid


def bump_balance(kv: MemoryKV, pid: int) -> None:
    a = Account.decode(kv.get(keys.account(PEOPLE[3].address)) or b"")
    kv.apply([(keys.account(PEOPLE[3].address), Account(a.balance + 1, a.locked, a.nonce, None).encode())])


def drop_lock(kv: MemoryKV, pid: int) -> None:
    kv.apply([(keys.lock(OUTSIDER.address, pid), None)])


def drop_queue_entry(kv: MemoryKV, pid: int) -> None:
    kv.apply([(k, None) for k, _ in kv.scan(keys.QUEUE)])


def wrong_resident_count(kv: MemoryKV, pid: int) -> None:
    kv.apply([(keys.META_RESIDENTS, keys.u64(99))])


def drop_tally(kv: MemoryKV, pid: int) -> None:
    kv.apply([(keys.tally(pid), None)])


def drop_article(kv: MemoryKV, pid: int) -> None:
    kv.apply([(keys.article(2), None)])


@pytest.mark.parametrize(
    "damage", [bump_balance, drop_lock, drop_queue_entry, wrong_resident_count, drop_tally, drop_article]
)
def test_damage_is_detected(damage: Callable[[MemoryKV, int], None]) -> None:
    c, pid = voting_chain()
    damage(c.state, pid)
    with pytest.raises(InvariantViolation):
        invariants.check(c.state, c.genesis.total_supply)
