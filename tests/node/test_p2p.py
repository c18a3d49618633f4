"""node.p2p.Network with real py-libp2p hosts on 127.0.0.1, all in this one process.

Hosts in one process share one event loop, so message counts stay small. Every wait is
on an event or a condition, bounded by trio.fail_after.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio

from node.p2p import (
    ListenAddressInUse,
    Network,
    NetworkConfig,
    NetworkNotRunning,
    PayloadTooLarge,
    PeerUnavailable,
    RemoteError,
    ReqRespLimits,
    RequestTimeout,
    ResponseTooLarge,
    ScoreParams,
    TopicKind,
    Verdict,
)

CHAIN = "test-chain"
LOCAL = "/ip4/127.0.0.1/tcp/0"


def cfg(**kw) -> NetworkConfig:
    base = dict(
        chain_id=CHAIN,
        listen_addrs=(LOCAL,),
        reconnect_backoff_base=0.1,
        reconnect_backoff_max=0.5,
        dial_timeout=2.0,
    )
    base.update(kw)
    return NetworkConfig(**base)


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Wait for a condition that has no event of its own (bounded, short poll)."""
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.01)


async def recv(net: Network, kind: str, timeout: float = 10.0) -> bytes:
    with trio.fail_after(timeout):
        return (await net.incoming(kind).receive()).data


def pending(net: Network, kind: str) -> list[bytes]:
    """Everything already queued on a host's incoming channel (non-blocking)."""
    out = []
    while True:
        try:
            out.append(net.incoming(kind).receive_nowait().data)
        except trio.WouldBlock:
            return out


async def full_mesh(nets: list[Network], timeout: float = 15.0) -> None:
    with trio.fail_after(timeout):
        for net in nets:
            others = [o.peer_id for o in nets if o is not net]
            await net.wait_for_peers(others, timeout=timeout)
            for kind in TopicKind:
                await net.wait_for_mesh(kind, others, timeout=timeout)


@asynccontextmanager
async def cluster(n: int, *, configs: list[dict] | None = None, **common) -> AsyncIterator[list[Network]]:
    """n hosts; host i bootstraps to hosts 0..i-1. Stopped cleanly on exit."""
    nets: list[Network] = []
    async with trio.open_nursery() as nursery:
        addrs: list[str] = []
        for i in range(n):
            extra = dict(common, **(configs[i] if configs else {}))
            net = Network(cfg(bootstrap_peers=tuple(addrs), **extra))
            started = await nursery.start(net.run)
            addrs.append(started[0])
            nets.append(net)
        await full_mesh(nets)
        try:
            yield nets
        finally:
            for net in nets:
                net.stop()
            with trio.fail_after(10):
                for net in nets:
                    await net.wait_stopped()


# ======================================================================= gossip


async def test_two_hosts_gossip_both_ways_and_duplicates_die():
    async with cluster(2) as (a, b):
        assert await a.publish("txs", b"batch-1")
        assert await recv(b, "txs") == b"batch-1"
        assert await b.publish(TopicKind.CONSENSUS, b"vote-1")
        assert await recv(a, "consensus") == b"vote-1"
        # same payload again, from anyone: same message id, dropped at the source
        assert not await a.publish("txs", b"batch-1")
        assert not await b.publish("txs", b"batch-1")
        assert b.stats()["gossip_publish_duplicates"] == 1
        # our own publishes are not echoed back to us
        assert pending(a, "txs") == [] and pending(b, "consensus") == []
        # topics are separate
        assert pending(b, "consensus") == [] and pending(a, "txs") == []
        sa, sb = a.stats(), b.stats()
        assert sa["gossip_published"] == 1 and sb["gossip_received"] == 1
        assert sa["gossip_published_bytes"] == sb["gossip_received_bytes"] == len(b"batch-1")


