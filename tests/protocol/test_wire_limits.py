"""Field bounds at their exact edges: the limit itself decodes, one more does not."""

from __future__ import annotations

from typing import Any

import pytest
from protocol_strategies import example_instances

from protocol import codec, merkle
from protocol.errors import DecodeError
from protocol.limits import (
    MAX_BLOCK_TXS,
    MAX_CHAIN_ID,
    MAX_COSIGNATURES,
    MAX_EVIDENCE,
    MAX_KIND,
    MAX_ROUND,
    MAX_TX_BODY,
    MAX_VALIDATORS,
    U64_MAX,
)
from protocol.types import Block, Commit, Proposal, Tx, Vote
from protocol.validators import MAX_POWER, ValidatorSet
from protocol.wire import Struct


def with_field(instance: Struct, index: int, value: Any) -> bytes:
    tree = instance.to_wire()
    tree[index] = value
    return codec.pack(tree)


def accepts(cls: type[Struct], data: bytes) -> bool:
    try:
        cls.decode(data, max_size=len(data))
    except DecodeError:
        return False
    return True


def keys(n: int, start: int = 1) -> list[bytes]:
    """`n` distinct, sorted 32-byte keys."""
    return [i.to_bytes(32, "big") for i in range(start, start + n)]


TX = example_instances()[Tx]
VOTE = example_instances()[Vote]


@pytest.mark.parametrize(
    ("index", "ok", "too_long"),
    [
        (0, "c" * MAX_CHAIN_ID, "c" * (MAX_CHAIN_ID + 1)),
        (0, "é" * (MAX_CHAIN_ID // 2), "é" * (MAX_CHAIN_ID // 2) + "c"),  # bytes, not chars
        (0, "", None),
        (3, "k" * MAX_KIND, "k" * (MAX_KIND + 1)),
        (3, "€" * (MAX_KIND // 3), "€" * (MAX_KIND // 3 + 1)),
        (4, b"\x00" * MAX_TX_BODY, b"\x00" * (MAX_TX_BODY + 1)),
        (4, b"", None),
    ],
)
def test_tx_string_and_body_limits_count_bytes(index: int, ok: Any, too_long: Any) -> None:
    assert accepts(Tx, with_field(TX, index, ok))
    if too_long is not None:
        assert not accepts(Tx, with_field(TX, index, too_long))


@pytest.mark.parametrize("value", [0, 1, 2**32, U64_MAX])
def test_u64_fields_take_the_whole_range(value: int) -> None:
    assert accepts(Tx, with_field(TX, 2, value))
    assert accepts(Vote, with_field(VOTE, 1, value))


@pytest.mark.parametrize(("value", "ok"), [(0, True), (MAX_ROUND, True), (MAX_ROUND + 1, False),
                                           (-1, False)])
def test_round_bounds(value: int, ok: bool) -> None:
    assert accepts(Vote, with_field(VOTE, 2, value)) is ok


def test_pol_round_may_be_minus_one_and_no_lower() -> None:
    proposal = example_instances()[Proposal]
    assert accepts(Proposal, with_field(proposal, 2, -1))
    assert not accepts(Proposal, with_field(proposal, 2, -2))


@pytest.mark.parametrize(("power", "ok"), [(0, False), (1, True), (MAX_POWER, True),
                                           (MAX_POWER + 1, False)])
def test_validator_power_bounds(power: int, ok: bool) -> None:
    assert accepts(ValidatorSet, codec.pack([[[bytes(32), power]]])) is ok


def test_cosignature_count_limit() -> None:
    sender = b"\xff" * 32  # sorts after every co-signer below
    tree = TX.to_wire()
    tree[1] = sender
    tree[5] = [[k, bytes(64)] for k in keys(MAX_COSIGNATURES)]
    assert accepts(Tx, codec.pack(tree))
    tree[5] = [[k, bytes(64)] for k in keys(MAX_COSIGNATURES + 1)]
    with pytest.raises(DecodeError, match="exceeds"):
        Tx.decode(codec.pack(tree))


def test_commit_signature_count_limit() -> None:
    def commit(n: int) -> bytes:
        return codec.pack([1, 0, bytes(32), [[k, 0, bytes(64)] for k in keys(n)]])

    assert accepts(Commit, commit(MAX_VALIDATORS))
    with pytest.raises(DecodeError, match="exceeds"):
        Commit.decode(commit(MAX_VALIDATORS + 1))


def test_validator_count_limit() -> None:
    def vset(n: int) -> bytes:
        return codec.pack([[[k, 1] for k in keys(n)]])

    assert accepts(ValidatorSet, vset(MAX_VALIDATORS))
    with pytest.raises(DecodeError, match="exceeds"):
        ValidatorSet.decode(vset(MAX_VALIDATORS + 1))


def test_block_transaction_and_evidence_count_limits() -> None:
    block = example_instances()[Block]
    tree = block.to_wire()
    small_tx = ["", bytes(32), 0, "", b"", [], bytes(64)]
    evidence = tree[3][0]
    for index, item, limit in ((1, small_tx, MAX_BLOCK_TXS), (3, evidence, MAX_EVIDENCE)):
        at_limit = list(tree)
        at_limit[index] = [item] * limit
        assert accepts(Block, codec.pack(at_limit))
        at_limit[index] = [item] * (limit + 1)
        with pytest.raises(DecodeError, match="exceeds"):
            Block.decode(codec.pack(at_limit))


def test_inclusion_proof_path_limit() -> None:
    def proof(n: int) -> bytes:
        return codec.pack([0, 1, [bytes(32)] * n])

    assert accepts(merkle.InclusionProof, proof(merkle.MAX_PROOF_DEPTH))
    with pytest.raises(DecodeError, match="exceeds"):
        merkle.InclusionProof.decode(proof(merkle.MAX_PROOF_DEPTH + 1))
