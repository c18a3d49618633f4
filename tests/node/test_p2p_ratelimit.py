"""Per-peer rate limits: the token buckets with a fake clock, the defaults against honest
traffic, and the limits at work in real py-libp2p hosts (gossip and requests)."""

from __future__ import annotations

import os

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from test_p2p import CHAIN, cluster, echo, pending, recv, until

from node.config import ConfigError, P2PSection
from node.p2p import (
    GossipMessage,
    IncomingChannel,
    Limit,
    Network,
    Rate,
    RateLimits,
    RemoteError,
    ReqRespLimits,
    TopicKind,
    rate_limits_from,
    topic_name,
)
from node.p2p.config import DEFAULT_PENALTIES
from node.p2p.ratelimit import UNLIMITED, PeerRateLimiter
from node.p2p.scores import PeerScores, ScoreParams

MSGS = "txs"


def limiter(msgs: Rate, nbytes: Rate = UNLIMITED, interval: float = 1.0) -> PeerRateLimiter:
    return PeerRateLimiter({MSGS: Limit(msgs, nbytes)}, penalty_interval=interval)


# ------------------------------------------------------------------ buckets


def test_a_burst_passes_then_the_rate_refills():
    lim = limiter(Rate(10, 5))
    assert [lim.admit("p", MSGS, 1, now=0) for _ in range(6)] == [True] * 5 + [False]
    assert not lim.admit("p", MSGS, 1, now=0.05)  # half a token
    assert lim.admit("p", MSGS, 1, now=0.1) and not lim.admit("p", MSGS, 1, now=0.1)
    assert [lim.admit("p", MSGS, 1, now=100) for _ in range(6)] == [True] * 5 + [False]  # capped at the burst
    assert lim.admit("q", MSGS, 1, now=0)  # each peer has its own buckets


def test_messages_and_bytes_are_taken_both_or_neither():
    lim = limiter(Rate(1, 3), Rate(100, 1000))
    assert lim.admit("p", MSGS, 900, now=0)
    assert not lim.admit("p", MSGS, 200, now=0)  # bytes short: the message token is not spent
    assert lim.admit("p", MSGS, 100, now=0) and lim.admit("p", MSGS, 0, now=0)
    assert not lim.admit("p", MSGS, 0, now=0)  # messages short
    assert not lim.admit("p", MSGS, 100, now=0.5)  # half a message token, 50 bytes
    assert lim.admit("p", MSGS, 100, now=1.0)


def test_unlimited_and_unknown_kinds_always_pass():
    lim = PeerRateLimiter({"free": Limit(), "bytes-only": Limit(bytes=Rate(10, 10))})
    assert all(lim.admit("p", "free", 10**9, now=0) for _ in range(1000))
    assert all(lim.admit("p", "other", 10**9, now=0) for _ in range(1000))
    assert all(lim.admit("p", "bytes-only", 0, now=0) for _ in range(1000))
    assert not lim.admit("p", "bytes-only", 11, now=0)
    assert lim.tracked() == 1


def test_penalties_are_paced_and_weighted_by_the_excess():
    lim = limiter(Rate(1, 1), interval=1.0)
    assert lim.admit("p", MSGS, 1, now=0)
    assert not lim.admit("p", MSGS, 1, now=0)
    assert lim.penalty_due("p", MSGS, now=0) == 1  # the first one weighs 1
    for now in (0.5, 0.5, 0.5, 0.5, 0.5, 0.9):
        assert not lim.admit("p", MSGS, 1, now=now)
        assert lim.penalty_due("p", MSGS, now=now) == 0  # paced: one per second
    assert lim.admit("p", MSGS, 1, now=1.0)  # a token is back
    assert not lim.admit("p", MSGS, 1, now=1.0)
    assert lim.penalty_due("p", MSGS, now=1.0) == pytest.approx(7)  # 7 refused in 1 s at 1/s
    for _ in range(100):
        lim.admit("p", MSGS, 1, now=3.0)
    assert lim.penalty_due("p", MSGS, now=3.0) == pytest.approx(10)  # capped
    lim.admit("p", MSGS, 1, now=5.5)  # one refused in 2.5 s: under the rate, still at least 1
    assert lim.penalty_due("p", MSGS, now=5.5) == pytest.approx(1)
    assert lim.penalty_due("unknown", MSGS, now=9) == 0