async def test_four_hosts_every_message_reaches_every_other_host_exactly_once():
    async with cluster(4) as nets:
        sent = {net.peer_id: [f"{net.peer_id[-6:]}-{i}".encode() for i in range(3)] for net in nets}
        for net in nets:
            for payload in sent[net.peer_id]:
                assert await net.publish("consensus", payload)
        for net in nets:
            expected = sorted(p for pid, ps in sent.items() if pid != net.peer_id for p in ps)
            got = [await recv(net, "consensus") for _ in expected]
            assert sorted(got) == expected  # each one, once
        # A barrier: every host publishes a marker and waits for the 3 others' markers.
        # Anything duplicated earlier would have been queued before them.
        for net in nets:
            await net.publish("consensus", b"marker-" + net.peer_id.encode())
        for net in nets:
            got = sorted([await recv(net, "consensus") for _ in range(3)])
            assert got == sorted(b"marker-" + o.peer_id.encode() for o in nets if o is not net)
            assert pending(net, "consensus") == []
            assert net.stats()["gossip_received"] == 9 + 3
            assert net.stats()["gossip_dropped"] == 0
        # In a full mesh every message also comes back as relays from the other peers;
        # copies of one already validated are dropped as they are read.
        dups = [net.stats()["gossip_duplicates"] for net in nets]
        assert sum(dups) > 0 and all(d <= 2 * net.stats()["gossip_received"] for d, net in zip(dups, nets, strict=True))


async def test_rejected_gossip_is_not_delivered_and_the_sender_is_penalised():
    def reject_bad(peer_id: str, data: bytes) -> bool | Verdict:
        if data.startswith(b"stale"):
            return Verdict.IGNORE
        return not data.startswith(b"bad")

    def explode(peer_id: str, data: bytes) -> bool:
        if data.startswith(b"boom"):
            raise RuntimeError("validator bug")
        return True

    async with cluster(3) as (a, b, c):
        for net in (a, b, c):
            net.set_validator("txs", reject_bad)
        c.set_validator("consensus", explode)

        assert await a.publish("txs", b"bad-1")  # our own validator is not consulted
        assert await a.publish("txs", b"good-1")
        assert await recv(b, "txs") == b"good-1"
        assert await recv(c, "txs") == b"good-1"
        await until(lambda: b.score(a.peer_id) < 0 and c.score(a.peer_id) < 0)
        assert b.scores()[a.peer_id]["reasons"] == {"invalid_gossip": 1}
        assert pending(b, "txs") == [] and pending(c, "txs") == []
        assert b.stats()["gossip_rejected"] == 1

        # IGNORE: dropped too, but nobody is penalised for relaying it
        before = b.score(a.peer_id)
        assert await a.publish("txs", b"stale-1")
        assert await a.publish("txs", b"good-2")
        assert await recv(b, "txs") == b"good-2"
        assert await recv(c, "txs") == b"good-2"
        await until(lambda: b.stats()["gossip_ignored"] == 1 and c.stats()["gossip_ignored"] == 1)
        assert b.score(a.peer_id) >= before and b.scores()[a.peer_id]["reasons"] == {"invalid_gossip": 1}
        assert pending(b, "txs") == [] and pending(c, "txs") == []

        # a validator that raises: the message is rejected, the host survives
        assert await b.publish("consensus", b"boom-1")
        assert await recv(a, "consensus") == b"boom-1"  # a's validator is fine with it
        await until(lambda: c.stats()["gossip_validator_errors"] >= 1)
        assert c.score(b.peer_id) < 0 or c.score(a.peer_id) < 0  # whoever forwarded it
        assert await b.publish("consensus", b"after-boom")
        assert await recv(c, "consensus") == b"after-boom"
        assert pending(c, "consensus") == []
        assert c.running and sorted(c.peers()) == sorted([a.peer_id, b.peer_id])


async def test_publish_refuses_oversized_payloads_with_a_clear_error():
    async with cluster(2, max_gossip_bytes=4096) as (a, b):
        with pytest.raises(PayloadTooLarge) as exc:
            await a.publish("txs", b"x" * 4097)
        assert (exc.value.size, exc.value.limit) == (4097, 4096)
        assert await a.publish("txs", b"y" * 4096)
        assert await recv(b, "txs") == b"y" * 4096


# ======================================================================= request/response


async def echo(peer_id: str, req: bytes) -> bytes:
    if req == b"raise":
        raise ValueError("handler bug")
    if req.startswith(b"big:"):
        return b"z" * int(req[4:])
    if req == b"slow":
        await trio.sleep(5)
    return b"echo:" + req


