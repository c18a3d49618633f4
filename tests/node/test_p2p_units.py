"""node.p2p pieces that need no network: key file, scores, backoff, framing, config."""

import os
import stat

import pytest
import trio

from node.p2p import (
    Network,
    NetworkConfig,
    NetworkNotRunning,
    NodeKeyError,
    PayloadTooLarge,
    TopicKind,
    load_or_create_node_key,
    message_id,
    peer_id_of,
    topic_name,
)
from node.p2p.reqresp import _CleanEOF, _FrameTooLarge, encode_frame, read_frame
from node.p2p.scores import Backoff, PeerScores, ScoreParams

# ------------------------------------------------------------------ node key


def test_node_key_is_created_0600_and_reloaded(tmp_path):
    path = tmp_path / "home" / "node_key"
    kp = load_or_create_node_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_or_create_node_key(path)
    assert peer_id_of(again) == peer_id_of(kp)
    assert peer_id_of(kp).startswith("12D3KooW")  # Ed25519 peer id
    assert [p.name for p in path.parent.iterdir()] == ["node_key"]  # no temp files left


def test_node_key_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "node_key"
    load_or_create_node_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(NodeKeyError, match="chmod 600"):
        load_or_create_node_key(path)


def test_node_key_garbage_is_refused(tmp_path):
    path = tmp_path / "node_key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(NodeKeyError):
        load_or_create_node_key(path)


def test_network_uses_the_key_file(tmp_path):
    path = tmp_path / "node_key"
    a = Network(NetworkConfig(chain_id="c", node_key_path=path))
    b = Network(NetworkConfig(chain_id="c", node_key_path=path))
    assert a.peer_id == b.peer_id == peer_id_of(load_or_create_node_key(path))


# ------------------------------------------------------------------ scores and backoff


def test_penalties_accumulate_ban_and_cool_off():
    s = PeerScores(ScoreParams(ban_threshold=-50, ban_duration=100, half_life=1e9))
    assert s.score("p", 0) == 0
    assert not s.penalise("p", "invalid_gossip", 20, now=0)
    assert not s.penalise("p", "invalid_gossip", 20, now=1)
    assert s.score("p", 1) == pytest.approx(-40)
    assert s.penalise("p", "bad_response", 20, now=2)  # crosses -50: banned now
    assert s.is_banned("p", 50)
    assert not s.penalise("p", "bad_response", 20, now=3)  # already banned: no new ban
    assert s.reasons("p") == {"invalid_gossip": 2, "bad_response": 2}
    assert not s.is_banned("p", 102)  # cool-off served
    assert s.score("p", 102) == 0  # clean slate
    assert not s.is_banned("q", 0)


def test_scores_recover_with_half_life():
    s = PeerScores(ScoreParams(ban_threshold=-100, half_life=10))
    s.penalise("p", "x", 40, now=0)
    assert s.score("p", 10) == pytest.approx(-20)
    assert s.score("p", 20) == pytest.approx(-10)
    s.forget_recovered(now=1000)
    assert s.snapshot(1000) == {}


def test_penalty_must_be_non_negative():
    with pytest.raises(ValueError):
        PeerScores().penalise("p", "x", -1, now=0)


def test_backoff_grows_to_cap_and_resets():
    b = Backoff(base=1, cap=8, jitter=0)
    delays = [b.failed("p", now=0) for _ in range(6)]
    assert delays == [1, 2, 4, 8, 8, 8]
    assert not b.ready("p", 7.9) and b.ready("p", 8)
    b.reset("p")
    assert b.ready("p", 0) and b.failures("p") == 0


# ------------------------------------------------------------------ framing


