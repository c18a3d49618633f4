"""VerifyCache: counts hits and misses, holds at most `capacity` successes (least
recently used out first), never stores a failure, and never lets a cached success
stand in for a different chain, kind, payload or signature."""

from __future__ import annotations

from protocol_strategies import key

from protocol import crypto
from protocol.types import Tx, Vote, VoteType

K = key(4)


def signed(payload: bytes, chain: str = "c", kind: str = "tx") -> tuple[bytes, str, str, bytes, bytes]:
    return (K.public_key, chain, kind, payload, K.sign(chain, kind, payload))


def test_hits_and_misses_are_counted() -> None:
    cache = crypto.VerifyCache()
    msg = signed(b"one")
    assert crypto.verify(*msg, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)
    assert crypto.verify(*msg, cache=cache)
    assert crypto.verify(*msg, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 1)


def test_failures_are_not_cached() -> None:
    cache = crypto.VerifyCache()
    pubkey, chain, kind, payload, sig = signed(b"one")
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    for _ in range(3):
        assert not crypto.verify(pubkey, chain, kind, payload, bad, cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 0)


def test_capacity_is_a_bound_and_the_least_recently_used_goes_first() -> None:
    cache = crypto.VerifyCache(capacity=3)
    msgs = [signed(bytes([i])) for i in range(5)]
    for m in msgs[:3]:
        assert crypto.verify(*m, cache=cache)
    assert crypto.verify(*msgs[0], cache=cache)  # a hit: msgs[0] becomes the most recent
    for m in msgs[3:]:
        assert crypto.verify(*m, cache=cache)
    assert len(cache) == 3
    hits = cache.hits
    assert crypto.verify(*msgs[0], cache=cache)  # kept
    assert cache.hits == hits + 1
    misses = cache.misses
    assert crypto.verify(*msgs[1], cache=cache)  # evicted: verified again
    assert cache.misses == misses + 1
    assert len(cache) == 3


def test_zero_capacity_keeps_nothing() -> None:
    cache = crypto.VerifyCache(capacity=0)
    msg = signed(b"x")
    assert crypto.verify(*msg, cache=cache) and crypto.verify(*msg, cache=cache)
    assert (cache.hits, len(cache)) == (0, 0)


def test_a_cached_success_does_not_cover_another_chain_kind_payload_or_signature() -> None:
    cache = crypto.VerifyCache()
    pubkey, chain, kind, payload, sig = signed(b"payload")
    assert crypto.verify(pubkey, chain, kind, payload, sig, cache)
    assert not crypto.verify(pubkey, "other", kind, payload, sig, cache)
    assert not crypto.verify(pubkey, chain, "vote", payload, sig, cache)
    assert not crypto.verify(pubkey, chain, kind, payload + b"!", sig, cache)
    assert not crypto.verify(pubkey, chain, kind, payload, bytes(64), cache)
    assert not crypto.verify(key(5).public_key, chain, kind, payload, sig, cache)
    assert (cache.hits, len(cache)) == (0, 1)


def test_transactions_use_the_cache_for_every_signature() -> None:
    cache = crypto.VerifyCache()
    tx = Tx.create(key(1), "c", 1, "k", b"", (key(2), key(3)))
    assert tx.verify_signatures(cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 3)
    copy = Tx.decode(tx.encode())  # another instance of the same tx, as a peer's block holds
    assert copy.verify_signatures(cache)
    assert (cache.hits, cache.misses) == (3, 3)


def test_an_instance_remembers_its_own_successful_check_for_that_chain_only() -> None:
    cache = crypto.VerifyCache()
    tx = Tx.create(key(1), "c", 1, "k", b"", (key(2),))
    assert tx.verify_signatures(cache)
    assert tx.verify_signatures(cache)
    assert (cache.hits, cache.misses) == (0, 2)  # the second check asked nothing of the cache
    vote = Vote.create(key(1), "c", VoteType.PREVOTE, 1, 0, bytes(32), 5)
    assert vote.verify("c", cache)
    assert not vote.verify("other", cache)  # the memo names the chain it was checked for
    assert vote.verify("c", cache)


def test_a_failed_check_is_not_remembered_by_the_instance() -> None:
    good = Tx.create(key(1), "c", 1, "k", b"")
    forged = Tx(good.chain_id, good.sender, good.nonce, good.kind, b"x", (), good.signature)
    assert not forged.verify_signatures()
    assert not forged.verify_signatures()
