"""Compact proposals: a proposal gossiped with its transactions named by hash, rebuilt
by each validator from the transactions it holds; what it cannot rebuild it waits
for (bounded), then fetches whole."""

from __future__ import annotations

from typing import Any

from test_replica_pending_txs import ALICE, BOB, CAROL, CHAIN, Host, of, transfer

from protocol import crypto, messages
from protocol.compact import CompactProposal
from protocol.consensus import messages as cm
from protocol.consensus.proposer import proposer
from protocol.governance.apphash import app_hash
from protocol.governance.validator_set import validators_for
from protocol.replica import (
    COMPACT_FETCH_AFTER_MS,
    COMPACT_PENDING_MAX,
    BlockFetched,
    Broadcast,
    ConsensusMessage,
    Penalise,
    Tick,
    TxsReceived,
)
from protocol.types import Block, Proposal, Tx, Vote, VoteType, make_block
from simulations.cluster import make_genesis

VALIDATORS = [crypto.Keypair(bytes([60 + i]) * 32) for i in range(4)]
GENESIS = make_genesis(CHAIN, [(k.public_key, 10) for k in VALIDATORS],
                       [(k.public_key, 1_000_000) for k in (ALICE, BOB, CAROL)])


def hosts(txs: list[Tx] | None = None) -> tuple[Host, Host, Proposal]:
    """The proposer of (1, 0), booted holding `txs`, its proposal, and another
    validator booted at the same instant."""
    probe = Host(VALIDATORS[0], GENESIS)
    first = proposer(validators_for(probe.state, 1), 1, 0)
    key = next(k for k in VALIDATORS if k.public_key == first)
    other = next(k for k in VALIDATORS if k.public_key != first)
    p, r = Host(key, GENESIS), Host(other, GENESIS)
    p.stored.update((tx.hash, tx) for tx in (TXS if txs is None else txs))  # proposed at once, at boot
    p.boot()
    r.boot()
    [proposal] = [a.message for a in p.actions if isinstance(a, Broadcast) and isinstance(a.message, Proposal)]
    return p, r, proposal


TXS = [transfer(ALICE, 0), transfer(ALICE, 1), transfer(BOB, 0), transfer(CAROL, 0)]


def prevotes(out: list[Any]) -> list[bytes | None]:
    return [a.message.block_hash for a in out
            if isinstance(a, Broadcast) and isinstance(a.message, Vote) and a.message.type == VoteType.PREVOTE]


def deliver(r: Host, msg: Any, origin: str = "peer-p") -> list[Any]:
    return r.feed(ConsensusMessage(r.clock, msg, origin))




def test_a_compact_proposal_encodes_small_and_rebuilds_the_signed_proposal():
    _, _, proposal = hosts()
    cp = CompactProposal.of(proposal)
    assert messages.decode_consensus(messages.encode_tagged(cp)) == cp
    assert cp.block_hash == proposal.block.hash and cp.check(CHAIN) is None
    by_hash = {tx.hash: tx for tx in TXS}
    rebuilt = cp.rebuild_from(by_hash.get)
    assert rebuilt is not None and rebuilt.encode() == proposal.encode()
    assert rebuilt.verify(CHAIN)
    assert cp.rebuild_from({}.get) is None and set(cp.missing({}.get)) == set(by_hash)
    big = [transfer(ALICE, n) for n in range(200)]
    block = make_block(chain_id=CHAIN, height=1, time_ms=1, prev_hash=bytes(32), app_hash=bytes(32),
                       validators_hash=bytes(32), proposer=VALIDATORS[0].public_key, txs=tuple(big))
    full = Proposal.create(VALIDATORS[0], CHAIN, 1, 0, -1, block, 1)
    assert len(CompactProposal.of(full).encode()) * 3 < len(full.encode())


def test_check_refuses_a_tampered_compact_proposal():
    cp = CompactProposal.of(hosts()[2])
    hashes = cp.tx_hashes

    def with_(**kw: Any) -> CompactProposal:
        fields = {name: getattr(cp, name) for name, _ in CompactProposal.wire_fields()}
        return CompactProposal(**{**fields, **kw})

    assert "tx root" in with_(tx_hashes=(hashes[1], hashes[0], *hashes[2:])).check(CHAIN)
    assert "twice" in with_(tx_hashes=(hashes[0], *hashes)).check(CHAIN)
    assert "bad proposal signature" in with_(timestamp_ms=cp.timestamp_ms + 1).check(CHAIN)
    assert "chain" in cp.check("another-chain")