class FakeStream:
    def __init__(self, data: bytes, chunk: int = 3):
        self.data, self.chunk = data, chunk

    async def read(self, n: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        n = min(n or self.chunk, self.chunk)
        out, self.data = self.data[:n], self.data[n:]
        return out


async def test_frames_roundtrip_and_limits():
    body = bytes(range(256)) * 3
    stream = FakeStream(encode_frame(body) + encode_frame(b""))
    assert await read_frame(stream, 1000) == body
    assert await read_frame(stream, 1000) == b""
    with pytest.raises(_CleanEOF):
        await read_frame(stream, 1000)
    with pytest.raises(_FrameTooLarge) as exc:
        await read_frame(FakeStream(encode_frame(body)), len(body) - 1)
    assert exc.value.size == len(body)
    with pytest.raises(Exception, match="ended"):
        await read_frame(FakeStream(encode_frame(body)[:-1]), 1000)


# ------------------------------------------------------------------ config and API guards


def test_topics_and_message_ids():
    assert topic_name("main-1", TopicKind.TXS) == "ekklesia/main-1/txs"
    assert topic_name("main-1", "consensus") == "ekklesia/main-1/consensus"
    assert message_id(b"x") == message_id(bytearray(b"x")) != message_id(b"y")


@pytest.mark.parametrize(
    "bad",
    [
        {"chain_id": ""},
        {"chain_id": "a/b"},
        {"min_peers": 5, "max_peers": 4},
        {"max_gossip_bytes": 1024 * 1024},  # py-libp2p drops >= 1 MiB silently
        {"mesh_degree_low": 7, "mesh_degree": 6},
    ],
)
def test_config_rejects_unsafe_values(bad):
    with pytest.raises(ValueError):
        NetworkConfig(**{"chain_id": "c", **bad}).validate()


async def test_publish_checks_size_before_anything_else():
    net = Network(NetworkConfig(chain_id="c", max_gossip_bytes=1000))
    with pytest.raises(PayloadTooLarge, match="1001 bytes exceeds the limit of 1000"):
        await net.publish("txs", b"x" * 1001)
    with pytest.raises(NetworkNotRunning):
        await net.publish("txs", b"x" * 1000)
    with pytest.raises(NetworkNotRunning):
        await net.request(net.peer_id, b"")
    with pytest.raises(ValueError):
        await net.publish("blocks", b"x")  # not a topic kind


# ------------------------------------------------------------------ signed peer record cache


def test_record_cache_skips_only_exact_repeats():
    import multiaddr
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID
    from libp2p.peer.peerstore import create_signed_peer_record
    from libp2p.pubsub.pb import rpc_pb2

    from node.p2p import record_cache

    def rpc_from(kp, addr: str, seq: int | None = None) -> tuple[rpc_pb2.RPC, ID]:
        pid = ID.from_pubkey(kp.public_key)
        env = create_signed_peer_record(pid, [multiaddr.Multiaddr(addr)], kp.private_key)
        rpc = rpc_pb2.RPC()
        rpc.senderRecord = env.marshal_envelope()
        return rpc, pid

    host = new_host(key_pair=create_new_key_pair())
    sender, other = create_new_key_pair(), create_new_key_pair()
    rpc, pid = rpc_from(sender, "/ip4/127.0.0.1/tcp/4001")
    hits, misses = record_cache.counts()
    assert record_cache.cached_maybe_consume_signed_record(rpc, host, pid)
    assert record_cache.cached_maybe_consume_signed_record(rpc, host, pid)
    assert record_cache.counts() == (hits + 1, misses + 1)
    assert host.get_peerstore().addrs(pid) == [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/4001")]
    # a record for another peer id than the connection's: rejected, and never cached
    wrong, _ = rpc_from(other, "/ip4/127.0.0.1/tcp/4002")
    assert not record_cache.cached_maybe_consume_signed_record(wrong, host, pid)
    assert not record_cache.cached_maybe_consume_signed_record(wrong, host, pid)
    assert record_cache.counts() == (hits + 1, misses + 3)
    # no record at all: accepted, as upstream does
    assert record_cache.cached_maybe_consume_signed_record(rpc_pb2.RPC(), host, pid)
    record_cache.install()
    assert record_cache.installed()