@pytest.mark.parametrize("reuse", [True, False], ids=["reuse-streams", "stream-per-request"])
async def test_request_response(reuse):
    limits_a = ReqRespLimits(max_response_bytes=64 * 1024, max_request_bytes=1024, reuse_streams=reuse)
    limits_b = ReqRespLimits(max_response_bytes=256 * 1024, reuse_streams=reuse)
    async with cluster(2, configs=[{"reqresp": limits_a}, {"reqresp": limits_b}]) as (a, b):
        b.set_request_handler(echo)
        bid = b.peer_id
        assert await a.request(bid, b"hello", timeout=5) == b"echo:hello"
        assert await a.request(bid, b"", timeout=5) == b"echo:"

        # a handler that raises: an error answer, not a crash
        with pytest.raises(RemoteError) as exc:
            await a.request(bid, b"raise", timeout=5)
        assert exc.value.code == "handler_error" and "ValueError" in exc.value.detail
        assert await a.request(bid, b"still alive", timeout=5) == b"echo:still alive"

        # response over the requester's limit: rejected unread, responder penalised
        with pytest.raises(ResponseTooLarge):
            await a.request(bid, b"big:100000", timeout=5)
        assert a.scores()[bid]["reasons"] == {"oversized_response": 1}
        # response over the responder's own limit: it refuses to send it
        with pytest.raises(RemoteError) as exc:
            await a.request(bid, b"big:300000", timeout=5)
        assert exc.value.code == "response_too_large"
        # at the limit exactly: fine
        assert await a.request(bid, b"big:65536", timeout=5) == b"z" * 65536

        # request over our own limit: never sent
        with pytest.raises(PayloadTooLarge):
            await a.request(bid, b"q" * 1025, timeout=5)
        # request over the responder's limit
        with pytest.raises(RemoteError) as exc:
            await b.request(a.peer_id, b"q" * 2000, timeout=5)
        assert exc.value.code in ("request_too_large", "no_handler")

        # timeout: the caller gets RequestTimeout, the responder keeps serving
        with pytest.raises(RequestTimeout):
            await a.request(bid, b"slow", timeout=0.3)
        assert await a.request(bid, b"after timeout", timeout=5) == b"echo:after timeout"

        # concurrent requests on one connection
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            results[i] = await a.request(bid, str(i).encode(), timeout=5)

        async with trio.open_nursery() as n:
            for i in range(8):
                n.start_soon(one, i)
        assert results == {i: b"echo:" + str(i).encode() for i in range(8)}

        # no handler registered on a
        with pytest.raises(RemoteError) as exc:
            await b.request(a.peer_id, b"x", timeout=5)
        assert exc.value.code == "no_handler"
        assert a.running and b.running and b.stats()["handler_errors"] == 0
        st = a.stats()
        if reuse:
            assert st["rr_streams_reused"] > 0
        else:
            assert st["rr_streams_reused"] == 0


async def test_request_to_unknown_or_blocked_peer_fails_cleanly():
    async with cluster(2) as (a, b):
        stranger = Network(cfg()).peer_id
        with pytest.raises(PeerUnavailable):
            await a.request(stranger, b"x", timeout=2)
        await a.block_peer(b.peer_id)
        with pytest.raises(PeerUnavailable):
            await a.request(b.peer_id, b"x", timeout=2)
        with pytest.raises(ValueError):
            await a.request("not-a-peer-id", b"x", timeout=2)


# ======================================================================= peers


async def test_block_and_unblock_partition_and_heal():
    async with cluster(4) as nets:
        a, b, c, d = nets
        left, right = [a, b], [c, d]
        for x in left:
            for y in right:
                await x.block_peer(y.peer_id)
                await y.block_peer(x.peer_id)
        for x in left:
            for y in right:
                await x.wait_for_disconnect(y.peer_id)
                await y.wait_for_disconnect(x.peer_id)
        await b.wait_for_mesh("txs", [a.peer_id])
        await d.wait_for_mesh("txs", [c.peer_id])

        assert await a.publish("txs", b"left-only")
        assert await c.publish("txs", b"right-only")
        assert await recv(b, "txs") == b"left-only"
        assert await recv(d, "txs") == b"right-only"
        assert pending(c, "txs") == [] and pending(a, "txs") == []  # no path across
        assert set(a.peers()) == {b.peer_id} and set(c.peers()) == {d.peer_id}

        for x in left:
            for y in right:
                await x.unblock_peer(y.peer_id)
                await y.unblock_peer(x.peer_id)
        await full_mesh(nets)
        pending(b, "txs"), pending(c, "txs"), pending(d, "txs")  # heal may re-gossip the last ~3 s
        assert await d.publish("txs", b"healed")
        for net in (a, b, c):
            got = await recv(net, "txs")
            while got != b"healed":  # tolerate re-gossiped partition-era messages
                assert got in (b"left-only", b"right-only")
                got = await recv(net, "txs")


