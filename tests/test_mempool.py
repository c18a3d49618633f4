"""Mempool admission, ordering, reaping and recheck, driven directly (no IO)."""

from protocol import crypto
from protocol.mempool import Mempool, MempoolLimits
from protocol.types import Tx

CHAIN = "test-chain"
KEYS = [crypto.Keypair(bytes([i + 1]) * 32) for i in range(4)]


class Chain:
    """Committed nonces, as the governance state would report them."""

    def __init__(self):
        self.nonces: dict[bytes, int] = {}
        self.refuse: set[bytes] = set()

    def nonce(self, sender: bytes) -> int:
        return self.nonces.get(sender, 0)

    def commit(self, txs):
        for tx in txs:
            self.nonces[tx.sender] = tx.nonce + 1


def stateless(tx: Tx) -> str | None:
    if tx.chain_id != CHAIN:
        return "wrong chain id"
    return None if tx.verify_signatures() else "bad signature"


def make_pool(chain: Chain, **limits) -> Mempool:
    return Mempool(
        stateless_check=stateless,
        stateful_check=lambda tx: "refused by state" if tx.hash in chain.refuse else None,
        account_nonce=chain.nonce,
        limits=MempoolLimits(**limits),
    )


def tx(k: int, nonce: int, body: bytes = b"\x90", chain: str = CHAIN) -> Tx:
    return Tx.create(KEYS[k], chain, nonce, "transfer", body)


def test_accepts_contiguous_nonces_and_refuses_gaps_and_replays():
    pool = make_pool(Chain())
    assert pool.add(tx(0, 0)).accepted
    assert pool.add(tx(0, 1)).accepted
    gap = pool.add(tx(0, 3))
    assert not gap.accepted and "not the next one (2)" in gap.reason
    old = pool.add(tx(0, 0, body=b"\x91\x01"))
    assert not old.accepted and "nonce 0" in old.reason
    assert len(pool) == 2


def test_duplicates_die_even_after_the_tx_was_committed():
    chain = Chain()
    pool = make_pool(chain)
    t = tx(1, 0)
    assert pool.add(t).accepted
    assert pool.add(t).reason == "duplicate transaction"
    chain.commit([t])
    pool.update([t])
    assert len(pool) == 0
    assert pool.add(t).reason == "duplicate transaction"


def test_bad_signature_and_wrong_chain_are_refused_with_reasons():
    pool = make_pool(Chain())
    good = tx(0, 0)
    forged = Tx(good.chain_id, KEYS[1].public_key, 0, good.kind, good.body, (), good.signature)
    assert pool.add(forged).reason == "bad signature"
    assert pool.add(tx(0, 0, chain="other")).reason == "wrong chain id"
    assert len(pool) == 0


def test_stateful_refusal_is_reported():
    chain = Chain()
    t = tx(2, 0)
    chain.refuse.add(t.hash)
    pool = make_pool(chain)
    assert pool.add(t).reason == "refused by state"
    # not remembered as seen: once the state lets it pass (the sender was funded, say),
    # the same tx is admitted
    chain.refuse.clear()
    assert pool.add(t).accepted


def test_caps_on_count_bytes_and_per_sender():
    pool = make_pool(Chain(), max_txs=3, max_per_sender=2)
    assert pool.add(tx(0, 0)).accepted and pool.add(tx(0, 1)).accepted
    assert "pending transactions" in pool.add(tx(0, 2)).reason
    assert pool.add(tx(1, 0)).accepted
    assert pool.add(tx(2, 0)).reason == "mempool is full; retry later"
    one = len(tx(3, 0).encode())
    small = make_pool(Chain(), max_bytes=one)
    assert small.add(tx(3, 0)).accepted
    assert small.add(tx(2, 0)).reason == "mempool is full; retry later"


def test_refuses_everything_while_syncing():
    pool = make_pool(Chain())
    pool.syncing = True
    assert "syncing" in pool.add(tx(0, 0)).reason
    pool.syncing = False
    assert pool.add(tx(0, 0)).accepted


