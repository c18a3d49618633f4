"""``Network``: the node's libp2p host — gossip topics, sync streams, peers and penalties.

The node runtime drives it; it makes no protocol decisions. Payload bytes go in and come
out untouched; the only judgement it applies is the node's own validation callback
(before anything is forwarded), the size caps and the per-peer rate limits
(node.p2p.ratelimit: a forwarder over its rate for a topic has the excess dropped before
signature checks and validation, and is penalised when the excess is its own messages).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import multiaddr
import structlog
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.config import ConnectionConfig
from libp2p.network.exceptions import SwarmException
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from . import record_cache, yamux_credit
from .config import DEFAULT_PENALTIES, NetworkConfig, TopicKind, topic_name
from .errors import ListenAddressInUse, NetworkNotRunning, PayloadTooLarge, PeerUnavailable
from .keys import load_or_create_node_key
from .ratelimit import PeerRateLimiter
from .reqresp import ReqResp, RequestHandler, sync_protocol_id
from .scores import Backoff, PeerScores


class Verdict(Enum):
    """What a gossip validation callback may return besides ``True``/``False``.

    ``ACCEPT`` (= ``True``): deliver and forward. ``REJECT`` (= ``False``): drop and
    penalise the forwarding peer — for messages no honest node would forward (bad
    signature, malformed). ``IGNORE``: drop without penalty — for messages an honest
    peer may still relay (a vote for a height we have finished, a stale transaction).
    """

    ACCEPT = "accept"
    IGNORE = "ignore"
    REJECT = "reject"


GossipValidator = Callable[[str, bytes], "bool | Verdict"]


def message_id(data: bytes) -> bytes:
    """Gossip message id: SHA-256 of the payload, so identical payloads are one message."""
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class GossipMessage:
    kind: TopicKind
    data: bytes
    origin: str  # peer id of the signer/publisher (strict signing: authenticated)
    msg_id: bytes  # message_id(data)


class IncomingChannel(trio.abc.ReceiveChannel[GossipMessage]):
    """A topic's validated messages, bounded in count and in payload bytes (one consumer).

    Supports ``await receive()``, ``receive_nowait()`` and ``async for``; ends when the
    network stops. `offer` is the network's side: it raises ``trio.WouldBlock`` when
    either bound would be exceeded.
    """

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self._send, self._recv = trio.open_memory_channel[GossipMessage](max_messages)
        self.max_bytes = max_bytes
        self.queued_bytes = 0

    def offer(self, msg: GossipMessage) -> None:
        if self.queued_bytes + len(msg.data) > self.max_bytes:
            raise trio.WouldBlock
        self._send.send_nowait(msg)
        self.queued_bytes += len(msg.data)

    async def receive(self) -> GossipMessage:
        msg = await self._recv.receive()
        self.queued_bytes -= len(msg.data)
        return msg

    def receive_nowait(self) -> GossipMessage:
        msg = self._recv.receive_nowait()
        self.queued_bytes -= len(msg.data)
        return msg

    def close_sender(self) -> None:
        self._send.close()

    async def aclose(self) -> None:
        await self._recv.aclose()


class _State(Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


_COUNTERS = (
    "gossip_published",
    "gossip_published_bytes",
    "gossip_publish_duplicates",
    "gossip_published_alone",  # no peer was subscribed to the topic: reached nobody
    "gossip_send_dropped",  # py-libp2p dropped an outbound RPC (32-slot peer queue full)
    "gossip_received",
    "gossip_received_bytes",
    "gossip_dropped",  # incoming channel full (messages or bytes): message lost for this node
    "gossip_rejected",  # the validation callback said no (or raised): sender penalised
    "gossip_ignored",  # the validation callback said Verdict.IGNORE: dropped, no penalty
    "gossip_validator_errors",
    "gossip_rate_limited",  # over the forwarder's per-topic rate: dropped before validation
    "gossip_duplicates",  # a copy of a message already validated, dropped as it was read
    "dials",
    "dial_failures",
    "connections_refused",
    "peers_banned",
    "handler_errors",  # exceptions caught at a stream handler boundary
)


class Network:
    """One libp2p host for one chain. Use::

    net = Network(config, validators={"txs": check_tx_batch, "consensus": check_msg})
    net.set_request_handler(serve_sync)
    async with trio.open_nursery() as n:
        await n.start(net.run)        # returns once listening
        rx = net.incoming("consensus")
        await net.publish("consensus", vote_bytes)
        ...
        net.stop()                    # run() returns after a clean shutdown
    """

    def __init__(
        self,
        config: NetworkConfig,
        *,
        validators: Mapping[TopicKind | str, GossipValidator] | None = None,
        request_handler: RequestHandler | None = None,
        key_pair: KeyPair | None = None,
    ) -> None:
        config.validate()
        self.config = config
        if key_pair is None:
            if config.node_key_path is not None:
                key_pair = load_or_create_node_key(config.node_key_path)
            else:
                key_pair = create_new_key_pair()
        self._key_pair = key_pair
        self._id = ID.from_pubkey(key_pair.public_key)
        self.peer_id: str = self._id.to_base58()
        self._log = structlog.get_logger("ekklesia.p2p").bind(node=self.peer_id, chain=config.chain_id)

        self._topics = {k: topic_name(config.chain_id, k) for k in TopicKind}
        self._validators: dict[TopicKind, GossipValidator] = {}
        for kind, fn in (validators or {}).items():
            self.set_validator(kind, fn)
        self._incoming = {k: IncomingChannel(config.incoming_buffer, config.incoming_buffer_bytes) for k in TopicKind}
        self._request_handler = request_handler

        self._state = _State.NEW
        self._orderly_stop = False  # set once stop() is acted on or run() is cancelled
        self._stop_requested = trio.Event()
        self._stopped = trio.Event()
        self._peers_changed = trio.Event()
        self._wake_dialer = trio.Event()
        self._nursery: trio.Nursery | None = None

        self._scores = PeerScores(config.scores)
        limits = config.rate_limits
        self._rate = PeerRateLimiter(
            {TopicKind.TXS.value: limits.txs, TopicKind.CONSENSUS.value: limits.consensus},
            penalty_interval=limits.penalty_interval,
        )
        self._backoff = Backoff(base=config.reconnect_backoff_base, cap=config.reconnect_backoff_max)
        self._blocked: set[str] = set()
        self._persistent: dict[str, list[multiaddr.Multiaddr]] = {}
        for addr in config.bootstrap_peers:
            info = _parse_peer_addr(addr)
            if str(info.peer_id) != self.peer_id:
                self._persistent.setdefault(str(info.peer_id), []).extend(info.addrs)
        self._dialing: set[str] = set()
        self._connected_since: dict[str, float] = {}
        self._counters = dict.fromkeys(_COUNTERS, 0)

        self._host: Any = None
        self._pubsub: Pubsub | None = None
        self._gossipsub: GossipSub | None = None
        self._reqresp: ReqResp | None = None

    # ================================================================== lifecycle

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the host until ``stop()`` is called or the task is cancelled.

        Calls ``task_status.started(listen_addrs)`` once listening, subscribed and
        dialling. Can be run once per ``Network`` object.
        """
        if self._state is not _State.NEW:
            raise RuntimeError("Network.run() can only be called once per object")
        self._state = _State.STARTING
        try:
            host, pubsub, gossipsub = self._build()
            try:
                async with host.run(listen_addrs=self._listen_maddrs()):
                    try:
                        await self._serve(host, pubsub, gossipsub, task_status)
                    except BaseException as exc:
                        if not isinstance(exc, Exception):  # cancelled from outside
                            self._orderly_stop = True
                        raise
                    finally:
                        self._state = _State.STOPPING
                        await self._close_host(host, pubsub)
            except Exception as exc:
                # py-libp2p 0.8.1 can raise leftovers ("Nursery is closed to new arrivals",
                # EBADF) while it tears connections down after a stop; those are logged.
                # Anything that went wrong while running propagates.
                if not self._orderly_stop:
                    raise
                self._log.warning("p2p.shutdown_leftover", error=repr(exc))
        finally:
            self._state = _State.STOPPED
            for channel in self._incoming.values():
                channel.close_sender()
            self._stopped.set()
            self._log.info("p2p.stopped", **self.stats())

    def stop(self) -> None:
        """Ask ``run()`` to shut down; returns at once (await ``wait_stopped()``)."""
        self._stop_requested.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    @property
    def running(self) -> bool:
        return self._state is _State.RUNNING

    def _build(self) -> tuple[Any, Pubsub, GossipSub]:
        cfg = self.config
        for addr in self._listen_maddrs():
            _check_listen_address_free(addr)
        if cfg.cache_signed_records:
            record_cache.install()
        if cfg.yamux_credit_hysteresis:
            yamux_credit.install()
        host = new_host(
            key_pair=self._key_pair,
            sec_opt={
                NOISE_PROTOCOL_ID: NoiseTransport(
                    self._key_pair, noise_privkey=create_new_x25519_key_pair().private_key
                )
            },
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            listen_addrs=self._listen_maddrs(),
            announce_addrs=(
                [multiaddr.Multiaddr(a) for a in cfg.announce_addrs] if cfg.announce_addrs is not None else None
            ),
            disable_identify_address_discovery=True,
            connection_config=ConnectionConfig(
                # Our own gate enforces max_peers. py-libp2p's inbound limiter keeps a
                # slot per inbound connection for the swarm's whole life (even after
                # the connection closes), sized max_connections - min_connections, so
                # these must stay large or a long-running node stops accepting peers.
                max_connections=100_000,
                min_connections=0,
                low_watermark=0,
                high_watermark=100_000,
                dial_timeout=cfg.dial_timeout,
            ),
        )
        swarm = host.get_network()
        if not isinstance(swarm, Swarm):
            raise RuntimeError(f"unexpected py-libp2p network type {type(swarm).__name__}")
        # Reconnection is ours (it honours bans, blocks and peer bounds); py-libp2p's
        # auto-connector would dial every peer in the peerstore regardless.
        swarm.auto_connector = _NoAutoConnect(swarm)
        original_add_conn = swarm.add_conn

        async def gated_add_conn(muxed_conn: Any, direction: str = "unknown") -> Any:
            pid = str(muxed_conn.peer_id)
            reason = self._refusal(pid, direction)
            if reason is not None:
                self._counters["connections_refused"] += 1
                self._log.debug("p2p.connection_refused", peer=pid, reason=reason, direction=direction)
                with (
                    trio.CancelScope(shield=True),
                    trio.move_on_after(2),
                    contextlib.suppress(Exception),
                ):
                    await muxed_conn.close()
                raise SwarmException(f"connection from {pid} refused: {reason}")
            return await original_add_conn(muxed_conn, direction)

        # Gate every new connection, inbound and outbound, on our peer rules (the
        # partition recipe that worked; py-libp2p's ConnectionGate only knows IPs).
        swarm.add_conn = gated_add_conn  # type: ignore[method-assign]
        swarm.register_notifee(_Notifee(self))

        gossipsub = GossipSub(
            protocols=[PROTOCOL_ID_V11],  # 1.2's IDONTWANT costs a control msg per message
            degree=cfg.mesh_degree,
            degree_low=cfg.mesh_degree_low,
            degree_high=cfg.mesh_degree_high,
            heartbeat_interval=cfg.heartbeat_interval,
            heartbeat_initial_delay=0.1,
            spam_protection_enabled=False,  # 10 msg/s per peer per topic, silently
            adaptive_gossip_enabled=False,
            eclipse_protection_enabled=False,
        )
        pubsub = Pubsub(
            host,
            gossipsub,
            strict_signing=True,  # required by go/js peers; authenticates the origin
            msg_id_constructor=lambda m: message_id(m.data),
            seen_ttl=cfg.seen_ttl,
            # max_inbound_rpc_size stays at its default (1 MiB): senders pack several
            # messages into one RPC up to that size, and an inbound RPC over the limit
            # makes py-libp2p reset the stream and drop the peer.
            allowed_topics=set(self._topics.values()),
        )
        for kind, topic in self._topics.items():
            pubsub.set_topic_validator(topic, self._make_validator(kind), is_async_validator=False)
        self._limit_inbound(pubsub)
        self._count_send_drops(gossipsub)

        self._reqresp = ReqResp(
            host,
            sync_protocol_id(cfg.chain_id),
            cfg.reqresp,
            penalise=lambda pid, reason, amount: self._penalise(pid, reason, amount),
            may_talk=lambda pid: self._refusal(pid, "outbound") is None,
            log=self._log,
            rate=cfg.rate_limits.requests,
            penalty_interval=cfg.rate_limits.penalty_interval,
            rate_limited_penalty=cfg.penalties.get("rate_limited", DEFAULT_PENALTIES["rate_limited"]),
        )
        self._reqresp.set_handler(self._request_handler)
        host.set_stream_handler(self._reqresp.protocol, self._guard(self._reqresp.handle_stream))
        self._host, self._pubsub, self._gossipsub = host, pubsub, gossipsub
        return host, pubsub, gossipsub

    async def _serve(self, host: Any, pubsub: Pubsub, gossipsub: GossipSub, task_status: Any) -> None:
        async with background_trio_service(pubsub), background_trio_service(gossipsub):
            await pubsub.wait_until_ready()
            self._limit_before_tasks(pubsub)
            subs = {kind: await pubsub.subscribe(topic) for kind, topic in self._topics.items()}
            # Nothing may escape a stream handler (it would take the whole host down):
            # wrap the swarm-level dispatcher and every registered protocol handler.
            swarm = host.get_network()
            swarm.set_stream_handler(self._guard(swarm.common_stream_handler))
            mux = host.get_mux()
            for proto, handler in list(mux.handlers.items()):
                if handler is not None and not getattr(handler, "_ekklesia_guarded", False):
                    host.set_stream_handler(proto, self._guard(handler))
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for kind, sub in subs.items():
                    nursery.start_soon(self._drain, kind, sub)
                nursery.start_soon(self._dial_loop)
                nursery.start_soon(self._housekeeping)
                self._state = _State.RUNNING
                addrs = self.listen_addrs()
                self._log.info("p2p.listening", addrs=addrs)
                task_status.started(addrs)
                await self._stop_requested.wait()
                self._log.info("p2p.stopping")
                self._orderly_stop = True
                self._state = _State.STOPPING
                nursery.cancel_scope.cancel()
            self._nursery = None

    async def _close_host(self, host: Any, pubsub: Pubsub) -> None:
        with trio.CancelScope(shield=True):
            if self._reqresp is not None:
                with trio.move_on_after(2):
                    await self._reqresp.close()
            with trio.move_on_after(5) as scope:
                try:
                    await host.close()
                except Exception as exc:
                    self._log.warning("p2p.close_error", error=repr(exc))
            if scope.cancelled_caught:
                self._log.warning("p2p.close_timeout")
        with contextlib.suppress(Exception):
            # the seen-message cache runs a sweeper thread py-libp2p never stops
            pubsub.seen_messages.stop()

    # ================================================================== gossip

    def set_validator(self, kind: TopicKind | str, fn: GossipValidator | None) -> None:
        """Set the sync validation callback ``fn(peer_id, data) -> bool | Verdict`` of a topic.

        It runs before a message is delivered or forwarded; ``peer_id`` is the peer that
        forwarded it to us. ``True``/``Verdict.ACCEPT`` accepts; ``Verdict.IGNORE`` drops
        it quietly; ``False``, ``Verdict.REJECT``, any other value, or an exception drops
        it and penalises that peer. Our own publishes are not passed to it. Keep it cheap
        and non-blocking: it runs inside py-libp2p's receive path.
        """
        kind = TopicKind(kind)
        if fn is None:
            self._validators.pop(kind, None)
        else:
            self._validators[kind] = fn

    def incoming(self, kind: TopicKind | str) -> IncomingChannel:
        """The receive channel of validated messages of a topic (one consumer).

        Bounded by ``config.incoming_buffer`` messages and ``config.incoming_buffer_bytes``
        payload bytes; when full, new messages are dropped and counted in
        ``stats()["gossip_dropped"]``. Closed when the network stops.
        """
        return self._incoming[TopicKind(kind)]

    async def publish(self, kind: TopicKind | str, data: bytes) -> bool:
        """Publish ``data`` on a topic. False if this payload was already seen (dedup).

        Raises ``PayloadTooLarge`` (nothing sent) over ``config.max_gossip_bytes`` and
        ``NetworkNotRunning`` unless running. Delivery is best effort: gossip lost to a
        partition is not re-sent; catch-up is the sync protocol's job.
        """
        kind = TopicKind(kind)
        data = bytes(data)
        if len(data) > self.config.max_gossip_bytes:
            raise PayloadTooLarge("gossip payload", len(data), self.config.max_gossip_bytes)
        pubsub = self._pubsub
        if self._state is not _State.RUNNING or pubsub is None:
            raise NetworkNotRunning(f"network is {self._state.value}")
        if pubsub.seen_messages.has(message_id(data)):
            self._counters["gossip_publish_duplicates"] += 1
            return False
        if not self.config.deliver_own_messages and not self._host_has_connections():
            # Nobody to send to (a lone validator): py-libp2p would still sign and
            # serialise every message, a whole proposal included, for no one.
            self._counters["gossip_published_alone"] += 1
            return True
        try:
            await pubsub.publish(self._topics[kind], data)
        except Exception as exc:
            if self._state is not _State.RUNNING:
                raise NetworkNotRunning("network stopped while publishing") from exc
            raise
        self._counters["gossip_published"] += 1
        self._counters["gossip_published_bytes"] += len(data)
        if not pubsub.peer_topics.get(self._topics[kind]):
            self._counters["gossip_published_alone"] += 1
        return True

    def mesh_peers(self, kind: TopicKind | str) -> list[str]:
        gs = self._gossipsub
        if gs is None:
            return []
        return sorted(str(p) for p in gs.mesh.get(self._topics[TopicKind(kind)], ()))

    async def wait_for_mesh(self, kind: TopicKind | str, peer_ids: Iterable[str], timeout: float = 10.0) -> None:
        """Wait until every peer in ``peer_ids`` is in our mesh for the topic.

        Publishing before that may reach nobody. Raises ``trio.TooSlowError``.
        """
        topic = self._topics[TopicKind(kind)]
        with trio.fail_after(timeout):
            for pid in peer_ids:
                if self._pubsub is None:
                    raise NetworkNotRunning("network is not running")
                await self._pubsub.wait_for_mesh(ID.from_base58(pid), topic, timeout=timeout)

    def _make_validator(self, kind: TopicKind) -> Callable[[ID, rpc_pb2.Message], bool]:
        limit = self.config.max_gossip_bytes

        def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            # py-libp2p calls this synchronously from a service task: an exception here
            # would crash the host, so nothing may escape.
            fwd = "?"
            try:
                fwd = forwarder.to_base58()
                data = msg.data
                if len(data) > limit:
                    self._penalise(fwd, "oversized_gossip")
                    self._counters["gossip_rejected"] += 1
                    return False
                if fwd == self.peer_id:
                    return True  # our own publish: the caller vouches for it
                fn = self._validators.get(kind)
                if fn is None:
                    return True
                verdict = fn(fwd, data)
                if verdict is True or verdict is Verdict.ACCEPT:
                    return True
                if verdict is Verdict.IGNORE:
                    self._counters["gossip_ignored"] += 1
                    return False
                self._counters["gossip_rejected"] += 1
                self._log.debug("p2p.gossip_rejected", peer=fwd, topic=kind.value, size=len(data))
                self._penalise(fwd, "invalid_gossip")
                return False
            except Exception as exc:
                self._counters["gossip_rejected"] += 1
                self._counters["gossip_validator_errors"] += 1
                self._log.warning("p2p.validator_raised", peer=fwd, topic=kind.value, error=repr(exc))
                if fwd != "?":
                    with contextlib.suppress(Exception):
                        self._penalise(fwd, "validator_error")
                return False

        return validate

    def _limit_inbound(self, pubsub: Pubsub) -> None:
        """Apply the per-peer rate limits to every message a peer forwards to us, first.

        A pass-through wrapper, on this instance only, of ``Pubsub.push_msg`` (called once
        per received message, in a task of its own). Over the limit, a message is dropped
        before py-libp2p verifies its signature or calls our validator. It must not reach
        the validator: py-libp2p caches a rejection by message id for 5 minutes, so the
        same message would then be refused from every other peer too — an honest one
        relayed by a peer over its budget, for instance. Dropped here, it is neither
        cached nor marked seen, and a copy from another peer is accepted. Duplicates count
        too (each costs py-libp2p a task and a hash; honest peers send each message once).
        If a py-libp2p upgrade renames ``push_msg``, the limits silently stop.
        """
        original = pubsub.push_msg
        kinds = {topic: kind for kind, topic in self._topics.items()}

        async def limited(msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
            if self._admit_gossip(msg_forwarder, msg, kinds):
                await original(msg_forwarder, msg)

        limited._ekklesia_push = (original, kinds)  # type: ignore[attr-defined]
        pubsub.push_msg = limited  # type: ignore[method-assign]

    def _limit_before_tasks(self, pubsub: Pubsub) -> None:
        """Apply the limits where py-libp2p's reader hands each message to a new task.

        Its read loop parses an RPC (up to 1 MiB) and calls ``manager.run_task(push_msg,
        peer, msg)`` for every message in it, without waiting: a flood that arrives
        faster than the tasks run piles up as tasks holding their messages. Checking
        there, in the reader, drops the excess before a task exists, so memory follows
        the limits rather than the attacker's bandwidth. A pass-through wrapper of the
        running manager's ``run_task`` (this instance only); anything else it schedules
        is untouched. Without it (a py-libp2p change), the check in ``push_msg`` remains.
        """
        push = pubsub.push_msg
        marker = getattr(push, "_ekklesia_push", None)
        manager = getattr(pubsub, "manager", None)
        if marker is None or manager is None or not hasattr(manager, "run_task"):
            return
        original_push, kinds = marker
        original_run_task = manager.run_task
        seen_has = getattr(getattr(pubsub, "seen_messages", None), "has", None)

        def run_task(async_fn: Any, *args: Any, **kwargs: Any) -> Any:
            if async_fn is push and len(args) == 2 and not kwargs:
                if not self._admit_gossip(args[0], args[1], kinds):
                    return None
                # A copy of a message already validated (in a mesh of 4, two of every
                # three arrive as relays): `push_msg` would drop it first thing, after
                # a task and its bookkeeping. Counted against the forwarder's rate above.
                if seen_has is not None and seen_has(message_id(args[1].data)):
                    self._counters["gossip_duplicates"] += 1
                    return None
                async_fn = original_push  # checked: skip the check in the wrapper
            return original_run_task(async_fn, *args, **kwargs)

        manager.run_task = run_task

    def _admit_gossip(self, forwarder: ID, msg: rpc_pb2.Message, kinds: Mapping[str, TopicKind]) -> bool:
        try:
            kind = next((kinds[t] for t in msg.topicIDs if t in kinds), None)
            if kind is None:
                return True  # not one of our topics: py-libp2p ignores it
            fwd = forwarder.to_base58()
            if fwd == self.peer_id:
                return True  # our own publish
            data = msg.data
            if self._rate.admit(fwd, kind.value, len(data), trio.current_time()):
                return True
            self._rate_limited(fwd, kind, msg.from_id == forwarder.to_bytes())
            return False
        except Exception as exc:  # never let the receive path die; the validator still runs
            self._log.warning("p2p.rate_limit_error", error=repr(exc))
            return True

    def _rate_limited(self, fwd: str, kind: TopicKind, own: bool) -> None:
        """A message from ``fwd`` was over its rate and dropped. The penalty (paced, see
        ratelimit.py) is for a peer flooding its *own* messages: an honest peer relaying
        others' messages may exceed our limit for it when someone floods it, and must not
        be banned for that; what it relays over the limit is dropped all the same."""
        self._counters["gossip_rate_limited"] += 1
        if not own:
            return
        weight = self._rate.penalty_due(fwd, kind.value, trio.current_time())
        if weight:
            amount = weight * self.config.penalties.get("rate_limited", DEFAULT_PENALTIES["rate_limited"])
            self._log.info("p2p.rate_limited", peer=fwd, topic=kind.value, weight=round(weight, 1))
            self._penalise(fwd, "rate_limited", amount)

    async def _drain(self, kind: TopicKind, sub: Any) -> None:
        """Empty py-libp2p's 32-slot subscription queue into our bounded channel at once."""
        channel = self._incoming[kind]
        own = self._id.to_bytes()
        deliver_own = self.config.deliver_own_messages
        async for msg in sub:
            if msg.from_id == own and not deliver_own:
                continue
            data = bytes(msg.data)
            try:
                origin = ID(msg.from_id).to_base58()
                channel.offer(GossipMessage(kind, data, origin, message_id(data)))
            except trio.WouldBlock:
                self._counters["gossip_dropped"] += 1
                dropped = self._counters["gossip_dropped"]
                if dropped in (1, 10, 100) or not dropped % 1000:
                    self._log.warning("p2p.incoming_full", topic=kind.value, dropped=dropped)
                continue
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            self._counters["gossip_received"] += 1
            self._counters["gossip_received_bytes"] += len(data)

    # ================================================================== request/response

    def set_request_handler(self, fn: RequestHandler | None) -> None:
        """Set ``async fn(peer_id, request_bytes) -> response_bytes`` (None: refuse)."""
        self._request_handler = fn
        if self._reqresp is not None:
            self._reqresp.set_handler(fn)

    async def request(self, peer_id: str, data: bytes, timeout: float | None = None) -> bytes:
        """Send ``data`` to a connected peer and return its handler's response.

        Raises ``PayloadTooLarge`` (not sent), ``RequestTimeout``, ``ResponseTooLarge``,
        ``RemoteError`` (the peer answered with an error status), ``ProtocolViolation``
        or ``PeerUnavailable`` — all ``RequestError`` but the first.
        """
        rr = self._reqresp
        if self._state is not _State.RUNNING or rr is None:
            raise NetworkNotRunning(f"network is {self._state.value}")
        _check_peer_id(peer_id)
        if peer_id == self.peer_id:
            raise PeerUnavailable(peer_id, "that is us")
        return await rr.request(peer_id, data, self.config.request_timeout if timeout is None else timeout)

    # ================================================================== peers

    def _host_has_connections(self) -> bool:
        host = self._host
        return host is not None and any(host.get_network().connections.values())

    def peers(self) -> list[str]:
        """Peer ids we have at least one open connection to."""
        if self._host is None:
            return []
        return sorted(str(p) for p, conns in self._host.get_network().connections.items() if conns)

    def listen_addrs(self) -> list[str]:
        """Our addresses, each ending in ``/p2p/<our peer id>`` (dialable by others)."""
        if self._host is None:
            return []
        return [str(a) for a in self._host.get_addrs()]

    async def add_peer(self, addr: str, *, persistent: bool = True) -> str:
        """Dial ``/ip4/…/tcp/…/p2p/<id>``; if ``persistent``, keep re-dialling it like a
        bootstrap peer. Returns its peer id. Raises ``PeerUnavailable`` if the first dial
        fails (a persistent peer is still retried in the background)."""
        info = _parse_peer_addr(addr)
        pid = str(info.peer_id)
        if pid == self.peer_id:
            raise ValueError("cannot add ourselves as a peer")
        if persistent:
            known = self._persistent.setdefault(pid, [])
            known.extend(a for a in info.addrs if a not in known)
        if self._state is not _State.RUNNING or pid in self.peers():
            return pid
        self._backoff.reset(pid)
        if pid in self._dialing:  # a dial is under way: wait for its outcome
            with contextlib.suppress(trio.TooSlowError):
                await self.wait_for_peers([pid], timeout=self.config.dial_timeout)
        elif await self._dial(pid, list(info.addrs)):
            return pid
        if pid not in self.peers():
            raise PeerUnavailable(pid, "dial failed")
        return pid

    async def block_peer(self, peer_id: str) -> None:
        """Admin/testing hook: disconnect a peer and refuse it both ways until unblocked."""
        _check_peer_id(peer_id)
        self._blocked.add(peer_id)
        self._log.info("p2p.peer_blocked", peer=peer_id)
        await self._disconnect(peer_id)

    async def unblock_peer(self, peer_id: str) -> None:
        """Undo ``block_peer``; re-dials the peer at once if we know its address."""
        self._blocked.discard(peer_id)
        self._backoff.reset(peer_id)
        if self._host is not None:
            self._host.get_network().unblock_peer(ID.from_base58(peer_id))  # negative dial cache
        self._log.info("p2p.peer_unblocked", peer=peer_id)
        self._wake_dialer.set()

    def blocked_peers(self) -> list[str]:
        return sorted(self._blocked)

    def penalise(self, peer_id: str, reason: str, amount: float | None = None) -> float:
        """Lower a peer's score (``amount`` defaults to ``config.penalties[reason]``).

        At ``config.scores.ban_threshold`` the peer is disconnected and refused (both
        ways) for ``ban_duration`` seconds. Returns the new score.
        """
        _check_peer_id(peer_id)
        self._penalise(peer_id, reason, amount)
        return self.score(peer_id)

    def score(self, peer_id: str) -> float:
        return self._scores.score(peer_id, trio.current_time())

    def is_banned(self, peer_id: str) -> bool:
        return self._scores.is_banned(peer_id, trio.current_time())

    def scores(self) -> dict[str, dict[str, object]]:
        return self._scores.snapshot(trio.current_time())

    async def wait_for_peers(self, peer_ids: Iterable[str] = (), *, count: int = 0, timeout: float = 10.0) -> None:
        """Wait until connected to all of ``peer_ids`` and to at least ``count`` peers."""
        want = set(peer_ids)
        with trio.fail_after(timeout):
            while True:
                now = set(self.peers())
                if want <= now and len(now) >= count:
                    return
                await self._peers_changed.wait()

    async def wait_for_disconnect(self, peer_id: str, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while peer_id in self.peers():
                await self._peers_changed.wait()

    def stats(self) -> dict[str, int]:
        """Counters for metrics (monotonic), plus current peer counts."""
        out = dict(self._counters)
        if self._reqresp is not None:
            out.update({f"rr_{k}": v for k, v in vars(self._reqresp.stats).items()})
        out["peers"] = len(self.peers())
        out["peers_blocked"] = len(self._blocked)
        out["record_cache_hits"], out["record_cache_misses"] = record_cache.counts()
        out["yamux_window_updates"], out["yamux_reads_uncredited"] = yamux_credit.counts()
        return out

    # ================================================================== internals

    def _refusal(self, pid: str, direction: str) -> str | None:
        if self._state in (_State.STOPPING, _State.STOPPED):
            return "stopping"
        if pid in self._blocked:
            return "blocked"
        if self._scores.is_banned(pid, trio.current_time()):
            return "banned"
        if (
            direction == "inbound"
            and pid not in self._persistent
            and self._host is not None
            and pid not in self._host.get_network().connections
            and len(self._host.get_network().connections) >= self.config.max_peers
        ):
            return "full"
        return None

    def _penalise(self, pid: str, reason: str, amount: float | None = None) -> None:
        if amount is None:
            amount = self.config.penalties.get(reason, self.config.penalties.get("manual", 10.0))
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"penalty must be finite and >= 0, got {amount}")
        now = trio.current_time()
        already = self._scores.is_banned(pid, now)
        banned = self._scores.penalise(pid, reason, amount, now)
        if already:  # what it sent before the disconnect: counted, not logged line by line
            self._log.debug("p2p.peer_penalised", peer=pid, reason=reason, amount=amount, banned=True)
            return
        self._log.info(
            "p2p.peer_penalised",
            peer=pid,
            reason=reason,
            amount=amount,
            score=round(self._scores.score(pid, now), 2),
        )
        if banned:
            self._counters["peers_banned"] += 1
            self._log.warning(
                "p2p.peer_banned",
                peer=pid,
                until=self._scores.banned_until(pid, now),
                reasons=self._scores.reasons(pid),
            )
            if self._nursery is not None:
                self._nursery.start_soon(self._disconnect, pid)

    async def _disconnect(self, pid: str) -> None:
        if self._host is None:
            return
        if self._reqresp is not None:
            self._reqresp.drop_peer(pid)
        try:
            await self._host.disconnect(ID.from_base58(pid))
        except Exception as exc:
            self._log.debug("p2p.disconnect_error", peer=pid, error=repr(exc))

    def _dial_targets(self) -> list[tuple[str, list[multiaddr.Multiaddr]]]:
        targets = [(pid, addrs) for pid, addrs in self._persistent.items()]
        connected = set(self.peers())
        if len(connected) < self.config.min_peers and self._host is not None:
            ps = self._host.get_peerstore()
            for p in ps.peers_with_addrs():
                pid = str(p)
                if pid == self.peer_id or pid in self._persistent:
                    continue
                try:
                    addrs = list(ps.addrs(p))
                except Exception:
                    continue
                if addrs:
                    targets.append((pid, addrs))
        return targets

    async def _dial_loop(self) -> None:
        while True:
            self._wake_dialer = trio.Event()
            now = trio.current_time()
            connected = set(self.peers())
            room = self.config.min_peers - len(connected)
            next_due = now + 1.0
            assert self._nursery is not None
            for pid, addrs in self._dial_targets():
                if pid in connected or pid in self._dialing or self._refusal(pid, "outbound"):
                    continue
                if pid not in self._persistent and room <= 0:
                    continue
                if not self._backoff.ready(pid, now):
                    next_due = min(next_due, self._backoff.next_attempt(pid))
                    continue
                if pid not in self._persistent:
                    room -= 1
                self._nursery.start_soon(self._dial, pid, addrs)
            with trio.move_on_at(max(next_due, now + 0.05)):
                await self._wake_dialer.wait()

    async def _dial(self, pid: str, addrs: list[multiaddr.Multiaddr]) -> bool:
        if pid in self._dialing or self._host is None:
            return pid in self.peers()
        self._dialing.add(pid)
        self._counters["dials"] += 1
        ok = False
        try:
            peer_id = ID.from_base58(pid)
            self._host.get_network().unblock_peer(peer_id)  # our backoff rules, not its cache
            with trio.move_on_after(self.config.dial_timeout):
                await self._host.connect(PeerInfo(peer_id, await _resolve_dns(addrs)))
                ok = True
            if not ok:
                raise TimeoutError(f"dial timed out after {self.config.dial_timeout}s")
        except Exception as exc:
            self._counters["dial_failures"] += 1
            delay = self._backoff.failed(pid, trio.current_time())
            self._log.debug("p2p.dial_failed", peer=pid, error=repr(exc), retry_in=round(delay, 2))
        finally:
            self._dialing.discard(pid)
            self._wake_dialer.set()
        return ok and pid in self.peers()

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(5)
            self._scores.forget_recovered(trio.current_time())
            self._rate.prune(trio.current_time())
            if self._reqresp is not None:
                self._reqresp.prune_pool()
                self._reqresp.prune_limits()

    def _on_connected(self, pid: str) -> None:
        if pid not in self._connected_since:
            self._connected_since[pid] = trio.current_time()
            self._log.info("p2p.peer_connected", peer=pid, peers=len(self.peers()))
        self._notify_peers_changed()

    def _on_disconnected(self, pid: str) -> None:
        if self._host is not None and self._host.get_network().get_connections(ID.from_base58(pid)):
            return  # another connection to the peer is still open
        since = self._connected_since.pop(pid, None)
        if since is not None:
            now = trio.current_time()
            if now - since >= self.config.stable_after:
                self._backoff.reset(pid)
            else:  # accepted, then dropped at once: back off as after a failed dial
                self._backoff.failed(pid, now)
            self._log.info("p2p.peer_disconnected", peer=pid, lasted=round(now - since, 2))
        if self._reqresp is not None:
            self._reqresp.drop_peer(pid)
        self._notify_peers_changed()
        self._wake_dialer.set()

    def _notify_peers_changed(self) -> None:
        ev, self._peers_changed = self._peers_changed, trio.Event()
        ev.set()

    def _guard(self, handler: Callable[[INetStream], Any]) -> Callable[[INetStream], Any]:
        async def guarded(stream: INetStream) -> None:
            try:
                await handler(stream)
            except Exception as exc:
                self._counters["handler_errors"] += 1
                self._log.debug("p2p.stream_handler_error", error=repr(exc))
                with (
                    trio.CancelScope(shield=True),
                    trio.move_on_after(1),
                    contextlib.suppress(Exception),
                ):
                    await stream.reset()

        guarded._ekklesia_guarded = True  # type: ignore[attr-defined]
        return guarded

    def _count_send_drops(self, gossipsub: GossipSub) -> None:
        """Count the RPCs py-libp2p drops on send (it only logs them at debug level).

        A pass-through wrapper, on this instance only, of ``_handle_dropped_rpc`` (the
        one place GossipSub.send_rpc reports a full 32-slot peer queue or an oversized
        RPC); if a py-libp2p upgrade renames it, counting silently stops, nothing else.
        """
        original = getattr(gossipsub, "_handle_dropped_rpc", None)
        if original is None:
            return

        def counting(peer_id: ID, rpc: rpc_pb2.RPC, reason: str) -> None:
            if len(rpc.publish):
                self._counters["gossip_send_dropped"] += len(rpc.publish)
            original(peer_id, rpc, reason)

        gossipsub._handle_dropped_rpc = counting  # type: ignore[method-assign]

    def _listen_maddrs(self) -> list[multiaddr.Multiaddr]:
        return [multiaddr.Multiaddr(a) for a in self.config.listen_addrs]


class _Notifee(INotifee):
    def __init__(self, net: Network) -> None:
        self._net = net

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._net._on_connected(str(conn.muxed_conn.peer_id))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._net._on_disconnected(str(conn.muxed_conn.peer_id))

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


class _NoAutoConnect(AutoConnector):
    """py-libp2p's auto-connector with dialling switched off."""

    async def maybe_connect(self) -> None:
        return None


async def _resolve_dns(addrs: list[multiaddr.Multiaddr]) -> list[multiaddr.Multiaddr]:
    """Turn /dns, /dns4, /dns6 addresses into /ip4, /ip6 ones with the system resolver.

    py-libp2p resolves them with its own DNS client, which ignores /etc/hosts and, when
    the query fails, silently keeps the unresolved address (the dial then fails).
    """
    out: list[multiaddr.Multiaddr] = []
    for addr in addrs:
        protos = [p.name for p in addr.protocols()]
        if not protos or protos[0] not in ("dns", "dns4", "dns6") or "tcp" not in protos:
            out.append(addr)
            continue
        host = addr.value_for_protocol(protos[0])
        port = int(addr.value_for_protocol("tcp"))
        family = {"dns4": socket.AF_INET, "dns6": socket.AF_INET6}.get(protos[0], socket.AF_UNSPEC)
        for fam, _, _, _, sockaddr in await trio.socket.getaddrinfo(host, port, family, socket.SOCK_STREAM):
            ip = "ip4" if fam == socket.AF_INET else "ip6"
            resolved = multiaddr.Multiaddr(f"/{ip}/{sockaddr[0]}/tcp/{port}")
            if resolved not in out:
                out.append(resolved)
    return out


def _check_listen_address_free(addr: multiaddr.Multiaddr) -> None:
    """Refuse a fixed TCP port something already listens on (see ListenAddressInUse)."""
    try:
        port = int(addr.value_for_protocol("tcp"))
    except Exception:
        return
    ip, family = None, socket.AF_INET
    for proto, fam in (("ip4", socket.AF_INET), ("ip6", socket.AF_INET6)):
        try:
            ip = addr.value_for_protocol(proto)
        except Exception:
            continue
        if ip:
            family = fam
            break
    if not port or not ip:
        return
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR (not REUSEPORT): ignores TIME_WAIT leftovers of a previous run,
        # but still collides with a live listener, REUSEPORT or not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((ip, port))
    except OSError as exc:
        raise ListenAddressInUse(f"cannot listen on {addr}: {exc.strerror or exc}") from exc
    finally:
        probe.close()


def _parse_peer_addr(addr: str) -> PeerInfo:
    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except Exception as exc:
        raise ValueError(f"not a /…/p2p/<peer id> multiaddr: {addr!r} ({exc})") from None
    if not info.addrs:
        raise ValueError(f"no transport address in {addr!r}")
    return info


def _check_peer_id(peer_id: str) -> None:
    try:
        ID.from_base58(peer_id)
    except Exception:
        raise ValueError(f"not a peer id: {peer_id!r}") from None
