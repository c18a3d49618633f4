"""A peer's gossiped batch of forged txs costs it one penalty, not one per tx."""

from __future__ import annotations

from test_replica_pending_txs import ALICE, BOB, Host, of, transfer

from protocol.replica import Penalise, TxAdmitted, TxsReceived
from protocol.types import Tx


def forged(tx: Tx) -> Tx:
    return Tx(tx.chain_id, tx.sender, tx.nonce, tx.kind, tx.body, tx.cosignatures, bytes(64))


def test_a_batch_with_forged_txs_is_one_penalty_and_the_valid_ones_still_count():
    host = Host()
    host.boot()
    batch = [forged(transfer(ALICE, 0)), transfer(BOB, 0), forged(transfer(ALICE, 0, amount=6)),
             forged(transfer(ALICE, 0, amount=7))]
    out = host.feed(TxsReceived(host.clock, batch, "peer-9"))
    assert [a.accepted for a in of(out, TxAdmitted)] == [False, True, False, False]
    [penalty] = of(out, Penalise)
    assert penalty.origin == "peer-9" and "3 tx(s) with a bad signature" in penalty.reason


def test_a_clean_batch_costs_nothing():
    host = Host()
    host.boot()
    out = host.feed(TxsReceived(host.clock, [transfer(ALICE, 0), transfer(ALICE, 5)], "peer-9"))
    assert of(out, Penalise) == []  # a nonce gap is no offence: gossip reorders
