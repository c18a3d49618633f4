"""The double-sign guard around the validator's key (see `signstate` for the rule)."""

from __future__ import annotations

from protocol import crypto
from protocol.consensus.messages import Action, Broadcast, PersistSignState, WalAppend
from protocol.consensus.signstate import HRS, SignState, hrs_of
from protocol.consensus.step import Step
from protocol.consensus.wal import WalRecord
from protocol.types import Block, Proposal, Vote, VoteType

Lock = tuple[int, bytes | None]


class Signer:
    """Signs each (height, round, step) at most once, in increasing order.

    A request at the last signed triple gets the stored message back for
    re-broadcast; a request below it gets nothing. Freshly signed messages come
    with their persistence actions, in the order the host must execute them:
    sign state, WAL record, broadcast."""

    def __init__(self, chain_id: str, key: crypto.Keypair | None, state: SignState | None) -> None:
        self._chain_id = chain_id
        self._key = key
        self._state = state
        self._mark: HRS | None = state.hrs if state is not None else None
        self._mark_message: Proposal | Vote | None = state.message if state is not None else None

    @property
    def public_key(self) -> bytes | None:
        return None if self._key is None else self._key.public_key

    @property
    def state(self) -> SignState | None:
        return self._state

    def observe(self, message: Proposal | Vote) -> None:
        """An own message found in the WAL: never sign at or below it again."""
        hrs = hrs_of(message)
        if self._mark is None or hrs > self._mark:
            self._mark, self._mark_message = hrs, message

    def sign_proposal(
        self, height: int, round: int, pol_round: int, block: Block, timestamp_ms: int, lock: Lock
    ) -> tuple[Proposal | None, list[Action]]:
        if not self._may_sign((height, round, Step.PROPOSE)):
            held = self._resend((height, round, Step.PROPOSE))
            return (held if isinstance(held, Proposal) else None), self._broadcast(held)
        assert self._key is not None
        proposal = Proposal.create(self._key, self._chain_id, height, round, pol_round, block, timestamp_ms)
        return proposal, self._issue(proposal, lock)

    def sign_vote(
        self, type: VoteType, height: int, round: int, block_hash: bytes | None, timestamp_ms: int, lock: Lock
    ) -> tuple[Vote | None, list[Action]]:
        step = Step.PREVOTE if type == VoteType.PREVOTE else Step.PRECOMMIT
        if not self._may_sign((height, round, step)):
            held = self._resend((height, round, step))
            return (held if isinstance(held, Vote) else None), self._broadcast(held)
        assert self._key is not None
        vote = Vote.create(self._key, self._chain_id, type, height, round, block_hash, timestamp_ms)
        return vote, self._issue(vote, lock)

    def _may_sign(self, hrs: HRS) -> bool:
        return self._key is not None and (self._mark is None or hrs > self._mark)

    def _resend(self, hrs: HRS) -> Proposal | Vote | None:
        """What was signed at exactly `hrs`, to broadcast again instead of signing."""
        if self._key is not None and hrs == self._mark:
            return self._mark_message
        return None

    @staticmethod
    def _broadcast(message: Proposal | Vote | None) -> list[Action]:
        return [] if message is None else [Broadcast(message)]

    def _issue(self, message: Proposal | Vote, lock: Lock) -> list[Action]:
        state = SignState.of(self._chain_id, message, lock[0], lock[1])
        self._state = state
        self._mark, self._mark_message = state.hrs, message
        return [PersistSignState(state), WalAppend(WalRecord.of(message)), Broadcast(message)]
