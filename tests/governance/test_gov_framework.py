"""apply_block's contract: block checks, the tx admission pipeline, nonces, fees,
write sets, the app hash, check_tx, and transfers."""

from __future__ import annotations

import pytest
from gov_helpers import CHAIN, OUTSIDER, PEOPLE, TREASURY, VALIDATORS, Chain, genesis, kp, ok

from protocol import codec
from protocol.errors import ValidationError
from protocol.governance import Code, app_hash, apply_block, check_tx, keys, queries
from protocol.governance.accounts import Transfer
from protocol.governance.apphash import chain as hash_chain
from protocol.governance.context import Event
from protocol.governance.notary import Notarise
from protocol.kv import MemoryKV
from protocol.types import ZERO_HASH, CoSignature, Tx, make_block

A, B = PEOPLE[0], PEOPLE[1]


def transfer(to: bytes, amount: int, memo: str = "") -> Transfer:
    return Transfer(to, amount, memo)


def test_transfer_moves_tokens_and_consumes_the_nonce() -> None:
    c = Chain()
    ok(c.run(A.key, "transfer", transfer(B.address, 250)))
    assert queries.account(c.state, A.address).balance == 1_000_000 - 250
    assert queries.account(c.state, B.address).balance == 1_000_000 + 250
    assert queries.account_nonce(c.state, A.pub) == 1


def test_a_transfer_event_reads_as_hex_and_decimal_text() -> None:
    c = Chain()
    [ev] = ok(c.run(A.key, "transfer", transfer(B.address, 250))).events
    assert ev.type == "transfer"
    assert ev.attrs == (("sender", A.address.hex()), ("to", B.address.hex()), ("amount", "250"))
    assert ev.get("to") == B.address.hex() and ev.get("memo") is None
    assert ev == Event("transfer", (("sender", A.address.hex()), ("to", B.address.hex()), ("amount", "250")))
    assert len({ev, Event("transfer", tuple(ev.attrs))}) == 1


def test_transfer_to_a_new_address_creates_the_account() -> None:
    c = Chain()
    fresh = kp(777).address
    ok(c.run(A.key, "transfer", transfer(fresh, 9)))
    assert queries.account(c.state, fresh).balance == 9


def test_transfer_to_self_changes_nothing_but_the_nonce() -> None:
    c = Chain()
    ok(c.run(A.key, "transfer", transfer(A.address, 10)))
    acct = queries.account(c.state, A.address)
    assert (acct.balance, acct.nonce) == (1_000_000, 1)


@pytest.mark.parametrize(
    ("amount", "code"),
    [(0, Code.INVALID), (1_000_001, Code.INSUFFICIENT_FUNDS), (1_000_000, Code.OK)],
)
def test_transfer_amount_rules(amount: int, code: Code) -> None:
    c = Chain()
    r = c.run(A.key, "transfer", transfer(B.address, amount))
    assert r.code == code
    assert queries.account_nonce(c.state, A.pub) == 1  # consumed either way


def test_a_failed_tx_changes_nothing_but_nonce() -> None:
    c = Chain()
    before = {k: v for k, v in c.state.scan(b"") if not k.startswith(b"m/")}
    r = c.run(A.key, "transfer", transfer(B.address, 10**9))
    assert r.code == Code.INSUFFICIENT_FUNDS and "spendable" in r.reason
    after = {k: v for k, v in c.state.scan(b"") if not k.startswith(b"m/")}
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == {keys.account(A.address)}
    assert queries.account(c.state, A.address).balance == 1_000_000


def test_replayed_tx_is_rejected_without_state_change() -> None:
    c = Chain()
    tx = c.tx(A.key, "transfer", transfer(B.address, 1))
    ok(c.block(tx).tx_results[0])
    r = c.block(tx).tx_results[0]
    assert r.code == Code.BAD_NONCE
    assert queries.account(c.state, B.address).balance == 1_000_001
    assert queries.account_nonce(c.state, A.pub) == 1


def test_same_tx_twice_in_one_block_executes_once() -> None:
    c = Chain()
    tx = c.tx(A.key, "transfer", transfer(B.address, 1))
    res = c.block(tx, tx)
    assert [r.code for r in res.tx_results] == [Code.OK, Code.BAD_NONCE]


