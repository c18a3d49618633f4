"""Tendermint BFT consensus as a pure state machine (see `engine` and docs/consensus.md)."""

from protocol.consensus.blocktime import block_time_ms, vote_time_ms, weighted_median_ms
from protocol.consensus.config import ConsensusConfig
from protocol.consensus.engine import Engine, RoundState
from protocol.consensus.forensics import conflicting_commit_evidence
from protocol.consensus.messages import (
    Action,
    BlockBuilt,
    BlockReceived,
    BlockValidity,
    Broadcast,
    BuildBlock,
    Decide,
    IgnoreCode,
    Ignored,
    Input,
    PersistSignState,
    ProposalReceived,
    RejectCode,
    Rejected,
    ReportEvidence,
    RequestBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    TxsAvailable,
    ValidateBlock,
    VoteReceived,
    WalAppend,
)
from protocol.consensus.proposer import ProposerSchedule, proposer
from protocol.consensus.signstate import SignState
from protocol.consensus.step import Step
from protocol.consensus.validity import HeightContext, check_block, verify_decided
from protocol.consensus.wal import WalRecord

__all__ = [
    "Action",
    "BlockBuilt",
    "BlockReceived",
    "BlockValidity",
    "Broadcast",
    "BuildBlock",
    "ConsensusConfig",
    "Decide",
    "Engine",
    "HeightContext",
    "IgnoreCode",
    "Ignored",
    "Input",
    "PersistSignState",
    "ProposalReceived",
    "ProposerSchedule",
    "RejectCode",
    "Rejected",
    "ReportEvidence",
    "RequestBlock",
    "RoundState",
    "ScheduleTimeout",
    "SignState",
    "StartHeight",
    "Step",
    "TimeoutFired",
    "TxsAvailable",
    "ValidateBlock",
    "VoteReceived",
    "WalAppend",
    "WalRecord",
    "block_time_ms",
    "check_block",
    "conflicting_commit_evidence",
    "proposer",
    "verify_decided",
    "vote_time_ms",
    "weighted_median_ms",
]
