"""Tendermint consensus as a pure state machine: ``Engine.handle(input) -> actions``.

This is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus" (arXiv:1807.04938, revised 2019). Comments "Lnn" cite its lines. The
engine never reads a clock, never does IO and never blocks: the paper's
``broadcast`` is a `Broadcast` action, ``schedule`` a `ScheduleTimeout`,
``getValue()`` a `BuildBlock` answered by `BlockBuilt`, and ``valid(v)`` the
engine's own checks (`validity.check_block`) followed by a `ValidateBlock`
answered by `BlockValidity`. Until that answer arrives a block counts as not yet
valid, so the rules that need valid(v) (L22, L28, L36, L49) wait.

After every input the "upon" rules are evaluated until none applies, so the
order in which messages arrive never hides a rule that has become true.

Deviations from the pseudo-code, each documented in docs/consensus.md:
- round 0 starts after a wait (minimum block interval, no empty blocks), step
  NEW_HEIGHT, as CometBFT's timeout_commit; deciding itself never waits;
- the proposer schedules timeoutPropose too (L21 only for others), so a host
  that never answers BuildBlock cannot stall the round;
- L55 counts, per validator, the highest round it was seen in, and jumps to the
  highest round R such that validators seen at rounds ≥ R hold more than 1/3:
  the same guarantee (some correct validator reached R) with bounded memory;
- a decision may use a block fetched by hash (`RequestBlock`) when +2/3
  precommits name a block whose proposal never arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from protocol import crypto
from protocol.consensus.blocktime import block_time_ms, vote_time_ms
from protocol.consensus.config import ConsensusConfig
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
from protocol.consensus.msglog import MessageLog, ProposalOutcome
from protocol.consensus.proposer import ProposerSchedule
from protocol.consensus.signer import Signer
from protocol.consensus.signstate import SignState, hrs_of, step_of
from protocol.consensus.step import Step
from protocol.consensus.validity import HeightContext, check_block
from protocol.consensus.votes import AddOutcome
from protocol.consensus.wal import WalRecord
from protocol.errors import InvariantViolation
from protocol.types import Block, Commit, Proposal, Vote, VoteType

# Each rule firing moves the state forward (step, round or a once-only flag), so
# the rules settle long before this; reaching it means a rule fires without effect.
_MAX_FIRINGS = 100_000


@dataclass(frozen=True, slots=True)
class RoundState:
    """A read-only view of the engine's position (the paper's variables, L2–L9)."""

    height: int
    round: int
    step: Step
    locked_round: int
    locked_hash: bytes | None
    valid_round: int
    valid_hash: bytes | None


class _Height:
    """Everything that lives for one height. A fresh one per height is L52–L53's
    reset of the lock, the valid value and the message log."""

    def __init__(self, ctx: HeightContext, last_commit: Commit | None, log: MessageLog) -> None:
        self.ctx = ctx
        self.last_commit = last_commit
        self.log = log
        self.schedule = ProposerSchedule(ctx.validators)
        self.round = 0  # L3
        self.step = Step.NEW_HEIGHT  # L4, before L10's StartRound(0)
        self.locked_round = -1  # L7
        self.locked_hash: bytes | None = None  # L6
        self.valid_round = -1  # L9
        self.valid_hash: bytes | None = None  # L8
        # "for the first time" guards of L34, L47 and L36, per round.
        self.prevote_timer_rounds: set[int] = set()
        self.precommit_timer_rounds: set[int] = set()
        self.polka_rounds: set[int] = set()
        self.requested: set[bytes] = set()  # block hashes asked for with RequestBlock
        self.building: int | None = None  # the round whose BuildBlock is outstanding
        self.proposed_rounds: set[int] = set()
        # When round 0 may start (see _wait_over).
        self.wait_until = 0
        self.need_txs = False
        self.txs_available = False
        self.empty_deadline: int | None = None

    @property
    def height(self) -> int:
        return self.ctx.height


class Engine:
    """One validator's (or observer's, when `key` is None) consensus engine.

    `sign_state` is the last persisted `SignState`, None only for a key that has
    never signed. `cache` lets the engine share signature checks with the rest of
    the node. Start with `restore(start, wal)` (an empty WAL for a first boot),
    then feed every input to `handle`.
    """

    def __init__(
        self,
        *,
        chain_id: str,
        key: crypto.Keypair | None = None,
        config: ConsensusConfig | None = None,
        cache: crypto.VerifyCache | None = None,
        sign_state: SignState | None = None,
    ) -> None:
        self._chain_id = chain_id
        self._key = key
        self._config = config if config is not None else ConsensusConfig()
        self._cache = cache if cache is not None else crypto.VerifyCache()
        self._signer = Signer(chain_id, key, sign_state)
        self._h: _Height | None = None
        self._now = 0
        self._decided: tuple[int, int] | None = None  # (height, now_ms) of this engine's last decision
        self._buffer: list[tuple[Proposal | Vote, str]] = []  # next-height messages
        self._buffered_votes = 0
        self._buffered_proposals = 0

    # ------------------------------------------------------------------ public

    @property
    def state(self) -> RoundState | None:
        h = self._h
        if h is None:
            return None
        return RoundState(h.height, h.round, h.step, h.locked_round, h.locked_hash, h.valid_round, h.valid_hash)

    @property
    def sign_state(self) -> SignState | None:
        return self._signer.state

    def messages(self) -> list[Proposal | Vote]:
        """Every proposal and vote held for the current height, proposals first, each
        by round. The algorithm assumes a message between correct validators is
        eventually delivered (the paper's gossip property); the host provides it by
        re-offering these to peers at this height that lack them."""
        h = self._h
        if h is None:
            return []
        return [*h.log.all_proposals(), *h.log.all_votes()]

    def expects_proposal(self, height: int, round: int, proposer: bytes) -> bool:
        """`proposer` is the one scheduled for (height, round) at the height being
        decided, or a validator of it when `height` is the next one (whose set may
        differ): what a host may hold a proposal for while it waits for its data."""
        h = self._h
        if h is None or (h.step == Step.COMMITTED and height == h.height):
            return False
        if height == h.height:
            return h.schedule.proposer(height, round) == proposer
        return height == h.height + 1 and proposer in h.ctx.validators

    def handle(self, inp: Input) -> list[Action]:
        self._now = inp.now_ms
        out: list[Action] = []
        match inp:
            case StartHeight():
                self._start_height(inp, out)
                assert self._h is not None
                self._schedule_wait(self._h, out)
            case ProposalReceived():
                self._on_proposal(inp.proposal, inp.origin, out)
            case VoteReceived():
                self._on_vote(inp.vote, inp.origin, out)
            case TimeoutFired():
                self._on_timeout(inp, out)
            case BlockBuilt():
                self._on_block_built(inp, out)
            case BlockValidity():
                self._on_validity(inp, out)
            case BlockReceived():
                self._on_fetched(inp.block, inp.origin, out)
            case TxsAvailable():
                if self._h is not None:
                    self._h.txs_available = True
        self._run_rules(out)
        return out

    def restore(self, start: StartHeight, wal: Iterable[WalRecord]) -> list[Action]:
        """Start `start.height` on a fresh engine, rebuilding it from the WAL records of
        that height (others are skipped) and the sign state given to the constructor.

        Own messages (signed by this key, in the WAL or the sign state) are taken as
        signed: the engine resumes at the round and step of the last of them, with
        the lock of the sign state or of its highest own precommit for a block,
        broadcasts them all again, and never signs at or below the last one."""
        if self._h is not None:
            raise InvariantViolation("restore needs a fresh engine")
        self._now = start.now_ms
        out: list[Action] = []
        self._start_height(start, out)
        h = self._h
        assert h is not None
        me = self._signer.public_key
        records = [r for r in wal if r.height == start.height]
        own: list[Proposal | Vote] = []
        for rec in records:
            msg = rec.message
            if not isinstance(msg, Block) and me is not None and _signer_of(msg) == me and msg not in own:
                own.append(msg)
        state = self._signer.state
        if state is not None and state.height == start.height and state.message not in own:
            own.append(state.message)
        own.sort(key=hrs_of)
        if own:
            # Resume in the round of the last own message before the log fills, so
            # the per-validator round bounds apply as they did before the crash.
            h.round = own[-1].round
        for rec in records:
            msg = rec.message
            if isinstance(msg, Block):
                h.requested.add(msg.hash)
                self._on_fetched(msg, "", out, logged=True)
            elif msg in own:
                continue  # adopted below, with the sign state's message
            elif isinstance(msg, Proposal):
                self._on_proposal(msg, "", out, logged=True)
            else:
                self._on_vote(msg, "", out, logged=True)
        if not own:
            self._schedule_wait(h, out)
        else:
            for msg in own:
                self._adopt_own(h, msg)
            self._resume(h, own, state, out)
        self._run_rules(out)
        return out

    # ------------------------------------------------------------------ heights

    def _start_height(self, start: StartHeight, out: list[Action]) -> None:
        if self._h is not None and start.height <= self._h.height:
            raise InvariantViolation(f"height {start.height} does not follow {self._h.height}")
        if (start.last_commit is None) != (start.height == 1):
            raise InvariantViolation("a last commit is given exactly above height 1")
        if start.last_commit is not None and (
            start.last_commit.block_hash != start.prev_block_hash or start.last_commit.height != start.height - 1
        ):
            raise InvariantViolation("the last commit is not for the previous block")
        try:
            ctx = HeightContext(
                chain_id=self._chain_id,
                height=start.height,
                validators=start.validators,
                prev_block_hash=start.prev_block_hash,
                prev_block_time_ms=start.prev_block_time_ms,
                last_validators=start.last_validators,
            )
        except ValueError as exc:
            raise InvariantViolation(str(exc)) from None
        h = self._h = _Height(ctx, start.last_commit, MessageLog(start.validators, self._config))
        cfg = self._config
        # The minimum interval counts from when the previous height was decided: the
        # new block's own time (the median of the precommits that decided it), or this
        # engine's decision if that came first (a clock behind the others'). Counting
        # from its own decision alone, a proposer whose loop was slow to see the
        # precommits held every validator up by its delay on top of the interval (under
        # load: heights of 2.3 s among heights of 0.8 s). After a restart or block sync
        # there is nothing to wait for.
        base = h.wait_until = self._now
        if self._decided is not None and self._decided[0] == start.height - 1:
            decided = self._decided[1]
            if start.last_commit is not None:
                decided = min(decided, block_time_ms(start.last_commit, ctx.last_validators,
                                                     ctx.prev_block_time_ms))
            base = decided
            h.wait_until = base + cfg.min_block_interval_ms
        h.need_txs = not cfg.create_empty_blocks and start.prev_block_empty
        h.txs_available = start.txs_available
        if h.need_txs and cfg.create_empty_blocks_interval_ms > 0:
            h.empty_deadline = base + cfg.create_empty_blocks_interval_ms
        buffered, self._buffer = self._buffer, []
        self._buffered_votes = self._buffered_proposals = 0
        for msg, origin in buffered:
            if msg.height != start.height:
                continue
            if isinstance(msg, Proposal):
                self._on_proposal(msg, origin, out)
            else:
                self._on_vote(msg, origin, out)

    def _schedule_wait(self, h: _Height, out: list[Action]) -> None:
        deadlines = {h.wait_until}
        if h.need_txs and h.empty_deadline is not None:
            deadlines.add(h.empty_deadline)
        for at in sorted(deadlines):
            if at > self._now:
                out.append(ScheduleTimeout(Step.NEW_HEIGHT, h.height, 0, at - self._now))

    def _wait_over(self, h: _Height) -> bool:
        if self._now < h.wait_until:
            return False
        if not h.need_txs or h.txs_available:
            return True
        if h.empty_deadline is not None and self._now >= h.empty_deadline:
            return True
        # The proposer saw transactions that have not reached this node's mempool yet.
        return bool(h.log.proposals(0))

    def _resume(self, h: _Height, own: list[Proposal | Vote], state: SignState | None, out: list[Action]) -> None:
        last = own[-1]
        h.round = last.round
        h.step = step_of(last)
        locks = [(v.round, v.block_hash) for v in own if isinstance(v, Vote) and v.type == VoteType.PRECOMMIT]
        if state is not None and state.height == h.height:
            locks.append((state.locked_round, state.locked_hash))
        locked = max(((r, b) for r, b in locks if b is not None), default=None, key=lambda lock: lock[0])
        if locked is not None:
            # A lock is also a valid value (L38–L43 set both).
            h.locked_round, h.locked_hash = locked
            h.valid_round, h.valid_hash = locked
        h.proposed_rounds = {m.round for m in own if isinstance(m, Proposal)}
        out.extend(Broadcast(m) for m in own)
        if h.step == Step.PROPOSE:
            if self._am_proposer(h, h.round) and h.round not in h.proposed_rounds:
                self._start_round(h, h.round, out)
            else:
                out.append(ScheduleTimeout(Step.PROPOSE, h.height, h.round, self._timeout(Step.PROPOSE, h.round)))

    def _adopt_own(self, h: _Height, msg: Proposal | Vote) -> None:
        self._signer.observe(msg)
        if isinstance(msg, Proposal):
            if not h.log.has_proposal(msg):
                h.log.add_proposal(msg, "")
            if not h.log.validity_known(msg.block.hash):
                h.log.set_validity(msg.block.hash, True)  # this node built or validated it
        elif msg.validator in h.ctx.validators:
            h.log.add_vote(msg)

    # ------------------------------------------------------------------ messages

    def _off_height(self, msg: Proposal | Vote, origin: str, out: list[Action]) -> bool:
        """Deal with a message that is not for the height being decided; True if it was."""
        h = self._h
        if h is None:
            out.append(Ignored(IgnoreCode.NO_HEIGHT, "no height started", origin, msg.height))
            return True
        if msg.height == h.height and h.step != Step.COMMITTED:
            return False
        if msg.height <= h.height:
            out.append(Ignored(IgnoreCode.STALE_HEIGHT, f"height {msg.height} is decided", origin, msg.height))
        elif msg.height == h.height + 1:
            is_proposal = isinstance(msg, Proposal)
            if is_proposal and self._buffered_proposals >= self._config.max_buffered_proposals:
                out.append(Ignored(IgnoreCode.BUFFER_FULL, "next-height proposals full", origin, msg.height))
            elif not is_proposal and self._buffered_votes >= self._config.max_buffered_votes:
                out.append(Ignored(IgnoreCode.BUFFER_FULL, "next-height votes full", origin, msg.height))
            else:
                self._buffer.append((msg, origin))
                if is_proposal:
                    self._buffered_proposals += 1
                else:
                    self._buffered_votes += 1
        else:
            reason = f"height {msg.height} is ahead of {h.height}"
            out.append(Ignored(IgnoreCode.FUTURE_HEIGHT, reason, origin, msg.height))
        return True

    def _on_vote(self, vote: Vote, origin: str, out: list[Action], *, logged: bool = False) -> None:
        if self._off_height(vote, origin, out):
            return
        h = self._h
        assert h is not None
        if vote.validator not in h.ctx.validators:
            out.append(Rejected(RejectCode.NOT_VALIDATOR, "vote from a non-validator", origin, None, vote.height))
            return
        if h.log.has_vote(vote):
            return
        if not vote.verify(self._chain_id, self._cache):
            out.append(Rejected(RejectCode.BAD_SIGNATURE, "bad vote signature", origin, None, vote.height))
            return
        h.log.note_round(vote.validator, vote.round)
        if not h.log.admit(vote.validator, vote.round, h.round):
            reason = f"round {vote.round} is beyond the validator's future-round quota"
            out.append(Ignored(IgnoreCode.ROUND_LIMIT, reason, origin, vote.height))
            return
        result = h.log.add_vote(vote)
        if result.outcome == AddOutcome.DUPLICATE:
            return
        if result.outcome == AddOutcome.EXCESS:
            reason = "third different vote for one round and type"
            out.append(Rejected(RejectCode.EXCESS_VOTES, reason, origin, vote.validator, vote.height))
            return
        if not logged:
            out.append(WalAppend(WalRecord.of(vote)))
        if result.evidence is not None:
            out.append(ReportEvidence(result.evidence))

    def _on_proposal(self, p: Proposal, origin: str, out: list[Action], *, logged: bool = False) -> None:
        if self._off_height(p, origin, out):
            return
        h = self._h
        assert h is not None
        if p.proposer != h.schedule.proposer(h.height, p.round):
            reason = f"not the proposer of round {p.round}"
            out.append(Rejected(RejectCode.WRONG_PROPOSER, reason, origin, None, p.height))
            return
        if h.log.has_proposal(p):
            return
        if not p.verify(self._chain_id, self._cache):
            out.append(Rejected(RejectCode.BAD_SIGNATURE, "bad proposal signature", origin, None, p.height))
            return
        if self._altered(p.block, origin, out):
            return
        h.log.note_round(p.proposer, p.round)
        if not h.log.admit(p.proposer, p.round, h.round):
            reason = f"round {p.round} is beyond the proposer's future-round quota"
            out.append(Ignored(IgnoreCode.ROUND_LIMIT, reason, origin, p.height))
            return
        outcome = h.log.add_proposal(p, origin)
        if outcome in (ProposalOutcome.CONFLICT, ProposalOutcome.CONFLICT_DROPPED):
            reason = f"a second proposal for round {p.round}"
            out.append(Rejected(RejectCode.CONFLICTING_PROPOSAL, reason, origin, p.proposer, p.height))
        if outcome not in (ProposalOutcome.ADDED, ProposalOutcome.CONFLICT):
            return
        if not logged:
            out.append(WalAppend(WalRecord.of(p)))
        self._learn_block(h, p.block, origin, p.proposer, out)

    def _on_fetched(self, block: Block, origin: str, out: list[Action], *, logged: bool = False) -> None:
        h = self._h
        wanted = (
            h is not None
            and h.step != Step.COMMITTED
            and block.height == h.height
            and block.hash in h.requested
            and h.log.block(block.hash) is None
        )
        if not wanted:
            out.append(Ignored(IgnoreCode.UNSOLICITED, "block was not requested", origin, block.height))
            return
        assert h is not None
        if self._altered(block, origin, out):
            return
        h.log.add_fetched(block)
        if not logged:
            out.append(WalAppend(WalRecord.of(block)))
        self._learn_block(h, block, origin, None, out)

    def _altered(self, block: Block, origin: str, out: list[Action]) -> bool:
        """The block's body does not match its header. The proposer signed the header
        (the block hash) only, so whoever delivered this altered it: refuse the copy,
        and neither log it nor judge the block hash on it, or an altered copy that came
        first would make this node refuse the genuine block."""
        reason = block.check_structure()
        if reason is None:
            return False
        out.append(Rejected(RejectCode.INVALID_BLOCK, f"body does not match its header: {reason}", origin, None,
                            block.height))
        return True

    def _learn_block(self, h: _Height, block: Block, origin: str, culprit: bytes | None, out: list[Action]) -> None:
        block_hash = block.hash
        if h.log.validity_asked(block_hash):
            return
        reason = check_block(h.ctx, block, self._cache, structure_checked=True)
        if reason is not None:
            h.log.set_validity(block_hash, False)
            out.append(Rejected(RejectCode.INVALID_BLOCK, reason, origin, culprit, h.height))
            return
        h.log.set_validity(block_hash, None)
        out.append(ValidateBlock(h.height, block))

    def _on_validity(self, answer: BlockValidity, out: list[Action]) -> None:
        h = self._h
        if h is None or answer.height != h.height or h.step == Step.COMMITTED:
            return
        if not h.log.validity_asked(answer.block_hash) or h.log.validity_known(answer.block_hash):
            return
        h.log.set_validity(answer.block_hash, answer.valid)
        if not answer.valid:
            reason = answer.reason or "the application rejected the block"
            for proposer, origin in h.log.senders_of(answer.block_hash):
                out.append(Rejected(RejectCode.INVALID_BLOCK, reason, origin, proposer, h.height))

    def _on_block_built(self, built: BlockBuilt, out: list[Action]) -> None:
        h = self._h
        if h is None or (built.height, built.round) != (h.height, h.round):
            return
        if h.step != Step.PROPOSE or h.building != built.round:
            return  # too late: this round's timeoutPropose already fired
        h.building = None
        reason = check_block(h.ctx, built.block, self._cache)
        if reason is None and built.block.header.proposer != self._signer.public_key:
            reason = "the block names another proposer"
        if reason is not None:
            raise InvariantViolation(f"the host built an invalid block: {reason}")
        self._propose(h, built.block, -1, out)  # L19 after L18: validRound_p is -1 on this branch

    def _on_timeout(self, t: TimeoutFired, out: list[Action]) -> None:
        h = self._h
        if h is None or t.height != h.height or t.step == Step.NEW_HEIGHT:
            return  # NEW_HEIGHT: the rules re-check the wait with this input's clock
        if t.round != h.round:
            return
        if t.step == Step.PROPOSE and h.step == Step.PROPOSE:  # L57–L58
            self._vote(h, VoteType.PREVOTE, None, out)  # L59
            h.step = Step.PREVOTE  # L60
        elif t.step == Step.PREVOTE and h.step == Step.PREVOTE:  # L61–L62
            self._vote(h, VoteType.PRECOMMIT, None, out)  # L63
            h.step = Step.PRECOMMIT  # L64
        elif t.step == Step.PRECOMMIT and Step.PROPOSE <= h.step <= Step.PRECOMMIT:  # L65–L66
            self._start_round(h, h.round + 1, out)  # L67

    # ------------------------------------------------------------------ own messages

    def _lock(self, h: _Height) -> tuple[int, bytes | None]:
        return (h.locked_round, h.locked_hash)

    def _am_proposer(self, h: _Height, round: int) -> bool:
        me = self._signer.public_key
        return me is not None and h.schedule.proposer(h.height, round) == me

    def _timeout(self, step: Step, round: int) -> int:
        return self._config.timeout_ms(step, round)

    def _start_round(self, h: _Height, round: int, out: list[Action]) -> None:
        """StartRound (L11)."""
        h.round = round  # L12
        h.step = Step.PROPOSE  # L13
        h.building = None
        if self._am_proposer(h, round) and round not in h.proposed_rounds:  # L14
            valid_block = h.log.block(h.valid_hash) if h.valid_hash is not None else None
            if valid_block is not None:  # L15
                self._propose(h, valid_block, h.valid_round, out)  # L16, L19
            else:
                h.building = round  # L18 getValue(): the host answers with BlockBuilt (then L19)
                out.append(
                    BuildBlock(
                        height=h.height,
                        round=round,
                        time_ms=block_time_ms(h.last_commit, h.ctx.last_validators, h.ctx.prev_block_time_ms),
                        prev_hash=h.ctx.prev_block_hash,
                        last_commit=h.last_commit,
                        validators_hash=h.ctx.validators.hash,
                        proposer=self._signer.public_key or b"",
                    )
                )
        # L21, for the proposer too (see the module docstring).
        out.append(ScheduleTimeout(Step.PROPOSE, h.height, round, self._timeout(Step.PROPOSE, round)))

    def _propose(self, h: _Height, block: Block, pol_round: int, out: list[Action]) -> None:
        """Sign and broadcast ⟨PROPOSAL, h_p, round_p, block, pol_round⟩ (L19)."""
        h.proposed_rounds.add(h.round)
        proposal, actions = self._signer.sign_proposal(h.height, h.round, pol_round, block, self._now, self._lock(h))
        out.extend(actions)
        if proposal is not None:
            self._adopt_own(h, proposal)

    def _vote(self, h: _Height, type: VoteType, block_hash: bytes | None, out: list[Action]) -> None:
        """Sign and broadcast ⟨PREVOTE|PRECOMMIT, h_p, round_p, block_hash⟩, if a validator."""
        me = self._signer.public_key
        if me is None or me not in h.ctx.validators:
            return
        block = h.log.block(block_hash) if type == VoteType.PRECOMMIT and block_hash is not None else None
        vote, actions = self._signer.sign_vote(
            type, h.height, h.round, block_hash, vote_time_ms(self._now, block), self._lock(h)
        )
        out.extend(actions)
        if vote is not None:
            result = h.log.add_vote(vote)
            # A conflicting vote under this key that this engine did not sign: another
            # process holds the key (twins, a copied key). That is evidence against the
            # key, not a bug here: report it rather than halt the node.
            if result.evidence is not None:
                out.append(ReportEvidence(result.evidence))

    # ------------------------------------------------------------------ upon rules

    def _run_rules(self, out: list[Action]) -> None:
        h = self._h
        if h is None:
            return
        for _ in range(_MAX_FIRINGS):
            if not self._fire_one(h, out):
                return
        raise InvariantViolation("consensus rules did not settle")

    def _fire_one(self, h: _Height, out: list[Action]) -> bool:
        """Apply the first rule whose condition holds; False if none does."""
        if h.step == Step.COMMITTED:
            return False
        if self._upon_commit(h, out):
            return True
        if self._upon_round_skip(h, out):
            return True
        if h.step == Step.NEW_HEIGHT:
            if self._wait_over(h):
                self._start_round(h, 0, out)  # L10 / L54, after the wait
                return True
            return False
        if h.step == Step.PROPOSE and self._upon_proposal(h, out):
            return True
        if h.step >= Step.PREVOTE and self._upon_polka_block(h, out):
            return True
        if self._upon_polka_other_round(h):
            return True
        if h.step == Step.PREVOTE and self._upon_polka_nil(h, out):
            return True
        if h.step == Step.PREVOTE and self._upon_prevotes_any(h, out):
            return True
        return self._upon_precommits_any(h, out)

    def _upon_proposal(self, h: _Height, out: list[Action]) -> bool:
        """L22–L27 (fresh proposal) and L28–L33 (re-proposal justified by a polka)."""
        for p in h.log.proposals(h.round):
            v = p.block.hash
            if p.pol_round == -1:  # L22
                if h.locked_round != -1 and h.locked_hash != v:
                    choice = None  # L23 fails whatever valid(v) says: L26
                else:
                    valid = h.log.validity(v)
                    if valid is None:
                        continue  # valid(v) not answered yet
                    choice = v if valid else None  # L23–L26
            else:  # L28: 0 ≤ vr < round_p holds for every Proposal
                if not h.log.votes(p.pol_round, VoteType.PREVOTE).has_two_thirds_for(v):
                    continue
                if not (h.locked_round <= p.pol_round or h.locked_hash == v):
                    choice = None  # L29 fails: L32
                else:
                    valid = h.log.validity(v)
                    if valid is None:
                        continue
                    choice = v if valid else None  # L29–L32
            self._vote(h, VoteType.PREVOTE, choice, out)  # L24 / L26 / L30 / L32
            h.step = Step.PREVOTE  # L27 / L33
            return True
        return False

    def _upon_prevotes_any(self, h: _Height, out: list[Action]) -> bool:
        """L34–L35."""
        if h.round in h.prevote_timer_rounds:
            return False
        if not h.log.votes(h.round, VoteType.PREVOTE).has_two_thirds_any():
            return False
        h.prevote_timer_rounds.add(h.round)
        out.append(ScheduleTimeout(Step.PREVOTE, h.height, h.round, self._timeout(Step.PREVOTE, h.round)))
        return True

    def _upon_polka_block(self, h: _Height, out: list[Action]) -> bool:
        """L36–L43: a polka for a valid proposal of this round."""
        if h.round in h.polka_rounds:
            return False
        for v in h.log.votes(h.round, VoteType.PREVOTE).blocks_with_two_thirds():
            if not h.log.has_proposal_for(h.round, v) or h.log.validity(v) is not True:
                continue
            h.polka_rounds.add(h.round)
            if h.step == Step.PREVOTE:  # L37
                h.locked_hash, h.locked_round = v, h.round  # L38–L39
                self._vote(h, VoteType.PRECOMMIT, v, out)  # L40
                h.step = Step.PRECOMMIT  # L41
            h.valid_hash, h.valid_round = v, h.round  # L42–L43
            return True
        return False

    def _upon_polka_other_round(self, h: _Height) -> bool:
        """L42–L43 for a polka of a round other than the current one (a departure from
        the paper, which updates validValue only in round_p): a node that saw a round's
        polka only after leaving it — lost votes recovered later, a healed partition —
        still learns the value to re-propose. Without it a validator locked on v waits
        until it is proposer itself, since nobody else proposes v. Safe: validValue only
        decides what this node proposes, and receivers check the polka (L28)."""
        for r in reversed(h.log.prevote_rounds()):
            if r <= h.valid_round or r == h.round:
                continue
            for v in h.log.votes(r, VoteType.PREVOTE).blocks_with_two_thirds():
                if h.log.has_proposal_for(r, v) and h.log.validity(v) is True:
                    h.valid_hash, h.valid_round = v, r
                    return True
        return False

    def _upon_polka_nil(self, h: _Height, out: list[Action]) -> bool:
        """L44–L46."""
        if not h.log.votes(h.round, VoteType.PREVOTE).has_two_thirds_for(None):
            return False
        self._vote(h, VoteType.PRECOMMIT, None, out)  # L45
        h.step = Step.PRECOMMIT  # L46
        return True

    def _upon_precommits_any(self, h: _Height, out: list[Action]) -> bool:
        """L47–L48."""
        if h.round in h.precommit_timer_rounds:
            return False
        if not h.log.votes(h.round, VoteType.PRECOMMIT).has_two_thirds_any():
            return False
        h.precommit_timer_rounds.add(h.round)
        out.append(ScheduleTimeout(Step.PRECOMMIT, h.height, h.round, self._timeout(Step.PRECOMMIT, h.round)))
        return True

    def _upon_commit(self, h: _Height, out: list[Action]) -> bool:
        """L49–L54, in any round. A block with +2/3 precommits whose proposal never
        arrived is fetched by hash; the decision waits for it and for valid(v)."""
        for r in h.log.precommit_rounds():
            precommits = h.log.votes(r, VoteType.PRECOMMIT)
            for v in precommits.blocks_with_two_thirds():
                block = h.log.block(v)
                if block is None:
                    if v not in h.requested:
                        h.requested.add(v)
                        out.append(RequestBlock(h.height, r, v))
                    continue
                if h.log.validity(v) is not True:  # L50
                    continue
                commit = Commit.from_votes(precommits.votes_for(v))
                out.append(Decide(h.height, r, block, commit))  # L51
                h.step = Step.COMMITTED  # L52–L54 happen when the host starts the next height
                self._decided = (h.height, self._now)
                return True
        return False

    def _upon_round_skip(self, h: _Height, out: list[Action]) -> bool:
        """L55–L56."""
        target = h.log.skip_target(h.round)
        if target is None:
            return False
        self._start_round(h, target, out)
        return True


def _signer_of(msg: Proposal | Vote) -> bytes:
    return msg.proposer if isinstance(msg, Proposal) else msg.validator