def test_a_validator_holding_the_txs_prevotes_the_block_at_once():
    _, r, proposal = hosts()
    r.feed(TxsReceived(r.clock, TXS, "peer-p"))
    out = deliver(r, CompactProposal.of(proposal))
    assert prevotes(out) == [proposal.block.hash]


def test_a_proposal_waits_for_a_late_tx_and_goes_on_when_it_comes():
    _, r, proposal = hosts()
    r.feed(TxsReceived(r.clock, TXS[:3], "peer-p"))
    out = deliver(r, CompactProposal.of(proposal))
    assert prevotes(out) == [] and of(out, Penalise) == []
    out = r.feed(TxsReceived(r.clock, TXS[3:], "peer-q"))
    assert prevotes(out) == [proposal.block.hash]
    assert r.replica is not None and r.replica.waiting.waits == 1 and len(r.replica.waiting) == 0


def test_a_tx_refused_for_a_nonce_gap_still_rebuilds_the_proposal():
    _, r, proposal = hosts()
    r.feed(TxsReceived(r.clock, [TXS[1]], "peer-q"))  # ALICE's nonce 1 before her 0: refused here
    r.feed(TxsReceived(r.clock, [TXS[0], *TXS[2:]], "peer-p"))
    assert TXS[1].hash not in r.replica.mempool
    out = deliver(r, CompactProposal.of(proposal))
    assert prevotes(out) == [proposal.block.hash]


def test_txs_that_never_come_are_fetched_with_the_whole_block():
    _, r, proposal = hosts()
    out = deliver(r, CompactProposal.of(proposal))
    assert of(out, cm.RequestBlock) == []
    out = r.feed(Tick(r.clock + COMPACT_FETCH_AFTER_MS - 1))
    assert of(out, cm.RequestBlock) == []
    out = r.feed(Tick(r.clock + COMPACT_FETCH_AFTER_MS))
    [ask] = of(out, cm.RequestBlock)
    assert (ask.height, ask.round, ask.block_hash) == (1, 0, proposal.block.hash)
    block = proposal.block
    liar = Block(block.header, (transfer(BOB, 7),), block.last_commit, block.evidence)  # same hash, other txs
    out = r.feed(BlockFetched(r.clock, liar, "peer-liar"))
    assert [pen.origin for pen in of(out, Penalise)] == ["peer-liar"] and prevotes(out) == []
    out = r.feed(BlockFetched(r.clock, block, "peer-honest"))
    assert prevotes(out) == [block.hash]


def test_a_full_proposal_ends_the_wait():
    _, r, proposal = hosts()
    deliver(r, CompactProposal.of(proposal))
    out = r.feed(ConsensusMessage(r.clock, proposal, "peer-p"))
    assert prevotes(out) == [proposal.block.hash]
    assert of(r.feed(Tick(r.clock + 10 * COMPACT_FETCH_AFTER_MS)), cm.RequestBlock) == []


def signed(key: crypto.Keypair, r: Host, *, height: int = 1, round: int = 0, txs: tuple[Tx, ...]) -> CompactProposal:
    vals = validators_for(r.state, 1)
    block = make_block(chain_id=CHAIN, height=height, time_ms=r.clock + round, prev_hash=bytes(32),
                       app_hash=app_hash(r.state), validators_hash=vals.hash, proposer=key.public_key, txs=txs)
    return CompactProposal.of(Proposal.create(key, CHAIN, height, round, -1, block, r.clock))


def scheduled(r: Host, round: int) -> crypto.Keypair:
    first = proposer(validators_for(r.state, 1), 1, round)
    return next(k for k in VALIDATORS if k.public_key == first)


UNKNOWN = (transfer(BOB, 9),)  # nobody gossiped it: every compact below has to wait


