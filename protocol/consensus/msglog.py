"""The message log of one height (the paper's "message log", line 53): proposals,
votes, the blocks they carry and what is known of each block's validity.

Memory is bounded per validator. Rounds up to ``round_p + 1`` are kept as they
come (a validator can have at most two votes per round and type, a proposer at
most `max_proposals_per_round` proposals per round). Above ``round_p + 1`` each
validator may hold messages in at most `future_rounds_per_validator` rounds; a
message for a higher round evicts that validator's lowest such round, so what is
kept is the most recent activity, which is what line 55 and line 49 act on.
The highest round each validator was seen in is kept apart (one integer per
validator) so that line 55 works even for messages that were not stored.
"""

from __future__ import annotations

import enum

from protocol.consensus.config import ConsensusConfig
from protocol.consensus.votes import AddOutcome, AddResult, VoteSet
from protocol.types import Block, Proposal, Vote, VoteType
from protocol.validators import ValidatorSet


class ProposalOutcome(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"  # another proposal of the round was already held; kept
    CONFLICT_DROPPED = "conflict-dropped"  # ... and the round is full; not kept


class MessageLog:
    def __init__(self, validators: ValidatorSet, config: ConsensusConfig) -> None:
        self._validators = validators
        self._future_rounds = config.future_rounds_per_validator
        self._proposals_per_round = config.max_proposals_per_round
        self._votes: dict[tuple[int, VoteType], VoteSet] = {}
        self._proposals: dict[int, list[tuple[Proposal, str]]] = {}
        self._fetched: dict[bytes, Block] = {}  # blocks that arrived without a proposal
        self._validity: dict[bytes, bool | None] = {}  # None: asked, no answer yet
        self._rounds_of: dict[bytes, set[int]] = {}
        self._highest: dict[bytes, int] = {}
        self._empty = VoteSet(validators)

    # ------------------------------------------------------------ votes

    def votes(self, round: int, type: VoteType) -> VoteSet:
        return self._votes.get((round, type), self._empty)

    def has_vote(self, vote: Vote) -> bool:
        return self.votes(vote.round, vote.type).holds(vote)

    def add_vote(self, vote: Vote) -> AddResult:
        key = (vote.round, vote.type)
        vs = self._votes.get(key)
        if vs is None:
            vs = self._votes[key] = VoteSet(self._validators)
        result = vs.add(vote)
        if result.outcome in (AddOutcome.ADDED, AddOutcome.CONFLICT):
            self._rounds_of.setdefault(vote.validator, set()).add(vote.round)
        return result

    def prevote_rounds(self) -> list[int]:
        return sorted(r for (r, t) in self._votes if t == VoteType.PREVOTE)

    def precommit_rounds(self) -> list[int]:
        return sorted(r for (r, t) in self._votes if t == VoteType.PRECOMMIT)

    def all_votes(self) -> list[Vote]:
        return [v for key in sorted(self._votes) for v in self._votes[key].all_votes()]

    # ------------------------------------------------------------ proposals and blocks

    def proposals(self, round: int) -> list[Proposal]:
        """The round's proposals in arrival order (more than one: the proposer equivocated)."""
        return [p for p, _ in self._proposals.get(round, ())]

    def all_proposals(self) -> list[Proposal]:
        return [p for r in sorted(self._proposals) for p, _ in self._proposals[r]]

    def has_proposal(self, proposal: Proposal) -> bool:
        return any(p == proposal for p, _ in self._proposals.get(proposal.round, ()))

    def has_proposal_for(self, round: int, block_hash: bytes) -> bool:
        return any(p.block.hash == block_hash for p, _ in self._proposals.get(round, ()))

    def add_proposal(self, proposal: Proposal, origin: str) -> ProposalOutcome:
        held = self._proposals.setdefault(proposal.round, [])
        if any(p == proposal for p, _ in held):
            return ProposalOutcome.DUPLICATE
        if held and len(held) >= self._proposals_per_round:
            return ProposalOutcome.CONFLICT_DROPPED
        outcome = ProposalOutcome.CONFLICT if held else ProposalOutcome.ADDED
        held.append((proposal, origin))
        self._rounds_of.setdefault(proposal.proposer, set()).add(proposal.round)
        return outcome

    def add_fetched(self, block: Block) -> None:
        self._fetched[block.hash] = block

    def block(self, block_hash: bytes) -> Block | None:
        found = self._fetched.get(block_hash)
        if found is not None:
            return found
        for r in sorted(self._proposals):
            for p, _ in self._proposals[r]:
                if p.block.hash == block_hash:
                    return p.block
        return None

    def senders_of(self, block_hash: bytes) -> list[tuple[bytes, str]]:
        """(proposer, origin) of every held proposal carrying `block_hash`."""
        return [
            (p.proposer, origin)
            for r in sorted(self._proposals)
            for p, origin in self._proposals[r]
            if p.block.hash == block_hash
        ]

    def validity(self, block_hash: bytes) -> bool | None:
        return self._validity.get(block_hash)

    def validity_known(self, block_hash: bytes) -> bool:
        return self._validity.get(block_hash) is not None

    def validity_asked(self, block_hash: bytes) -> bool:
        return block_hash in self._validity

    def set_validity(self, block_hash: bytes, valid: bool | None) -> None:
        self._validity[block_hash] = valid

    # ------------------------------------------------------------ rounds (line 55 and bounds)

    def note_round(self, validator: bytes, round: int) -> None:
        """Record that `validator` sent a verified message for `round`."""
        if round > self._highest.get(validator, -1):
            self._highest[validator] = round

    def admit(self, validator: bytes, round: int, current_round: int) -> bool:
        """Whether a message of `validator` for `round` may be stored, evicting that
        validator's lowest far-future round if it has too many."""
        if round <= current_round + 1:
            return True
        held = self._rounds_of.get(validator, set())
        if round in held:
            return True
        future = sorted(r for r in held if r > current_round + 1)
        if len(future) < self._future_rounds:
            return True
        if round < future[0]:
            return False
        self._evict(validator, future[0])
        return True

    def _evict(self, validator: bytes, round: int) -> None:
        for t in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            vs = self._votes.get((round, t))
            if vs is not None:
                vs.remove(validator)
        held = self._proposals.get(round, [])
        dropped = [p.block.hash for p, _ in held if p.proposer == validator]
        self._proposals[round] = [(p, o) for p, o in held if p.proposer != validator]
        self._rounds_of[validator].discard(round)
        for block_hash in dropped:
            if self.block(block_hash) is None:
                self._validity.pop(block_hash, None)

    def skip_target(self, current_round: int) -> int | None:
        """The highest round R > current_round such that validators seen in rounds ≥ R
        hold more than 1/3 of the power, or None (line 55)."""
        ahead = sorted(
            ((r, pk) for pk, r in self._highest.items() if r > current_round), reverse=True
        )
        power = 0
        for r, pk in ahead:
            power += self._validators.power_of(pk)
            if self._validators.has_one_third(power):
                return r
        return None
