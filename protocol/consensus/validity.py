"""The engine's half of the paper's valid(v): every rule about a block that follows
from consensus data alone. Application rules (transactions, app hash, evidence)
are the host's half (`ValidateBlock` / `BlockValidity`).

`verify_decided` is the same check plus the block's commit: what block sync needs
to accept a block it did not see being decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import crypto
from protocol.consensus.blocktime import block_time_ms
from protocol.types import ZERO_HASH, Block, Commit
from protocol.validators import ValidatorSet, verify_commit


@dataclass(frozen=True, slots=True)
class HeightContext:
    """What every block of one height is checked against."""

    chain_id: str
    height: int
    validators: ValidatorSet
    prev_block_hash: bytes
    prev_block_time_ms: int
    last_validators: ValidatorSet | None

    def __post_init__(self) -> None:
        if self.height < 1:
            raise ValueError("heights start at 1")
        if self.height == 1 and self.prev_block_hash != ZERO_HASH:
            raise ValueError("height 1 has no previous block")
        if self.height > 1 and self.last_validators is None:
            raise ValueError("above height 1 the previous validator set is needed")


def check_block(
    ctx: HeightContext, block: Block, cache: crypto.VerifyCache | None = None, *, structure_checked: bool = False
) -> str | None:
    """None if `block` may be decided at `ctx.height` as far as consensus is
    concerned; otherwise the reason it may not. `structure_checked`: the caller has
    found `block.check_structure()` clean already."""
    h = block.header
    if h.chain_id != ctx.chain_id:
        return f"block is for chain {h.chain_id!r}"
    if h.height != ctx.height:
        return f"block is for height {h.height}, expected {ctx.height}"
    reason = None if structure_checked else block.check_structure()
    if reason is not None:
        return reason
    if h.prev_hash != ctx.prev_block_hash:
        return "block does not extend the previous block"
    if h.validators_hash != ctx.validators.hash:
        return "block names another validator set"
    if h.proposer not in ctx.validators:
        return "block proposer is not a validator"
    if ctx.height == 1:
        if block.last_commit is not None:
            return "block 1 cannot carry a last commit"
    else:
        assert block.last_commit is not None and ctx.last_validators is not None  # check_structure, __post_init__
        reason = verify_commit(
            block.last_commit, ctx.chain_id, ctx.last_validators, ctx.prev_block_hash, ctx.height - 1, cache
        )
        if reason is not None:
            return f"last commit: {reason}"
    expected = block_time_ms(block.last_commit, ctx.last_validators, ctx.prev_block_time_ms)
    if h.time_ms != expected:
        return f"block time {h.time_ms} is not the median time {expected}"
    return None


def verify_decided(
    ctx: HeightContext, block: Block, commit: Commit, cache: crypto.VerifyCache | None = None
) -> str | None:
    """None if `commit` proves `block` final at `ctx.height` and the block passes
    `check_block`; otherwise the reason. Walk a chain by calling it per height with
    each height's context (the next context's prev hash and time are this block's)."""
    reason = check_block(ctx, block, cache)
    if reason is not None:
        return reason
    reason = verify_commit(commit, ctx.chain_id, ctx.validators, block.hash, ctx.height, cache)
    return None if reason is None else f"commit: {reason}"
