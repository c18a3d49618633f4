"""Hypothesis strategies for every wire type of `protocol`, plus small shared helpers.

The strategies produce *valid* instances (every field within its wire bounds, every
struct invariant satisfied) with random, unsigned-looking signatures; tests that
need real signatures build them with `key(i)`. Sizes are kept small by default,
with the field limits themselves sampled now and then so that the boundary
encodings (str8, bin16, array16, ...) are exercised.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from protocol import crypto, merkle
from protocol.limits import (
    MAX_CHAIN_ID,
    MAX_COSIGNATURES,
    MAX_KIND,
    MAX_ROUND,
    MAX_TX_BODY,
    U64_MAX,
)
from protocol.types import (
    Block,
    BlockHeader,
    Commit,
    CommitSig,
    CoSignature,
    DuplicateVoteEvidence,
    Proposal,
    Tx,
    Vote,
    VoteType,
)
from protocol.validators import MAX_POWER, Validator, ValidatorSet
from protocol.wire import Struct


def budget(n: int) -> settings:
    """`settings(max_examples=n)` scaled by the active profile (100 = Hypothesis' default)."""
    active = settings.default
    scale = (active.max_examples if active is not None else 100) / 100
    return settings(max_examples=max(1, round(n * scale)))


def key(i: int) -> crypto.Keypair:
    """A deterministic test key; different `i`, different key."""
    return crypto.Keypair(hashlib.sha256(b"ekklesia-test-key" + i.to_bytes(4, "big")).digest())


def utf8_text(max_bytes: int) -> st.SearchStrategy[str]:
    """Strings of at most `max_bytes` UTF-8 bytes, including the exact limit."""
    return st.one_of(
        st.text(max_size=min(max_bytes, 24)).filter(lambda s: len(s.encode()) <= max_bytes),
        st.just("x" * max_bytes),
        st.just("x" * min(31, max_bytes)),  # the longest fixstr
        st.just("é" * (max_bytes // 2)),  # two bytes a character
    )


u64 = st.integers(0, U64_MAX)
rounds = st.integers(0, MAX_ROUND)
hashes = st.binary(min_size=32, max_size=32)
pubkeys = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=64, max_size=64)
chain_ids = utf8_text(MAX_CHAIN_ID)
tx_kinds = utf8_text(MAX_KIND)
# Small bodies usually; sometimes a size at an encoding boundary or the limit itself.
bodies = st.one_of(
    st.binary(max_size=48),
    st.sampled_from([255, 256, MAX_TX_BODY]).map(lambda n: b"\xa5" * n),
)


@st.composite
def cosignatures(draw: st.DrawFn, sender: bytes, max_size: int = 4) -> tuple[CoSignature, ...]:
    signers = draw(
        st.lists(pubkeys.filter(lambda k: k != sender), max_size=max_size, unique=True)
    )
    return tuple(CoSignature(s, draw(signatures)) for s in sorted(signers))


@st.composite
def txs(draw: st.DrawFn, chain_id: str | None = None) -> Tx:
    sender = draw(pubkeys)
    many = draw(st.sampled_from([4, 4, 4, MAX_COSIGNATURES]))
    return Tx(
        chain_id=draw(chain_ids) if chain_id is None else chain_id,
        sender=sender,
        nonce=draw(u64),
        kind=draw(tx_kinds),
        body=draw(bodies),
        cosignatures=draw(cosignatures(sender, many)),
        signature=draw(signatures),
    )


co_signatures = st.builds(CoSignature, pubkeys, signatures)


@st.composite
def votes(draw: st.DrawFn) -> Vote:
    return Vote(
        type=draw(st.sampled_from(VoteType)),
        height=draw(u64),
        round=draw(rounds),
        block_hash=draw(st.none() | hashes),
        validator=draw(pubkeys),
        timestamp_ms=draw(u64),
        signature=draw(signatures),
    )


commit_sigs = st.builds(CommitSig, pubkeys, u64, signatures)


@st.composite
def commits(draw: st.DrawFn) -> Commit:
    validators = draw(st.lists(pubkeys, max_size=5, unique=True))
    sigs = tuple(CommitSig(v, draw(u64), draw(signatures)) for v in sorted(validators))
    return Commit(draw(u64), draw(rounds), draw(hashes), sigs)


@st.composite
def evidences(draw: st.DrawFn) -> DuplicateVoteEvidence:
    a = draw(votes())
    other = draw((st.none() | hashes).filter(lambda h: h != a.block_hash))
    b = Vote(a.type, a.height, a.round, other, a.validator, draw(u64), draw(signatures))
    return DuplicateVoteEvidence.of(a, b)


@st.composite
def headers(draw: st.DrawFn) -> BlockHeader:
    return BlockHeader(
        chain_id=draw(chain_ids),
        height=draw(u64),
        time_ms=draw(u64),
        prev_hash=draw(hashes),
        tx_root=draw(hashes),
        app_hash=draw(hashes),
        validators_hash=draw(hashes),
        proposer=draw(pubkeys),
        evidence_hash=draw(hashes),
        last_commit_hash=draw(hashes),
    )


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    """Blocks for encoding tests: the header need not match the body."""
    return Block(
        header=draw(headers()),
        txs=tuple(draw(st.lists(txs(), max_size=2))),
        last_commit=draw(st.none() | commits()),
        evidence=tuple(draw(st.lists(evidences(), max_size=2))),
    )


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    block = draw(blocks())
    round_ = draw(rounds)
    return Proposal(
        height=block.header.height,
        round=round_,
        pol_round=draw(st.integers(-1, round_ - 1)),
        block=block,
        proposer=draw(pubkeys),
        timestamp_ms=draw(u64),
        signature=draw(signatures),
    )


validators = st.builds(Validator, pubkeys, st.integers(1, MAX_POWER))


@st.composite
def validator_sets(draw: st.DrawFn) -> ValidatorSet:
    keys = draw(st.lists(pubkeys, min_size=1, max_size=6, unique=True))
    return ValidatorSet.of((k, draw(st.integers(1, MAX_POWER))) for k in keys)


inclusion_proofs = st.builds(
    merkle.InclusionProof, u64, u64, st.lists(hashes, max_size=8).map(tuple)
)

# Every wire type, with a strategy for its valid instances.
ALL_TYPES: dict[type[Struct], st.SearchStrategy[Any]] = {
    Tx: txs(),
    CoSignature: co_signatures,
    Vote: votes(),
    CommitSig: commit_sigs,
    Commit: commits(),
    DuplicateVoteEvidence: evidences(),
    BlockHeader: headers(),
    Block: blocks(),
    Proposal: proposals(),
    Validator: validators,
    ValidatorSet: validator_sets(),
    merkle.InclusionProof: inclusion_proofs,
}


# ---------------------------------------------------------------- fixed examples


def _example_tx(nonce: int, cosigners: int) -> Tx:
    return Tx.create(
        key(0), "example-chain", nonce, "transfer", b"\x92\xa3abc\x07",
        tuple(key(10 + i) for i in range(cosigners)),
    )


def _example_vote(block_hash: bytes | None, ts: int = 1_000) -> Vote:
    return Vote.create(key(1), "example-chain", VoteType.PRECOMMIT, 9, 2, block_hash, ts)


def example_instances() -> dict[type[Struct], Struct]:
    """One fully populated, deterministic instance of every wire type: every optional
    field set and every sequence non-empty, so that every field position exists."""
    tx = _example_tx(1, 2)
    vote = _example_vote(b"\x11" * 32)
    evidence = DuplicateVoteEvidence.of(vote, _example_vote(None, 2_000))
    commit = Commit.from_votes(
        [Vote.create(key(i), "example-chain", VoteType.PRECOMMIT, 8, 0, b"\x22" * 32, 500 + i)
         for i in range(3)]
    )
    header = BlockHeader(
        "example-chain", 9, 1_700_000_000_000, b"\x22" * 32, merkle.root([tx.hash]),
        b"\x33" * 32, b"\x44" * 32, key(1).public_key,
        merkle.root([evidence.digest()]), commit.digest(),
    )
    block = Block(header, (tx,), commit, (evidence,))
    proposal = Proposal.create(key(1), "example-chain", 9, 2, 1, block, 1_700_000_000_001)
    vset = ValidatorSet.of((key(i).public_key, 10 + i) for i in range(3))
    leaves = [bytes([i]) for i in range(5)]
    return {
        Tx: tx,
        CoSignature: tx.cosignatures[0],
        Vote: vote,
        CommitSig: commit.signatures[0],
        Commit: commit,
        DuplicateVoteEvidence: evidence,
        BlockHeader: header,
        Block: block,
        Proposal: proposal,
        Validator: vset.validators[0],
        ValidatorSet: vset,
        merkle.InclusionProof: merkle.prove(leaves, 2),
    }
