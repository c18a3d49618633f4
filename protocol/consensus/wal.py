"""Write-ahead log records: the messages of the current height that the engine
accepted, so a restarted node rebuilds the height (see `Engine.restore`).

A record holds exactly one of: a proposal (received or own), a vote (received or
own: own ones are those signed by the node's key), or a block fetched to decide
(`RequestBlock`'s answer). Records of heights below the one being started are
never read again; the host may drop them when it starts a height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from protocol.limits import MAX_PROPOSAL_BYTES
from protocol.types import Block, Proposal, Vote
from protocol.wire import U64, Nested, Optional, Struct


@dataclass(frozen=True, slots=True)
class WalRecord(Struct):
    MAX_BYTES = MAX_PROPOSAL_BYTES + 1024
    ENCODE_BY_PARTS = True  # a proposal's block is already encoded: join, do not repack

    height: Annotated[int, U64]
    proposal: Annotated[Proposal | None, Optional(Nested(Proposal))]
    vote: Annotated[Vote | None, Optional(Nested(Vote))]
    block: Annotated[Block | None, Optional(Nested(Block))]

    def __post_init__(self) -> None:
        held = [m for m in (self.proposal, self.vote, self.block) if m is not None]
        if len(held) != 1:
            raise ValueError("a WAL record holds exactly one message")
        if held[0].height != self.height:
            raise ValueError("WAL record height differs from its message")

    @property
    def message(self) -> Proposal | Vote | Block:
        held = self.proposal or self.vote or self.block
        assert held is not None
        return held

    @staticmethod
    def of(message: Proposal | Vote | Block) -> WalRecord:
        return WalRecord(
            height=message.height,
            proposal=message if isinstance(message, Proposal) else None,
            vote=message if isinstance(message, Vote) else None,
            block=message if isinstance(message, Block) else None,
        )