def test_future_nonce_is_rejected_in_a_block() -> None:
    c = Chain()
    r = c.run(A.key, "transfer", transfer(B.address, 1), nonce=5)
    assert r.code == Code.BAD_NONCE
    assert queries.account_nonce(c.state, A.pub) == 0


def test_wrong_chain_id_is_rejected() -> None:
    c = Chain()
    r = c.run(A.key, "transfer", transfer(B.address, 1), chain_id="other-chain")
    assert r.code == Code.WRONG_CHAIN
    assert queries.account_nonce(c.state, A.pub) == 0


def test_bad_signature_is_rejected() -> None:
    c = Chain()
    good = c.tx(A.key, "transfer", transfer(B.address, 1))
    forged = Tx(good.chain_id, good.sender, good.nonce, good.kind, good.body, (), bytes(64))
    r = c.block(forged).tx_results[0]
    assert r.code == Code.BAD_SIGNATURE
    assert queries.account_nonce(c.state, A.pub) == 0


def test_stripped_cosignature_breaks_the_signature() -> None:
    c = Chain()
    tx = c.tx(A.key, "transfer", transfer(B.address, 1), cosigners=(B.key,))
    bad = Tx(tx.chain_id, tx.sender, tx.nonce, tx.kind, tx.body, (CoSignature(B.pub, bytes(64)),), tx.signature)
    assert c.block(bad).tx_results[0].code == Code.BAD_SIGNATURE


def test_unknown_kind_and_bad_body_fail_at_execution_and_consume_the_nonce() -> None:
    c = Chain()
    assert c.run(A.key, "mint", transfer(A.address, 1)).code == Code.UNKNOWN_KIND
    assert c.run(A.key, "transfer", codec.pack([1, 2])).code == Code.BAD_BODY
    assert c.run(A.key, "transfer", transfer(B.address, 1), cosigners=(B.key,)).code == Code.BAD_BODY
    assert queries.account_nonce(c.state, A.pub) == 3


def test_fee_goes_to_the_treasury_even_when_execution_fails() -> None:
    g = genesis(params={"fee": 7})
    c = Chain(g)
    ok(c.run(A.key, "transfer", transfer(B.address, 3)))
    assert c.run(A.key, "transfer", transfer(B.address, 0)).code == Code.INVALID
    assert queries.account(c.state, A.address).balance == 1_000_000 - 3 - 14
    assert queries.supply(c.state).treasury == TREASURY + 14


def test_fee_unpaid_is_an_admission_failure() -> None:
    c = Chain(genesis(params={"fee": 7}))
    poor = kp(4242)
    r = c.run(poor, "notary.notarise", Notarise(bytes(32), ""))
    assert r.code == Code.FEE_UNPAID
    assert queries.account(c.state, poor.address).nonce == 0


def test_block_must_follow_the_state() -> None:
    c = Chain()
    kw = {
        "prev_hash": ZERO_HASH,
        "app_hash": ZERO_HASH,
        "validators_hash": ZERO_HASH,
        "proposer": VALIDATORS[0].public_key,
    }
    with pytest.raises(ValidationError, match="height"):
        apply_block(c.state, make_block(chain_id=CHAIN, height=2, time_ms=c.time + 1, **kw))
    with pytest.raises(ValidationError, match="chain"):
        apply_block(c.state, make_block(chain_id="x", height=1, time_ms=c.time + 1, **kw))
    with pytest.raises(ValidationError, match="time"):
        apply_block(c.state, make_block(chain_id=CHAIN, height=1, time_ms=c.time - 1, **kw))


def test_write_set_is_sorted_and_self_describing() -> None:
    c = Chain()
    res = c.block(c.tx(A.key, "transfer", transfer(B.address, 1)))
    ks = [k for k, _ in res.write_set]
    assert ks == sorted(ks) and len(ks) == len(set(ks))
    ws = dict(res.write_set)
    assert ws[keys.META_HEIGHT] == keys.u64(1)
    assert ws[keys.META_APP_HASH] == res.app_hash == app_hash(c.state)


def test_app_hash_is_a_chain_over_write_sets_and_changes_every_block() -> None:
    c = Chain()
    hashes = [app_hash(c.state)]
    for _ in range(3):
        prev = app_hash(c.state)
        res = c.block()
        assert res.app_hash == hash_chain(prev, res.height, res.write_set)
        hashes.append(res.app_hash)
    assert len(set(hashes)) == 4


