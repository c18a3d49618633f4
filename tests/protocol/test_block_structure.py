"""Block.check_structure: the header's commitments must match the body, and each
kind of mismatch is reported with its own reason. Also the documented hashes."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import budget, evidences, key, txs

from protocol import merkle
from protocol.types import (
    ZERO_HASH,
    Block,
    Commit,
    DuplicateVoteEvidence,
    Tx,
    Vote,
    VoteType,
    commit_hash,
    make_block,
    tx_root,
)
from protocol.validators import ValidatorSet

CHAIN = "block-test"
VALIDATORS = ValidatorSet.of((key(i).public_key, 1) for i in range(3))


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def block_1() -> Block:
    return make_block(chain_id=CHAIN, height=1, time_ms=1_000, prev_hash=ZERO_HASH,
                      app_hash=bytes(32), validators_hash=VALIDATORS.hash,
                      proposer=key(0).public_key)


def commit_for(block: Block) -> Commit:
    return Commit.from_votes([
        Vote.create(key(i), CHAIN, VoteType.PRECOMMIT, block.height, 0, block.hash, 2_000)
        for i in range(3)
    ])


def evidence() -> DuplicateVoteEvidence:
    a = Vote.create(key(1), CHAIN, VoteType.PREVOTE, 1, 0, None, 1)
    b = Vote.create(key(1), CHAIN, VoteType.PREVOTE, 1, 0, b"\x07" * 32, 2)
    return DuplicateVoteEvidence.of(a, b)


def block_2() -> Block:
    parent = block_1()
    return make_block(
        chain_id=CHAIN, height=2, time_ms=3_000, prev_hash=parent.hash, app_hash=bytes(32),
        validators_hash=VALIDATORS.hash, proposer=key(1).public_key,
        txs=tuple(Tx.create(key(5), CHAIN, n, "k", bytes([n])) for n in range(3)),
        last_commit=commit_for(parent), evidence=(evidence(),),
    )


def with_header(block: Block, **changes: Any) -> Block:
    return dataclasses.replace(block, header=dataclasses.replace(block.header, **changes))


def test_well_formed_blocks_pass() -> None:
    assert block_1().check_structure() is None
    assert block_2().check_structure() is None


def test_tx_root_mismatch() -> None:
    b = block_2()
    reason = "tx root does not match the transactions"
    assert with_header(b, tx_root=ZERO_HASH).check_structure() == reason
    assert dataclasses.replace(b, txs=b.txs[:-1]).check_structure() == reason
    assert dataclasses.replace(b, txs=b.txs[::-1]).check_structure() == reason  # order counts
    assert dataclasses.replace(b, txs=()).check_structure() == reason


def test_evidence_hash_mismatch() -> None:
    b = block_2()
    reason = "evidence hash does not match the evidence"
    assert dataclasses.replace(b, evidence=()).check_structure() == reason
    assert with_header(b, evidence_hash=ZERO_HASH).check_structure() == reason


def test_last_commit_hash_mismatch() -> None:
    b = block_2()
    reason = "last commit hash does not match the last commit"
    assert with_header(b, last_commit_hash=ZERO_HASH).check_structure() == reason
    assert b.last_commit is not None
    fewer = dataclasses.replace(b.last_commit, signatures=b.last_commit.signatures[:2])
    assert dataclasses.replace(b, last_commit=fewer).check_structure() == reason


def test_missing_last_commit_above_height_one() -> None:
    b = with_header(dataclasses.replace(block_2(), last_commit=None), last_commit_hash=ZERO_HASH)
    assert b.check_structure() == "a block above height 1 must carry the previous block's commit"


def test_last_commit_for_the_wrong_height() -> None:
    b = block_2()
    assert b.last_commit is not None
    wrong = dataclasses.replace(b.last_commit, height=5)
    b = with_header(dataclasses.replace(b, last_commit=wrong), last_commit_hash=wrong.digest())
    assert b.check_structure() == "last commit is not for the previous height"


def test_last_commit_for_the_wrong_block() -> None:
    b = with_header(block_2(), prev_hash=b"\x99" * 32)
    assert b.check_structure() == "last commit is not for the previous block"


def test_transaction_for_another_chain() -> None:
    b = block_2()
    foreign = (*b.txs, Tx.create(key(6), "another-chain", 0, "k", b""))
    b = with_header(dataclasses.replace(b, txs=foreign), tx_root=tx_root(foreign))
    assert b.check_structure() == "a transaction is for another chain"


def test_height_zero_is_refused() -> None:
    assert with_header(block_1(), height=0).check_structure() == "heights start at 1"


def test_first_block_has_no_last_commit_and_a_zero_parent() -> None:
    parent = block_1()
    commit = commit_for(parent)
    carrying = with_header(dataclasses.replace(parent, last_commit=commit), last_commit_hash=commit.digest())
    assert carrying.check_structure() == "the first block cannot carry a last commit"
    assert with_header(block_1(), prev_hash=b"\x01" * 32).check_structure() == (
        "the first block's previous hash must be zero"
    )


def test_a_transaction_twice_in_one_block_is_refused() -> None:
    b = block_2()
    twice = (*b.txs, b.txs[0])
    b = with_header(dataclasses.replace(b, txs=twice), tx_root=tx_root(twice))
    assert b.check_structure() == "a transaction appears twice"


@budget(25)
@given(st.lists(txs(chain_id=CHAIN), max_size=4, unique_by=lambda t: t.hash), st.lists(evidences(), max_size=3),
       st.integers(1, 2**64 - 1))
def test_make_block_always_builds_a_consistent_block(
    block_txs: list[Tx], block_evidence: list[DuplicateVoteEvidence], height: int
) -> None:
    parent = block_1()
    last = dataclasses.replace(commit_for(parent), height=height - 1) if height > 1 else None
    b = make_block(chain_id=CHAIN, height=height, time_ms=0,
                   prev_hash=parent.hash if last else ZERO_HASH, app_hash=bytes(32),
                   validators_hash=VALIDATORS.hash, proposer=key(0).public_key,
                   txs=tuple(block_txs), last_commit=last, evidence=tuple(block_evidence))
    assert b.check_structure() is None
    assert Block.decode(b.encode()) == b


def test_documented_hashes() -> None:
    b = block_2()
    assert b.hash == sha256(b.header.encode())
    assert b.header.tx_root == merkle.root([sha256(tx.encode()) for tx in b.txs])
    assert all(tx.hash == sha256(tx.encode()) for tx in b.txs)
    assert b.header.evidence_hash == merkle.root([sha256(e.encode()) for e in b.evidence])
    assert b.last_commit is not None
    assert b.header.last_commit_hash == sha256(b.last_commit.encode())
    assert commit_hash(None) == ZERO_HASH == bytes(32)
    assert block_1().header.tx_root == block_1().header.evidence_hash == sha256(b"")
    assert VALIDATORS.hash == sha256(VALIDATORS.encode())


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(block_1().header)])
def test_block_hash_covers_every_header_field(field: str) -> None:
    b = block_2()
    value = getattr(b.header, field)
    changed = value + 1 if isinstance(value, int) else (
        value + "x" if isinstance(value, str) else bytes([value[0] ^ 1]) + value[1:]
    )
    assert with_header(b, **{field: changed}).hash != b.hash
