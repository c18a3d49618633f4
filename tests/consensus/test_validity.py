"""The engine's block checks, decided-block verification and fork forensics."""

from __future__ import annotations

from dataclasses import replace

from protocol.consensus import (
    Broadcast,
    HeightContext,
    ProposalReceived,
    RejectCode,
    Rejected,
    ValidateBlock,
    WalAppend,
    check_block,
    conflicting_commit_evidence,
    verify_decided,
)
from protocol.types import ZERO_HASH, Commit, Proposal, Vote, make_block
from protocol.validators import ValidatorSet

from .harness import CHAIN_ID, GENESIS_MS, Net, keypair, make_tx
from .rig import Rig


def chain_of(heights: int) -> Net:
    net = Net(4, seed=12).start()
    assert net.run(net.all_reached(heights))
    return net


def test_a_decided_chain_verifies_block_by_block() -> None:
    net = chain_of(4)
    node = net.nodes[0]
    for h in range(1, 5):
        block, commit = node.chain[h]
        assert verify_decided(node.context(h), block, commit) is None
        assert check_block(node.context(h), block) is None


def test_each_rule_of_check_block() -> None:
    net = chain_of(2)
    node = net.nodes[0]
    ctx = node.context(2)
    block, commit = node.chain[2]
    h = block.header
    stranger = keypair(77).public_key

    def rebuilt(**changes: object) -> object:
        fields = dict(
            chain_id=h.chain_id, height=h.height, time_ms=h.time_ms, prev_hash=h.prev_hash,
            app_hash=h.app_hash, validators_hash=h.validators_hash, proposer=h.proposer,
            txs=block.txs, last_commit=block.last_commit,
        )
        fields.update(changes)
        return make_block(**fields)  # type: ignore[arg-type]

    weak = Commit.from_votes(block.last_commit.votes()[:1]) if block.last_commit else None  # type: ignore[union-attr]
    cases = {
        "chain": rebuilt(chain_id="other"),
        "height": replace(block, header=replace(h, height=3)),
        "tx root": replace(block, header=replace(h, tx_root=bytes(32))),
        "previous block": rebuilt(prev_hash=bytes(32)),
        "validator set": rebuilt(validators_hash=bytes(32)),
        "not a validator": rebuilt(proposer=stranger),
        "last commit: commit holds": rebuilt(last_commit=weak),
        "median time": rebuilt(time_ms=h.time_ms + 1),
    }
    for words, bad in cases.items():
        reason = check_block(ctx, bad)  # type: ignore[arg-type]
        assert reason is not None and words in reason, (words, reason)
    first = node.chain[1][0].header
    phantom = Commit(0, 0, ZERO_HASH, commit.signatures)  # consistent with a block 1, but there is no block 0
    block1 = make_block(
        chain_id=CHAIN_ID, height=1, time_ms=first.time_ms, prev_hash=ZERO_HASH, app_hash=first.app_hash,
        validators_hash=first.validators_hash, proposer=first.proposer, last_commit=phantom,
    )
    assert "carry a last commit" in (check_block(node.context(1), block1) or "")
    assert "commit:" in (verify_decided(ctx, block, replace(commit, height=9)) or "")


def test_height_context_rejects_inconsistent_setup() -> None:
    vs = ValidatorSet.of([(keypair(0).public_key, 1)])
    for bad in (
        dict(height=0, prev_block_hash=ZERO_HASH, last_validators=None),
        dict(height=1, prev_block_hash=b"\x01" * 32, last_validators=None),
        dict(height=2, prev_block_hash=b"\x01" * 32, last_validators=None),
    ):
        try:
            HeightContext(CHAIN_ID, validators=vs, prev_block_time_ms=GENESIS_MS, **bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


def test_forensics_needs_the_same_height_and_round() -> None:
    net = chain_of(2)
    commit = net.nodes[0].chain[1][1]
    assert conflicting_commit_evidence(commit, commit) == []
    other_round = replace(commit, round=1, block_hash=b"\x09" * 32)
    assert conflicting_commit_evidence(commit, other_round) == []


def test_an_altered_copy_of_a_proposal_does_not_spoil_the_genuine_one() -> None:
    """The proposer signs the header only: a peer can relay its proposal with other
    txs. That copy is refused, the proposer is not blamed, and the genuine proposal
    arriving after it is validated and prevoted as if the copy had never come."""
    rig = Rig()
    rig.step(rig.start())
    genuine = rig.block("B1", 0)
    signed = rig.proposal(0, "B1").proposal
    altered = Proposal(signed.height, signed.round, signed.pol_round,
                       replace(genuine, txs=(make_tx(99),)), signed.proposer, signed.timestamp_ms, signed.signature)
    assert altered.verify(CHAIN_ID)  # the signature holds: it covers the header
    out = rig.step(ProposalReceived(rig.now, altered, "v9"))
    [rejected] = [a for a in out if isinstance(a, Rejected)]
    assert rejected.code == RejectCode.INVALID_BLOCK and rejected.origin == "v9" and rejected.culprit is None
    assert not any(isinstance(a, ValidateBlock | WalAppend) for a in out)
    out = rig.step(ProposalReceived(rig.now, signed, "v1"))
    assert [a.block for a in out if isinstance(a, ValidateBlock)] == [genuine]
    assert not any(isinstance(a, Rejected) for a in out)
    out = rig.step(rig.validity("B1"))
    prevotes = [a.message for a in out if isinstance(a, Broadcast) and isinstance(a.message, Vote)]
    assert [v.block_hash for v in prevotes] == [genuine.hash]