def test_prune_forgets_only_peers_whose_buckets_are_full_again():
    lim = limiter(Rate(1, 4))
    lim.admit("idle", MSGS, 1, now=0)
    lim.admit("busy", MSGS, 1, now=0)
    lim.admit("busy", MSGS, 1, now=0.5)
    assert lim.prune(now=0.5) == 0 and lim.tracked() == 2  # idle: 3.5 tokens of 4
    assert lim.prune(now=1.0) == 1 and lim.tracked() == 1  # idle full, busy at 3
    # forgotten = full = what it would have had anyway: no decision changes
    assert [lim.admit("idle", MSGS, 1, now=1.0) for _ in range(5)] == [True] * 4 + [False]


def flood_until_banned(send_rate: float, seconds: float, limits: RateLimits) -> float | None:
    """A peer sends its own messages at `send_rate` for `seconds`; the network's penalty
    rule applied with the default penalty. Returns when it was banned (None: never)."""
    lim = PeerRateLimiter({MSGS: limits.txs}, penalty_interval=limits.penalty_interval)
    scores = PeerScores(ScoreParams())
    step = 1 / send_rate
    for i in range(int(seconds * send_rate)):
        now = i * step
        weight = 0.0 if lim.admit("p", MSGS, 200, now) else lim.penalty_due("p", MSGS, now)
        if weight and scores.penalise("p", "rate_limited", weight * DEFAULT_PENALTIES["rate_limited"], now):
            return now
    return None


def test_flooding_is_banned_sooner_the_harder_it_floods_a_burst_is_not():
    limits = RateLimits()
    rate = limits.txs.msgs.per_s
    drained = limits.txs.msgs.burst / (10 * rate - rate)  # when the bucket runs dry at 10x
    banned = flood_until_banned(10 * rate, 60, limits)
    assert banned is not None and drained + 1 <= banned <= drained + 2.1  # 10 + 90: two penalties
    banned = flood_until_banned(1.5 * rate, 60, limits)
    assert banned is not None and 19 <= banned <= 22  # the bucket lasts 10 s, then 10 penalties of 10
    assert flood_until_banned(0.99 * rate, 120, limits) is None  # just under the rate: forever fine
    assert flood_until_banned(5 * rate, 3, limits) is None  # a few seconds at 5x: 10 + 40, no ban


# ------------------------------------------------------------------ defaults


def test_config_section_defaults_are_the_network_defaults():
    assert rate_limits_from(P2PSection()) == RateLimits()
    section = P2PSection(peer_txs_msgs_per_s=0, peer_requests_per_s=7, peer_burst_s=2)
    limits = rate_limits_from(section)
    assert limits.txs.msgs.unlimited and limits.requests == Rate(7, 14)
    assert limits.consensus.bytes == Rate(4 * 1024 * 1024, 8 * 1024 * 1024)


def test_a_byte_budget_below_one_message_is_refused():
    with pytest.raises(ConfigError, match="peer_consensus_bytes_per_s"):
        P2PSection(peer_consensus_bytes_per_s=100_000, peer_burst_s=1)
    P2PSection(peer_consensus_bytes_per_s=0, peer_burst_s=1)  # 0: no limit
    assert RateLimits(txs=Limit(bytes=Rate(10, 10))).problems(1000)
    assert RateLimits(requests=Rate(-1, 1)).problems(1000)
    assert RateLimits().problems(512 * 1024) == []


def honest_testnet_gossip(seconds: float) -> dict[str, list[tuple[float, int]]]:
    """(time, size) of what one peer sends us in a 4-validator testnet at 2,000 tx/s.

    Consensus, everything (as a relay that won every race): a height every 0.5 s
    (min_block_interval_ms), a 496 KiB proposal and 4 + 4 votes; every fifth second a
    round change (another proposal and 8 votes). Txs, its own (what a peer can be
    penalised for): a quarter of the load (500 tx/s) in a batch every 50 ms
    (mempool.batch_ms), plus a re-gossip batch of 2,000 stale txs every second (replica
    REGOSSIP_MAX, the most an overloaded node sends); 154-byte transfers.
    """
    out: dict[str, list[tuple[float, int]]] = {"consensus": [], "txs": []}
    t = 0.0
    while t < seconds:
        out["consensus"] += [(t, 496 * 1024)] + [(t + 0.1, 120)] * 8
        if int(t * 2) % 10 == 9:
            out["consensus"] += [(t + 0.3, 496 * 1024)] + [(t + 0.4, 120)] * 8
        t += 0.5
    t = 0.0
    while t < seconds:
        out["txs"].append((t, int(500 * 154 * 0.05) + 64))
        if int(t * 20) % 20 == 0:
            out["txs"].append((t, 2000 * 154 + 64))
        t += 0.05
    for msgs in out.values():
        msgs.sort()
    return out


