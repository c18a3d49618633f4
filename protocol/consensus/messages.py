"""What goes into the engine (inputs) and what comes out (actions).

Every input carries ``now_ms``, the host's clock when it hands the input over
(virtual in tests and in the simulator); the engine reads no clock of its own.
Actions must be executed in the order returned, and a `PersistSignState` must be
durable before the `Broadcast` that follows it: safety rests on the sign state
alone. `WalAppend` records may reach the disk at the host's pace; losing a tail of
the WAL in a crash costs progress, never safety.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.consensus.signstate import SignState
from protocol.consensus.step import Step
from protocol.consensus.wal import WalRecord
from protocol.types import Block, Commit, DuplicateVoteEvidence, Proposal, Vote
from protocol.validators import ValidatorSet

# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class StartHeight:
    """Begin consensus on `height`: sent at boot (through `Engine.restore`) and after
    the host has stored block height−1 (decided here or fetched by block sync).

    `validators` is the set governance says signs `height`; `last_validators` the
    set that signed height−1 (it verifies last commits; None at height 1).
    At height 1 `prev_block_hash` is ZERO_HASH and `prev_block_time_ms` is the
    genesis time. `last_commit` is the commit the proposer puts in its block.
    `prev_block_empty` and `txs_available` drive `create_empty_blocks=False`."""

    now_ms: int
    height: int
    validators: ValidatorSet
    prev_block_hash: bytes
    prev_block_time_ms: int
    last_commit: Commit | None = None
    last_validators: ValidatorSet | None = None
    prev_block_empty: bool = False
    txs_available: bool = False


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A proposal from the network. `origin` is the host's name for the peer that
    delivered it; rejections echo it so the host can penalise that peer."""

    now_ms: int
    proposal: Proposal
    origin: str = ""


@dataclass(frozen=True, slots=True)
class VoteReceived:
    now_ms: int
    vote: Vote
    origin: str = ""


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A `ScheduleTimeout` came due. Stale ones (another height, round or step) are ignored."""

    now_ms: int
    step: Step
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class BlockBuilt:
    """The host's answer to `BuildBlock`."""

    now_ms: int
    height: int
    round: int
    block: Block


@dataclass(frozen=True, slots=True)
class BlockValidity:
    """The host's answer to `ValidateBlock`: the application-level half of the paper's valid(v)."""

    now_ms: int
    height: int
    block_hash: bytes
    valid: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """A block fetched in answer to `RequestBlock`."""

    now_ms: int
    block: Block
    origin: str = ""


@dataclass(frozen=True, slots=True)
class TxsAvailable:
    """The mempool holds transactions (matters only with create_empty_blocks=False)."""

    now_ms: int


Input = (
    StartHeight
    | ProposalReceived
    | VoteReceived
    | TimeoutFired
    | BlockBuilt
    | BlockValidity
    | BlockReceived
    | TxsAvailable
)

# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Gossip a message this validator signed (or signed before a restart)."""

    message: Proposal | Vote


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Deliver `TimeoutFired(step, height, round)` after `delay_ms`."""

    step: Step
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class PersistSignState:
    """Durably replace the stored sign state before executing the next action."""

    state: SignState


@dataclass(frozen=True, slots=True)
class WalAppend:
    record: WalRecord


@dataclass(frozen=True, slots=True)
class BuildBlock:
    """Build the block this validator proposes (the paper's getValue(), line 18) with
    exactly these header fields; the host adds transactions, evidence and the app
    hash, and answers with `BlockBuilt`."""

    height: int
    round: int
    time_ms: int
    prev_hash: bytes
    last_commit: Commit | None
    validators_hash: bytes
    proposer: bytes


@dataclass(frozen=True, slots=True)
class ValidateBlock:
    """Check the block at application level (transactions, app hash, evidence);
    answer with `BlockValidity`. The engine has checked everything else."""

    height: int
    block: Block


@dataclass(frozen=True, slots=True)
class Decide:
    """`block` is final at `height`, proven by `commit` (precommits of `round`)."""

    height: int
    round: int
    block: Block
    commit: Commit


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    evidence: DuplicateVoteEvidence


@dataclass(frozen=True, slots=True)
class RequestBlock:
    """+2/3 precommitted `block_hash` but its block is unknown: fetch it (answer with
    `BlockReceived`, or with the `ProposalReceived` that carries it)."""

    height: int
    round: int
    block_hash: bytes


class RejectCode(enum.Enum):
    BAD_SIGNATURE = "bad_signature"
    NOT_VALIDATOR = "not_validator"
    WRONG_PROPOSER = "wrong_proposer"
    INVALID_BLOCK = "invalid_block"
    CONFLICTING_PROPOSAL = "conflicting_proposal"
    EXCESS_VOTES = "excess_votes"


class IgnoreCode(enum.Enum):
    NO_HEIGHT = "no_height"  # no height started yet
    STALE_HEIGHT = "stale_height"  # below the current height, or the current one is decided
    FUTURE_HEIGHT = "future_height"  # two or more heights ahead: the host may be behind
    BUFFER_FULL = "buffer_full"  # next-height buffer is full
    ROUND_LIMIT = "round_limit"  # the sender already holds its quota of future rounds
    UNSOLICITED = "unsolicited"  # a block nobody asked for


@dataclass(frozen=True, slots=True)
class Rejected:
    """A peer's message broke a rule: the host should penalise `origin`. `culprit`
    is the validator who signed it, when the signature was good."""

    code: RejectCode
    reason: str
    origin: str
    culprit: bytes | None
    height: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message the engine did not use, through no fault of the sender."""

    code: IgnoreCode
    reason: str
    origin: str
    height: int


Action = (
    Broadcast
    | ScheduleTimeout
    | PersistSignState
    | WalAppend
    | BuildBlock
    | ValidateBlock
    | Decide
    | ReportEvidence
    | RequestBlock
    | Rejected
    | Ignored
)