async def test_one_sided_block_refuses_redials():
    async with cluster(2) as (a, b):  # b re-dials a (its bootstrap peer) on its own
        await a.block_peer(b.peer_id)
        await b.wait_for_disconnect(a.peer_id)
        await until(lambda: a.stats()["connections_refused"] >= 2)
        assert a.blocked_peers() == [b.peer_id] and a.peers() == []
        await a.unblock_peer(b.peer_id)
        await a.wait_for_peers([b.peer_id])
        await b.wait_for_peers([a.peer_id])


async def test_ban_on_penalties_then_cool_off():
    scores = ScoreParams(ban_threshold=-50, ban_duration=1.0)
    async with cluster(2, scores=scores) as (a, b):
        assert a.penalise(b.peer_id, "bad_response") == pytest.approx(-20, abs=0.1)
        assert not a.is_banned(b.peer_id)
        a.penalise(b.peer_id, "manual", 40)
        assert a.is_banned(b.peer_id)
        await a.wait_for_disconnect(b.peer_id)
        assert a.stats()["peers_banned"] == 1
        # b keeps re-dialling; a refuses until the cool-off is over, then takes it back
        await a.wait_for_peers([b.peer_id], timeout=10)
        assert not a.is_banned(b.peer_id) and a.score(b.peer_id) == 0
        assert a.stats()["connections_refused"] >= 1


async def test_max_peers_refuses_extra_inbound():
    async with trio.open_nursery() as nursery:
        hub = Network(cfg(max_peers=1, min_peers=0))
        hub_addr = (await nursery.start(hub.run))[0]
        x = Network(cfg(bootstrap_peers=(hub_addr,)))
        y = Network(cfg(bootstrap_peers=(hub_addr,)))
        await nursery.start(x.run)
        await x.wait_for_peers([hub.peer_id])
        await nursery.start(y.run)
        await until(lambda: hub.stats()["connections_refused"] >= 1)
        assert hub.peers() == [x.peer_id]
        for net in (hub, x, y):
            net.stop()


async def test_below_min_peers_redials_known_peers_from_the_peerstore():
    async with trio.open_nursery() as nursery:
        hub = Network(cfg(min_peers=1))
        hub_addr = (await nursery.start(hub.run))[0]
        x = Network(cfg(min_peers=0))  # x will not re-dial: hub must
        await nursery.start(x.run)
        await x.add_peer(hub_addr, persistent=False)
        await hub.wait_for_peers([x.peer_id])
        await hub.block_peer(x.peer_id)
        await x.wait_for_disconnect(hub.peer_id)
        dials = hub.stats()["dials"]
        await hub.unblock_peer(x.peer_id)
        await hub.wait_for_peers([x.peer_id])  # learnt x's address from identify
        assert hub.stats()["dials"] > dials and x.stats()["dials"] == 1
        hub.stop()
        x.stop()


async def test_bootstrap_by_dns_name():
    async with trio.open_nursery() as nursery:
        a = Network(cfg())
        a_addr = (await nursery.start(a.run))[0]
        b = Network(cfg(bootstrap_peers=(a_addr.replace("/ip4/127.0.0.1/", "/dns4/localhost/"),)))
        await nursery.start(b.run)
        await b.wait_for_peers([a.peer_id])
        a.stop()
        b.stop()