def test_honest_testnet_traffic_never_hits_the_default_limits():
    limits = RateLimits()
    lim = PeerRateLimiter({"txs": limits.txs, "consensus": limits.consensus})
    traffic = honest_testnet_gossip(120)
    for kind, msgs in traffic.items():
        refused = [m for m in msgs if not lim.admit("peer", kind, m[1], m[0])]
        assert refused == [], f"{kind}: {len(refused)} of {len(msgs)} honest messages refused"
    # with a margin: twice that would still pass on average
    for kind, msgs in traffic.items():
        per_s = len(msgs) / 120
        bytes_per_s = sum(size for _, size in msgs) / 120
        limit = getattr(limits, kind)
        assert 2 * per_s < limit.msgs.per_s and 2 * bytes_per_s < limit.bytes.per_s, (kind, per_s, bytes_per_s)


# ------------------------------------------------------------------ real hosts

TINY = Rate(1e-6, 5)  # five messages, then (practically) nothing: counts are exact
ONE_PENALTY = 1e6  # penalty pacing interval: one penalty per test


def test_the_incoming_channel_is_bounded_in_bytes_too():
    ch = IncomingChannel(max_messages=10, max_bytes=1000)
    msg = GossipMessage(TopicKind.TXS, b"x" * 400, "origin", b"")
    ch.offer(msg)
    ch.offer(msg)
    with pytest.raises(trio.WouldBlock):
        ch.offer(msg)  # 1,200 bytes > 1,000
    assert ch.receive_nowait() is msg and ch.queued_bytes == 400
    ch.offer(msg)
    assert ch.queued_bytes == 800


async def test_messages_beyond_the_incoming_byte_bound_are_dropped_and_counted():
    async with cluster(2, configs=[{}, {"incoming_buffer_bytes": 10_000}], max_gossip_bytes=4096) as (a, b):
        for i in range(4):
            assert await a.publish("txs", bytes([i]) * 3000)
        await until(lambda: b.stats()["gossip_received"] + b.stats()["gossip_dropped"] == 4)
        assert b.stats()["gossip_dropped"] == 1
        assert [m[0] for m in pending(b, "txs")] == [0, 1, 2]
        assert await a.publish("txs", b"\x04" * 3000)  # room again once the node has read
        assert (await recv(b, "txs"))[0] == 4


async def test_a_flooding_peer_has_the_excess_dropped_and_is_penalised():
    lim = RateLimits(txs=Limit(TINY), penalty_interval=ONE_PENALTY)
    async with cluster(2, configs=[{}, {"rate_limits": lim}]) as (a, b):
        assert b._pubsub is not None
        manager = b._pubsub.manager
        assert "run_task" in vars(manager)  # the check sits where py-libp2p spawns a task per message
        tasks_before = manager._total_task_count
        for i in range(20):
            assert await a.publish("txs", b"flood-%d" % i)
        await until(lambda: b.stats()["gossip_rate_limited"] == 15)
        assert manager._total_task_count - tasks_before < 15  # the dropped ones never became tasks
        assert [await recv(b, "txs") for _ in range(5)] == [b"flood-%d" % i for i in range(5)]
        assert pending(b, "txs") == []
        assert b.scores()[a.peer_id]["reasons"] == {"rate_limited": 1}
        assert not b.is_banned(a.peer_id)
        # the other topic has its own budget; our own publishes are never limited
        assert await a.publish("consensus", b"vote")
        assert await recv(b, "consensus") == b"vote"
        for i in range(10):
            assert await b.publish("txs", b"own-%d" % i)
        assert [await recv(a, "txs") for _ in range(10)] == [b"own-%d" % i for i in range(10)]


async def test_sustained_flooding_ends_in_a_ban_and_a_disconnect():
    lim = RateLimits(txs=Limit(TINY), penalty_interval=0.001)
    async with cluster(2, configs=[{}, {"rate_limits": lim}]) as (a, b):
        for i in range(40):  # 35 over the limit: a penalty of 10 each, paced by 1 ms
            if a.peer_id not in b.peers():
                break
            await a.publish("txs", b"flood-%d" % i)
            await trio.sleep(0.002)
        await b.wait_for_disconnect(a.peer_id)
        assert b.is_banned(a.peer_id) and b.stats()["peers_banned"] == 1
        assert set(b.scores()[a.peer_id]["reasons"]) == {"rate_limited"}


