"""A peer's gossiped batch of forged txs costs it one penalty, not one per tx; txs
that are well signed but cannot succeed (unpayable transfers) are refused without one."""

from __future__ import annotations

from test_replica_pending_txs import ALICE, BOB, Host, of, transfer

from protocol import crypto
from protocol.replica import Penalise, PersistPendingTxs, TxAdmitted, TxsReceived
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


BROKE = [crypto.Keypair(bytes([40 + i]) * 32) for i in range(20)]  # no genesis balance


def test_a_batch_of_unpayable_transfers_is_refused_without_a_penalty():
    host = Host()
    host.boot()
    batch = [transfer(k, 0) for k in BROKE]
    out = host.feed(TxsReceived(host.clock, batch, "peer-9"))
    acks = of(out, TxAdmitted)
    assert len(acks) == len(BROKE) and not any(a.accepted for a in acks)
    assert all(a.reason.startswith("insufficient funds: needs 5 spendable tokens, has 0") for a in acks)
    assert of(out, Penalise) == []  # well signed: not a forgery, only useless
    assert len(host.replica.mempool) == 0


def test_unpayable_forged_and_valid_txs_in_one_batch():
    host = Host()
    host.boot()
    batch = [transfer(BROKE[0], 0), forged(transfer(ALICE, 0)), transfer(BOB, 0), transfer(BROKE[1], 0)]
    out = host.feed(TxsReceived(host.clock, batch, "peer-9"))
    assert [a.accepted for a in of(out, TxAdmitted)] == [False, False, True, False]
    [penalty] = of(out, Penalise)
    assert "1 tx(s) with a bad signature" in penalty.reason  # the forgery only


def test_an_unpayable_local_submission_is_refused_and_not_stored():
    host = Host()
    host.boot()
    out = host.submit([transfer(BROKE[0], 0), transfer(ALICE, 0, amount=1_000_001), transfer(ALICE, 0)])
    assert [a.accepted for a in of(out, TxAdmitted)] == [False, False, True]
    [persist] = of(out, PersistPendingTxs)
    assert [tx.sender for tx in persist.txs] == [ALICE.public_key]
    assert of(out, Penalise) == []