def test_a_compact_proposal_that_cannot_wait_is_judged_like_a_proposal():
    _, r, _ = hosts()
    r.run_until(100)
    wrong = next(k for k in VALIDATORS if k.public_key != scheduled(r, 0).public_key)
    out = r.feed(ConsensusMessage(r.clock, signed(wrong, r, txs=UNKNOWN), "peer-w"))
    [pen] = of(out, Penalise)
    assert pen.origin == "peer-w" and "wrong_proposer" in pen.reason
    key = scheduled(r, 0)
    forged = CompactProposal.of(Proposal.create(wrong, CHAIN, 1, 0, -1, make_block(
        chain_id=CHAIN, height=1, time_ms=r.clock, prev_hash=bytes(32), app_hash=bytes(32),
        validators_hash=bytes(32), proposer=key.public_key, txs=UNKNOWN), r.clock))
    forged = CompactProposal(*(getattr(forged, n) for n, _ in CompactProposal.wire_fields()[:7]), key.public_key,
                             forged.timestamp_ms, forged.signature)
    out = r.feed(ConsensusMessage(r.clock, forged, "peer-f"))
    [pen] = of(out, Penalise)
    assert pen.origin == "peer-f" and "bad proposal signature" in pen.reason
    out = r.feed(ConsensusMessage(r.clock, signed(key, r, height=3, txs=UNKNOWN), "peer-ahead"))
    [ignored] = of(out, cm.Ignored)
    assert ignored.code == cm.IgnoreCode.FUTURE_HEIGHT and ignored.origin == "peer-ahead"


def test_only_the_current_and_next_round_wait_so_far_rounds_cannot_crowd_them_out():
    _, r, _ = hosts()
    r.run_until(100)  # round 0
    outs = {n: r.feed(ConsensusMessage(r.clock, signed(scheduled(r, n), r, round=n, txs=UNKNOWN), f"peer-{n}"))
            for n in range(COMPACT_PENDING_MAX + 2)}
    assert all(of(outs[n], cm.Ignored) == [] and of(outs[n], Penalise) == [] for n in (0, 1))
    for n in range(2, COMPACT_PENDING_MAX + 2):
        [ignored] = of(outs[n], cm.Ignored)
        assert ignored.code == cm.IgnoreCode.ROUND_LIMIT
    twin = signed(scheduled(r, 0), r, round=0, txs=(transfer(BOB, 11),))  # the proposer's second round-0 block
    assert r.feed(ConsensusMessage(r.clock, twin, "peer-t")) == []
    asks = of(r.feed(Tick(r.clock + COMPACT_FETCH_AFTER_MS)), cm.RequestBlock)
    assert sorted(a.round for a in asks) == [0, 1]
    assert r.replica is not None and len(r.replica.waiting) == 2 <= COMPACT_PENDING_MAX


def test_a_decided_height_drops_its_waiting_proposals():
    _, r, proposal = hosts()
    r.feed(TxsReceived(r.clock, TXS, "peer-p"))
    deliver(r, CompactProposal.of(proposal))
    later = signed(scheduled(r, 1), r, round=1, txs=UNKNOWN)
    r.feed(ConsensusMessage(r.clock, later, "peer-1"))  # waits: nobody has its tx
    for key in VALIDATORS[:3]:
        vote = Vote.create(key, CHAIN, VoteType.PRECOMMIT, 1, 0, proposal.block.hash, r.clock)
        r.feed(ConsensusMessage(r.clock, vote, "peer-v"))
    r.run_until(r.now + 1)  # the host stores the block
    assert r.height == 1
    assert of(r.feed(Tick(r.clock + 10 * COMPACT_FETCH_AFTER_MS)), cm.RequestBlock) == []


def test_an_altered_full_copy_does_not_end_the_wait():
    _, r, proposal = hosts()
    deliver(r, CompactProposal.of(proposal))
    block = proposal.block
    altered = Proposal(proposal.height, proposal.round, proposal.pol_round,
                       Block(block.header, (transfer(BOB, 7),), block.last_commit, block.evidence),
                       proposal.proposer, proposal.timestamp_ms, proposal.signature)
    out = r.feed(ConsensusMessage(r.clock, altered, "peer-liar"))
    assert [pen.origin for pen in of(out, Penalise)] == ["peer-liar"] and prevotes(out) == []
    out = r.feed(TxsReceived(r.clock, TXS, "peer-p"))  # the genuine proposal still waits, and completes
    assert prevotes(out) == [block.hash]