def test_reap_is_round_robin_across_senders_and_in_nonce_order():
    pool = make_pool(Chain())
    for n in range(3):
        assert pool.add(tx(0, n)).accepted
    for n in range(2):
        assert pool.add(tx(1, n)).accepted
    reaped = pool.reap(max_bytes=10**9, max_txs=100)
    assert [(KEYS.index(next(k for k in KEYS if k.public_key == t.sender)), t.nonce) for t in reaped] == [
        (0, 0), (1, 0), (0, 1), (1, 1), (0, 2),
    ]
    assert len(pool.reap(max_bytes=10**9, max_txs=2)) == 2
    assert len(pool) == 5  # reaping does not remove


def test_reap_respects_the_byte_budget_without_breaking_nonce_order():
    pool = make_pool(Chain())
    assert pool.add(tx(0, 0, body=b"\xc4\x40" + bytes(64))).accepted  # the bigger tx
    assert pool.add(tx(0, 1)).accepted
    assert pool.add(tx(1, 0)).accepted
    small = len(tx(1, 0).encode())
    reaped = pool.reap(max_bytes=small, max_txs=10)
    assert [(t.sender, t.nonce) for t in reaped] == [(KEYS[1].public_key, 0)]


def test_update_evicts_txs_the_chain_has_passed():
    chain = Chain()
    pool = make_pool(chain)
    for n in range(3):
        assert pool.add(tx(0, n)).accepted
    # Another node's tx with nonce 0 and 1 (different bodies) got committed instead.
    others = [tx(0, 0, body=b"\x91\x07"), tx(0, 1, body=b"\x91\x08")]
    chain.commit(others)
    evicted = pool.update(others)
    assert evicted == 2
    assert [t.nonce for t in pool.reap(10**9, 10)] == [2]
    assert pool.pending_nonce(KEYS[0].public_key) == 3
    assert pool.size_bytes == len(tx(0, 2).encode())


def test_only_this_nodes_own_submissions_are_reoffered_when_they_stay_pending():
    pool = make_pool(Chain())
    mine = [tx(0, 0), tx(0, 1)]
    for t in mine:
        assert pool.add(t, 1_000, local=True).accepted
    assert pool.add(tx(1, 0), 1_000).accepted  # from a peer: its origin re-offers it
    assert pool.stale(2_000, 3_000, 100) == []  # not old enough yet
    assert pool.stale(4_000, 3_000, 100) == mine
    assert pool.stale(4_500, 3_000, 100) == []  # marked offered at 4,000
    assert pool.stale(7_000, 3_000, 1) == mine[:1]  # at most `limit` per call


def test_the_seen_cache_remembers_the_last_txs_within_its_bound():
    from protocol.mempool import _Recent

    recent = _Recent(capacity=10)
    keys = [bytes([i]) * 32 for i in range(40)]
    for i, k in enumerate(keys):
        recent.add(k)
        assert k in recent
        # The last capacity/2 always stay; never more than capacity are held.
        assert all(keys[j] in recent for j in range(max(0, i - 4), i + 1))
        assert len(recent) <= 10
    assert keys[0] not in recent and keys[25] not in recent
    recent.add(keys[39])  # adding again counts once
    assert len(recent) <= 10


def test_a_committed_tx_echoed_later_is_still_a_duplicate_within_the_bound():
    chain = Chain()
    pool = make_pool(chain, seen_cache=4)
    t = tx(2, 0)
    assert pool.add(t).accepted
    chain.commit([t])
    pool.update([t])
    assert pool.add(t).reason == "duplicate transaction"
    # Four more txs pass through: the echo's hash has aged out of the bound, and the
    # nonce check (committed state) refuses it instead.
    later = [tx(3, n) for n in range(4)]
    for x in later:
        assert pool.add(x).accepted
    chain.commit(later)
    pool.update(later)
    again = pool.add(t)
    assert not again.accepted and "nonce 0" in again.reason
