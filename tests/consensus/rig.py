"""One engine under test, with the test speaking for every other validator.

Actions and state are rendered as short strings so a test reads as a transcript:
``(input, expected actions, expected state)`` per line. Blocks get names
("B1"); validators are "me" and the others by index ("v2").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.consensus import (
    Action,
    BlockBuilt,
    BlockReceived,
    BlockValidity,
    Broadcast,
    BuildBlock,
    ConsensusConfig,
    Decide,
    Engine,
    Ignored,
    Input,
    PersistSignState,
    ProposalReceived,
    ProposerSchedule,
    Rejected,
    ReportEvidence,
    RequestBlock,
    ScheduleTimeout,
    SignState,
    StartHeight,
    Step,
    TimeoutFired,
    ValidateBlock,
    VoteReceived,
    WalAppend,
    WalRecord,
)
from protocol.crypto import VerifyCache
from protocol.types import ZERO_HASH, Block, Proposal, Vote, VoteType, make_block
from protocol.validators import ValidatorSet

from .harness import CHAIN_ID, GENESIS_MS, app_hash_after, keypair, make_tx

STEP_NAMES = {Step.PROPOSE: "propose", Step.PREVOTE: "prevote", Step.PRECOMMIT: "precommit"}


@dataclass
class Rig:
    n: int = 4
    me: int | None = None  # default: the proposer of round 3, so rounds 0–2 belong to others
    config: ConsensusConfig = field(default_factory=lambda: ConsensusConfig(min_block_interval_ms=0))
    powers: list[int] | None = None
    show_wal: bool = False

    def __post_init__(self) -> None:
        self.keys = [keypair(i) for i in range(self.n)]
        powers = self.powers or [1] * self.n
        self.vset = ValidatorSet.of([(k.public_key, p) for k, p in zip(self.keys, powers, strict=True)])
        self.schedule = ProposerSchedule(self.vset)
        index = {k.public_key: i for i, k in enumerate(self.keys)}
        self.proposers = [index[self.schedule.proposer(1, r)] for r in range(8)]
        if self.me is None:
            self.me = self.proposers[3]
        self.others = [i for i in range(self.n) if i != self.me]
        self.now = GENESIS_MS
        self.names: dict[bytes, str] = {}
        self.blocks: dict[str, Block] = {}
        self.cache = VerifyCache()
        self.engine = self.fresh_engine()

    def fresh_engine(self, sign_state: SignState | None = None) -> Engine:
        return Engine(
            chain_id=CHAIN_ID, key=self.keys[self.me_i], config=self.config, cache=self.cache, sign_state=sign_state
        )

    @property
    def me_i(self) -> int:
        assert self.me is not None
        return self.me

    # ------------------------------------------------------------ inputs

    def start(self) -> StartHeight:
        return StartHeight(self.now, 1, self.vset, ZERO_HASH, GENESIS_MS)

    def block(self, name: str, round: int = 0, *, proposer: int | None = None, app_hash: bytes | None = None) -> Block:
        """A block for height 1 by the proposer of `round`, told apart by one transaction."""
        who = self.proposers[round] if proposer is None else proposer
        block = make_block(
            chain_id=CHAIN_ID,
            height=1,
            time_ms=GENESIS_MS,
            prev_hash=ZERO_HASH,
            app_hash=app_hash if app_hash is not None else app_hash_after(ZERO_HASH),
            validators_hash=self.vset.hash,
            proposer=self.keys[who].public_key,
            txs=(make_tx(len(self.blocks) + 1),),
        )
        self.name(block, name)
        return block

    def name(self, block: Block, name: str) -> None:
        self.names[block.hash] = name
        self.blocks[name] = block

    def proposal(self, round: int, name: str, pol_round: int = -1, *, signer: int | None = None) -> ProposalReceived:
        who = self.proposers[round] if signer is None else signer
        p = Proposal.create(self.keys[who], CHAIN_ID, 1, round, pol_round, self.blocks[name], self.now)
        return ProposalReceived(self.now, p, f"v{who}")

    def vote(self, who: int, type: VoteType, round: int, name: str | None, *, ts: int | None = None) -> VoteReceived:
        block_hash = None if name is None else self.blocks[name].hash
        v = Vote.create(self.keys[who], CHAIN_ID, type, 1, round, block_hash, self.now if ts is None else ts)
        return VoteReceived(self.now, v, f"v{who}")

    def prevote(self, who: int, round: int, name: str | None) -> VoteReceived:
        return self.vote(who, VoteType.PREVOTE, round, name)

    def precommit(self, who: int, round: int, name: str | None) -> VoteReceived:
        return self.vote(who, VoteType.PRECOMMIT, round, name)

    def timeout(self, step: Step, round: int, height: int = 1) -> TimeoutFired:
        return TimeoutFired(self.now, step, height, round)

    def validity(self, name: str, ok: bool = True) -> BlockValidity:
        return BlockValidity(self.now, 1, self.blocks[name].hash, ok, "" if ok else "app says no")

    def built(self, round: int, name: str) -> BlockBuilt:
        return BlockBuilt(self.now, 1, round, self.blocks[name])

    def received(self, name: str) -> BlockReceived:
        return BlockReceived(self.now, self.blocks[name], "v9")

    # ------------------------------------------------------------ running

    def step(self, inp: Input) -> list[Action]:
        return self.engine.handle(inp)

    def play(self, transcript: list[tuple[Input, list[str], str | None]]) -> None:
        for i, (inp, expected, state) in enumerate(transcript):
            got = [s for s in (self.render(a) for a in self.step(inp)) if s]
            assert got == expected, f"line {i} ({type(inp).__name__}): actions {got}, expected {expected}"
            if state is not None:
                assert self.render_state() == state, f"line {i}: state {self.render_state()!r}, expected {state!r}"

    # ------------------------------------------------------------ rendering

    def block_name(self, block_hash: bytes | None) -> str:
        if block_hash is None:
            return "nil"
        return self.names.get(block_hash, block_hash.hex()[:6])

    def who(self, pubkey: bytes) -> str:
        i = next(i for i, k in enumerate(self.keys) if k.public_key == pubkey)
        return "me" if i == self.me else f"v{i}"

    def render(self, a: Action) -> str:
        match a:
            case Broadcast(message=Proposal() as p):
                return f"propose r{p.round} {self.block_name(p.block.hash)} pol={p.pol_round}"
            case Broadcast(message=Vote() as v):
                return f"{v.type.name.lower()} r{v.round} {self.block_name(v.block_hash)}"
            case PersistSignState(state=s):
                return f"persist {STEP_NAMES[s.step]} r{s.round}"
            case WalAppend(record=r):
                return f"wal {self.render_record(r)}" if self.show_wal else ""
            case ScheduleTimeout():
                name = "new_height" if a.step == Step.NEW_HEIGHT else STEP_NAMES[a.step]
                return f"timeout {name} r{a.round} {a.delay_ms}"
            case BuildBlock():
                return f"build r{a.round}"
            case ValidateBlock():
                return f"validate {self.block_name(a.block.hash)}"
            case Decide():
                return f"decide r{a.round} {self.block_name(a.block.hash)}"
            case ReportEvidence(evidence=e):
                return f"evidence {self.who(e.validator)} {e.vote_a.type.name.lower()} r{e.vote_a.round}"
            case RequestBlock():
                return f"request r{a.round} {self.block_name(a.block_hash)}"
            case Rejected():
                return f"rejected {a.code.value}"
            case Ignored():
                return f"ignored {a.code.value}"
        raise AssertionError(f"unrendered action {a!r}")

    def render_record(self, r: WalRecord) -> str:
        m = r.message
        if isinstance(m, Proposal):
            return f"proposal r{m.round} {self.block_name(m.block.hash)}"
        if isinstance(m, Vote):
            return f"{self.who(m.validator)} {m.type.name.lower()} r{m.round} {self.block_name(m.block_hash)}"
        return f"block {self.block_name(m.hash)}"

    def render_state(self) -> str:
        s = self.engine.state
        assert s is not None

        def lock(r: int, h: bytes | None) -> str:
            return "-" if h is None else f"{self.block_name(h)}@{r}"

        step = s.step.name.lower()
        return f"r{s.round} {step} lock={lock(s.locked_round, s.locked_hash)} valid={lock(s.valid_round, s.valid_hash)}"