async def test_a_port_in_use_is_refused():
    async with trio.open_nursery() as nursery:
        a = Network(cfg())
        a_addr = (await nursery.start(a.run))[0]
        port = a_addr.split("/tcp/")[1].split("/")[0]
        b = Network(cfg(listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",)))
        with pytest.raises(ListenAddressInUse):
            await nursery.start(b.run)
        assert b.stats()["peers"] == 0 and a.running
        a.stop()


async def test_reconnect_after_peer_restart(tmp_path):
    key = tmp_path / "a" / "node_key"
    async with trio.open_nursery() as nursery:
        a1 = Network(cfg(node_key_path=key))
        a_addr = (await nursery.start(a1.run))[0]
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        b = Network(cfg(bootstrap_peers=(a_addr,)))
        await nursery.start(b.run)
        await full_mesh([a1, b])
        assert await a1.publish("txs", b"before")
        assert await recv(b, "txs") == b"before"

        a1.stop()
        await a1.wait_stopped()
        await b.wait_for_disconnect(a1.peer_id)

        # same key, same address: b's reconnect loop finds it again
        port = a_addr.split("/tcp/")[1].split("/")[0]
        a2 = Network(cfg(node_key_path=key, listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",)))
        assert a2.peer_id == a1.peer_id
        await nursery.start(a2.run)
        await full_mesh([a2, b])
        assert await a2.publish("txs", b"after")
        assert await recv(b, "txs") == b"after"
        assert b.stats()["dials"] >= 2
        b.stop()
        a2.stop()


# ======================================================================= shutdown


async def test_clean_stop_while_publishing():
    async with trio.open_nursery() as outer:
        nets: list[Network] = []
        addrs: list[str] = []
        for _ in range(3):
            net = Network(cfg(bootstrap_peers=tuple(addrs)))
            addrs.append((await outer.start(net.run))[0])
            nets.append(net)
        await full_mesh(nets)
        a, b, c = nets
        published = {a.peer_id: 0, b.peer_id: 0}
        ended: list[str] = []

        async def publisher(net: Network) -> None:
            i = 0
            while True:
                try:
                    await net.publish("txs", f"{net.peer_id}-{i}".encode())
                except NetworkNotRunning:
                    ended.append(net.peer_id)
                    return
                published[net.peer_id] += 1
                i += 1
                await trio.sleep(0.01)  # pacing, ~100 msg/s per publisher

        received: list[bytes] = []

        async def consumer() -> None:
            async for msg in c.incoming("txs"):  # ends when c stops
                received.append(msg.data)

        async with trio.open_nursery() as n:
            n.start_soon(publisher, a)
            n.start_soon(publisher, b)
            n.start_soon(consumer)
            await until(lambda: len(received) >= 20)
            a.stop()  # mid-stream
            with trio.fail_after(10):
                await a.wait_stopped()
            await until(lambda: len(received) >= 40)
            b.stop()
            c.stop()
            with trio.fail_after(10):
                await b.wait_stopped()
                await c.wait_stopped()
        # publishers saw NetworkNotRunning and returned; the consumer's loop ended
        assert sorted(ended) == sorted([a.peer_id, b.peer_id])
        assert all(not net.running for net in nets)
        assert len(received) >= 40 and c.stats()["gossip_received"] == len(received)
    # reaching here means no run() raised: the outer nursery would have re-raised it


async def test_cancelling_run_is_clean():
    with trio.move_on_after(30):
        async with trio.open_nursery() as n:
            a = Network(cfg())
            a_addr = (await n.start(a.run))[0]
            b = Network(cfg(bootstrap_peers=(a_addr,)))
            await n.start(b.run)
            await full_mesh([a, b])

            async def spam() -> None:
                i = 0
                while True:
                    await a.publish("txs", b"%d" % i)
                    i += 1
                    await trio.sleep(0.005)

            n.start_soon(spam)
            await recv(b, "txs")
            n.cancel_scope.cancel()
    assert a.stats()["gossip_published"] > 0
    with trio.fail_after(5):
        await a.wait_stopped()
        await b.wait_stopped()


async def test_an_internal_error_propagates_after_closing_the_host():
    net = Network(cfg())

    def broken():  # a bug in our own dial loop
        raise RuntimeError("dial loop bug")

    net._dial_targets = broken  # type: ignore[method-assign]
    with pytest.raises(BaseException) as info, trio.fail_after(10):
        async with trio.open_nursery() as n:
            await n.start(net.run)
            await net.wait_stopped()
    assert info.group_contains(RuntimeError, match="dial loop bug", depth=None)
    assert not net.running
    with trio.fail_after(1):
        await net.wait_stopped()
