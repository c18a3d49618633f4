"""Hostile bytes at every door of a running node: gossip validators and handlers, the
sync request handler, genesis and config loaders. Nothing may raise anything but the
package's own error, and the node keeps committing afterwards."""

import time

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_runtime_inprocess import free_base_port

from node.config import Config
from node.errors import NodeError
from node.home import Home
from node.p2p import GossipMessage, Verdict
from node.runtime import Node
from node.testnet import init_testnet
from protocol import codec, crypto, messages
from protocol.errors import DecodeError, ValidationError
from protocol.governance.genesis import Genesis
from protocol.types import Vote, VoteType

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def msgpackish() -> st.SearchStrategy[bytes]:
    """Random bytes, and canonical encodings of random value trees (which get past
    the codec and reach the typed decoders)."""
    leaves = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
              | st.text(max_size=20))
    trees = st.recursive(leaves, lambda inner: st.lists(inner, max_size=6), max_leaves=30)
    return st.binary(max_size=300) | trees.map(lambda v: codec.pack(v)) | trees.map(lambda v: codec.pack([2, v]))


@pytest.fixture
async def node(tmp_path, nursery):
    out = tmp_path / "tn"
    init_testnet(out, 1, base_port=free_base_port(), genesis_time_ms=time.time_ns() // 1_000_000)
    home = Home(out / "node0")
    n = Node(home, Config.load(home, env={"EKKLESIA_API_LISTEN": "127.0.0.1:0"}))
    await nursery.start(n.run)
    with trio.fail_after(30):
        while n.height < 1:
            await trio.sleep(0.05)
    yield n
    n.stop()


async def test_gossip_and_sync_doors_survive_garbage(node):
    penalised = []
    node._penalise = lambda origin, reason: penalised.append(reason)  # observe, keep the node running

    @FUZZ
    @given(data=msgpackish())
    def fuzz(data: bytes) -> None:
        for validate in (node._validate_txs, node._validate_consensus):
            try:
                assert validate("peer", data) in (Verdict.ACCEPT, Verdict.IGNORE, Verdict.REJECT)
            except DecodeError:
                pass  # the network layer rejects and penalises on any exception
        for topic in ("txs", "consensus"):
            try:
                node._on_gossip(topic, GossipMessage(topic, data, "peer", crypto.sha256(data)))
            except DecodeError:
                pass  # _consume turns this into a penalty

    await trio.to_thread.run_sync(fuzz)
    before = node.height

    async def serve(data: bytes) -> object:
        return messages.decode_sync(await node._serve_request("peer", data))

    for data in [b"", b"\xc1", codec.pack([10]), codec.pack([12, [1, 2**32 - 1]]), codec.pack([14, [2**64 - 1]]),
                 codec.pack([99, []]), codec.pack([13, [[]]])]:
        reply = await serve(data)
        assert isinstance(reply, messages.ErrorResponse | messages.StatusResponse | messages.BlocksResponse
                          | messages.VotesResponse)
    huge = await serve(messages.encode_tagged(messages.BlocksRequest(1, 2**32 - 1)))
    assert isinstance(huge, messages.BlocksResponse) and len(huge.blocks) <= messages.MAX_BLOCKS_PER_RESPONSE

    # A validly encoded vote from a stranger with a bad signature: rejected, penalised.
    stranger = crypto.Keypair(bytes(range(32)))
    vote = Vote.create(stranger, node.chain_id, VoteType.PREVOTE, node.height + 1, 0, None, 1)
    forged = Vote(vote.type, vote.height, vote.round, vote.block_hash, vote.validator, vote.timestamp_ms, bytes(64))
    node._on_gossip("consensus", GossipMessage("consensus", messages.encode_tagged(forged), "peer", b""))
    assert penalised, "a forged vote must cost the peer"
    with trio.fail_after(30):
        while node.height < before + 2:
            await trio.sleep(0.05)


@FUZZ
@given(st.text(max_size=400) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_genesis_loader_only_raises_validation_errors(text):
    try:
        Genesis.from_json(text)
    except ValidationError:
        pass


@FUZZ
@given(st.text(max_size=300))
def test_config_loader_only_raises_node_errors(text):
    try:
        Config.from_toml(text, env={})
    except NodeError:
        pass