def test_apply_block_does_not_write_to_the_state_it_reads() -> None:
    c = Chain()
    snapshot = list(c.state.scan(b""))
    blk = make_block(
        chain_id=CHAIN,
        height=1,
        time_ms=c.time + 5,
        prev_hash=ZERO_HASH,
        app_hash=app_hash(c.state),
        validators_hash=ZERO_HASH,
        proposer=VALIDATORS[0].public_key,
        txs=(c.tx(A.key, "transfer", transfer(B.address, 1)),),
    )
    first = apply_block(c.state, blk)
    assert list(c.state.scan(b"")) == snapshot
    assert apply_block(c.state, blk) == first


def test_two_fresh_states_agree() -> None:
    one, two = Chain(), Chain()
    for ch in (one, two):
        ch.block(ch.tx(A.key, "transfer", transfer(B.address, 5)), ch.tx(B.key, "transfer", transfer(A.address, 2)))
        ch.block()
    assert app_hash(one.state) == app_hash(two.state)
    assert list(one.state.scan(b"")) == list(two.state.scan(b""))


def test_different_txs_give_different_app_hashes() -> None:
    one, two = Chain(), Chain()
    one.block(one.tx(A.key, "transfer", transfer(B.address, 5)))
    two.block(two.tx(A.key, "transfer", transfer(B.address, 6)))
    assert app_hash(one.state) != app_hash(two.state)


# ---------------------------------------------------------------- check_tx


def test_check_tx_admits_a_valid_tx_and_a_future_nonce() -> None:
    c = Chain()
    assert check_tx(c.state, c.tx(A.key, "transfer", transfer(B.address, 1))).ok
    assert check_tx(c.state, c.tx(A.key, "transfer", transfer(B.address, 1), nonce=9)).ok


def test_check_tx_rejections() -> None:
    c = Chain(genesis(params={"fee": 5}))
    ok(c.run(A.key, "transfer", transfer(B.address, 1)))
    good = c.tx(A.key, "transfer", transfer(B.address, 1))
    cases = {
        Code.WRONG_CHAIN: c.tx(A.key, "transfer", transfer(B.address, 1), chain_id="nope"),
        Code.UNKNOWN_KIND: c.tx(A.key, "nope", transfer(B.address, 1)),
        Code.BAD_BODY: c.tx(A.key, "transfer", b"\x90"),
        Code.BAD_SIGNATURE: Tx(good.chain_id, good.sender, good.nonce, good.kind, good.body, (), bytes(64)),
        Code.BAD_NONCE: c.tx(A.key, "transfer", transfer(B.address, 1), nonce=0),
        Code.FEE_UNPAID: c.tx(kp(31337), "transfer", transfer(B.address, 1)),
    }
    for code, tx in cases.items():
        assert check_tx(c.state, tx, c.cache).code == code, code


def test_locked_tokens_are_not_spendable() -> None:
    from protocol.governance.accounts import add_lock
    from protocol.kv import Overlay

    c = Chain()
    ov = Overlay(c.state)
    add_lock(ov, OUTSIDER.address, 1, 600_000)
    store = MemoryKV()
    store.apply(list(c.state.scan(b"")) + ov.write_set())
    c.state = store
    r = c.run(OUTSIDER.key, "transfer", transfer(A.address, 400_001))
    assert r.code == Code.INSUFFICIENT_FUNDS and "600000 locked" in r.reason
    ok(c.run(OUTSIDER.key, "transfer", transfer(A.address, 400_000)))


def test_reasons_fit_the_node_info_field() -> None:
    c = Chain()
    r = c.run(A.key, "ü" * 32, transfer(B.address, 1))
    assert r.code == Code.UNKNOWN_KIND and r.reason.startswith("unknown tx kind")
    from protocol.governance.codes import MAX_REASON, clip

    long = clip("é" * 1000)
    assert len(long.encode()) <= MAX_REASON and long.endswith("…")


def test_write_set_digest_is_unambiguous() -> None:
    from protocol.governance.apphash import write_set_digest

    variants = [
        [(b"ab", b"c")],
        [(b"a", b"bc")],
        [(b"ab", b"")],
        [(b"ab", None)],
        [(b"ab", b"c"), (b"b", None)],
        [],
    ]
    digests = {write_set_digest(v) for v in variants}
    assert len(digests) == len(variants)
    assert write_set_digest([(keys.META_APP_HASH, b"x")]) == write_set_digest([])