async def test_a_relay_over_the_limit_is_dropped_but_not_penalised():
    """c floods; b relays it to a. a's limit for b drops the excess, but b is honest (the
    messages are c's), so a does not penalise it."""
    lim = RateLimits(txs=Limit(TINY), penalty_interval=ONE_PENALTY)
    async with cluster(3, configs=[{"rate_limits": lim}, {}, {}]) as (a, b, c):
        await a.block_peer(c.peer_id)
        await c.block_peer(a.peer_id)
        await a.wait_for_disconnect(c.peer_id)
        for i in range(20):
            assert await c.publish("txs", b"c-%d" % i)
        assert sorted([await recv(b, "txs") for _ in range(20)]) == sorted(b"c-%d" % i for i in range(20))
        await until(lambda: a.stats()["gossip_rate_limited"] >= 15)
        assert len([await recv(a, "txs") for _ in range(5)]) == 5
        assert pending(a, "txs") == []
        assert b.peer_id not in a.scores() and a.score(b.peer_id) == 0


def signed_message(net: Network, kind: str, data: bytes) -> rpc_pb2.Message:
    """A gossip message published by `net`'s host, signed as py-libp2p does."""
    msg = rpc_pb2.Message(data=data, topicIDs=[topic_name(CHAIN, kind)], from_id=ID.from_base58(net.peer_id).to_bytes(),
                          seqno=os.urandom(8))
    msg.signature = net._key_pair.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = net._key_pair.public_key.serialize()
    return msg


async def test_a_message_dropped_for_one_peers_rate_is_still_accepted_from_another():
    """py-libp2p caches a validator's "no" by message id for 5 minutes: a message dropped for
    its forwarder's rate must not get that far, or its copies from every other peer (an
    honest relay over its budget, an attacker relaying fresh honest votes) would be refused."""
    lim = RateLimits(txs=Limit(Rate(1e-6, 1)), penalty_interval=ONE_PENALTY)
    async with cluster(2, configs=[{"rate_limits": lim}, {}]) as (a, b):
        assert a._pubsub is not None
        relay = ID.from_pubkey(create_new_key_pair().public_key)  # another forwarder, as seen by a
        first, second = signed_message(b, "txs", b"first"), signed_message(b, "txs", b"second")
        await a._pubsub.push_msg(ID.from_base58(b.peer_id), first)
        assert await recv(a, "txs") == b"first"
        await a._pubsub.push_msg(ID.from_base58(b.peer_id), second)  # over b's budget: dropped
        assert pending(a, "txs") == [] and a.stats()["gossip_rate_limited"] == 1
        await a._pubsub.push_msg(relay, second)  # the same message from another peer
        assert await recv(a, "txs") == b"second"
        assert a.stats()["gossip_rate_limited"] == 1
        await a._pubsub.push_msg(ID.from_base58(b.peer_id), second)  # a duplicate counts too
        assert a.stats()["gossip_rate_limited"] == 2 and pending(a, "txs") == []


async def test_requests_over_the_rate_are_answered_busy_and_penalised_once():
    lim = RateLimits(requests=Rate(1e-6, 3), penalty_interval=ONE_PENALTY)
    async with cluster(2, configs=[{}, {"rate_limits": lim}]) as (a, b):
        b.set_request_handler(echo)
        for i in range(3):
            assert await a.request(b.peer_id, b"%d" % i, timeout=5) == b"echo:%d" % i
        for _ in range(3):
            with pytest.raises(RemoteError) as exc:
                await a.request(b.peer_id, b"more", timeout=5)
            assert exc.value.code == "busy"
        st = b.stats()
        assert st["rr_requests_rate_limited"] == 3 and st["rr_requests_served"] == 3
        assert b.scores()[a.peer_id]["reasons"] == {"rate_limited": 1}


async def test_requests_beyond_the_per_peer_concurrency_are_answered_busy_without_penalty():
    release = trio.Event()
    started = 0

    async def slow(peer_id: str, req: bytes) -> bytes:
        nonlocal started
        started += 1
        await release.wait()
        return b"done"

    async with cluster(2, configs=[{}, {"reqresp": ReqRespLimits(max_handlers_per_peer=2)}]) as (a, b):
        b.set_request_handler(slow)
        results: list[bytes | str] = []

        async def ask() -> None:
            try:
                results.append(await a.request(b.peer_id, b"x", timeout=10))
            except RemoteError as exc:
                results.append(exc.code)

        async with trio.open_nursery() as n:
            for _ in range(2):
                n.start_soon(ask)
            await until(lambda: started == 2)
            await ask()  # a third one while two run
            assert results == ["busy"]
            release.set()
        assert results == ["busy", b"done", b"done"]
        assert b.stats()["rr_requests_busy"] == 1 and a.peer_id not in b.scores()
