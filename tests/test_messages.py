"""Tagged network messages: round trips, unknown tags, cross-table confusion, limits."""

import pytest

from protocol import codec, crypto
from protocol import messages as M
from protocol.errors import DecodeError
from protocol.types import Tx, Vote, VoteType

KEY = crypto.Keypair(bytes(range(32)))


def vote():
    return Vote.create(KEY, "c", VoteType.PRECOMMIT, 3, 1, bytes(32), 1000)


def test_consensus_and_sync_messages_round_trip():
    assert M.decode_consensus(M.encode_tagged(vote())) == vote()
    req = M.BlocksRequest(10, 5)
    assert M.decode_sync(M.encode_tagged(req)) == req
    err = M.ErrorResponse(2, "unknown height")
    assert M.decode_sync(M.encode_tagged(err)) == err


def test_a_sync_message_is_not_accepted_on_the_consensus_topic_and_vice_versa():
    with pytest.raises(DecodeError, match="unknown message tag 12"):
        M.decode_consensus(M.encode_tagged(M.BlocksRequest(1, 1)))
    with pytest.raises(DecodeError, match="unknown message tag 2"):
        M.decode_sync(M.encode_tagged(vote()))


@pytest.mark.parametrize(
    "value",
    [[], [2], [2, [], 1], ["2", []], [2, [1, 2, 3]], [99, []], 7],
)
def test_malformed_envelopes_raise_decode_error(value):
    with pytest.raises(DecodeError):
        M.decode_consensus(codec.pack(value))


def test_tx_batch_limits():
    txs = tuple(Tx.create(KEY, "c", n, "transfer", b"") for n in range(3))
    assert M.decode_tx_batch(M.TxBatch(txs).encode()).txs == txs
    too_many = codec.pack([[t.to_wire() for t in txs * (M.MAX_BATCH_TXS // 3 + 1)]])
    with pytest.raises(DecodeError, match="exceeds"):
        M.decode_tx_batch(too_many)
