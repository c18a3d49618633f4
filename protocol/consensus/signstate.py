"""The sign state: what this validator signed last, persisted before it leaves.

Double-sign protection rests on one rule: the validator signs a message for
(height, round, step) only if that triple is strictly greater, lexicographically,
than the triple of the last message it signed. Each step (proposal, prevote,
precommit) is therefore signed at most once, and after a restart the stored
message is broadcast again instead of a new signature being made.

The record also carries the lock (the paper's lockedRound/lockedValue, lines 6–7
and 38–39) as of that signature, so the one write that must reach the disk
before a signature leaves is enough to keep both safety rules across a crash:
never sign twice for one step, never prevote against the lock without a newer
polka.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from protocol import crypto
from protocol.consensus.step import SIGNED_STEPS, Step
from protocol.limits import MAX_PROPOSAL_BYTES, MAX_ROUND
from protocol.types import Proposal, Round, Vote, VoteType
from protocol.wire import HASH, U64, Enum, Int, Nested, Optional, Struct

HRS = tuple[int, int, int]


def step_of(message: Proposal | Vote) -> Step:
    if isinstance(message, Proposal):
        return Step.PROPOSE
    return Step.PREVOTE if message.type == VoteType.PREVOTE else Step.PRECOMMIT


def hrs_of(message: Proposal | Vote) -> HRS:
    return (message.height, message.round, int(step_of(message)))


def signed_hash(chain_id: str, message: Proposal | Vote) -> bytes:
    """SHA-256 of the exact bytes the signature covers (`crypto.sign_bytes`)."""
    kind = crypto.KIND_PROPOSAL if isinstance(message, Proposal) else crypto.KIND_VOTE
    return crypto.sha256(crypto.sign_bytes(chain_id, kind, message.signing_payload()))


@dataclass(frozen=True, slots=True)
class SignState(Struct):
    """The last message this validator signed, exactly one of `proposal` / `vote`."""

    MAX_BYTES = MAX_PROPOSAL_BYTES + 1024
    ENCODE_BY_PARTS = True  # a proposal's block is already encoded: join, do not repack

    height: Annotated[int, U64]
    round: Round
    step: Annotated[Step, Enum(Step)]
    signed_hash: Annotated[bytes, HASH]
    locked_round: Annotated[int, Int(-1, MAX_ROUND)]
    locked_hash: Annotated[bytes | None, Optional(HASH)]
    proposal: Annotated[Proposal | None, Optional(Nested(Proposal))]
    vote: Annotated[Vote | None, Optional(Nested(Vote))]

    def __post_init__(self) -> None:
        if (self.proposal is None) == (self.vote is None):
            raise ValueError("a sign state holds exactly one message")
        if self.step not in SIGNED_STEPS:
            raise ValueError(f"{self.step.name} is not a signing step")
        if hrs_of(self.message) != self.hrs:
            raise ValueError("sign state height, round or step differs from its message")
        if (self.locked_round == -1) != (self.locked_hash is None):
            raise ValueError("a lock has both a round and a block, or neither")

    @property
    def message(self) -> Proposal | Vote:
        msg = self.proposal if self.proposal is not None else self.vote
        assert msg is not None
        return msg

    @property
    def hrs(self) -> HRS:
        return (self.height, self.round, int(self.step))

    @staticmethod
    def of(chain_id: str, message: Proposal | Vote, locked_round: int, locked_hash: bytes | None) -> SignState:
        return SignState(
            height=message.height,
            round=message.round,
            step=step_of(message),
            signed_hash=signed_hash(chain_id, message),
            locked_round=locked_round,
            locked_hash=locked_hash,
            proposal=message if isinstance(message, Proposal) else None,
            vote=message if isinstance(message, Vote) else None,
        )
