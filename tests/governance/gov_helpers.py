"""A small chain harness for governance tests: deterministic keys, a default genesis
with short tracks, and a `Chain` that builds, applies and commits blocks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from protocol import crypto
from protocol.crypto import Keypair, VerifyCache
from protocol.governance import Genesis, app_hash, apply_block, init_state, queries
from protocol.governance.actions import ActionType
from protocol.governance.app import BlockResult, TxResult
from protocol.governance.identity import derive_id, key_digest
from protocol.governance.proposals import CastVote, Choice, Status, SubmitProposal
from protocol.kv import MemoryKV
from protocol.types import ZERO_HASH, Block, DuplicateVoteEvidence, Tx, make_block
from protocol.wire import Struct

CHAIN = "ekklesia-test"
T0 = 1_700_000_000_000


def kp(i: int) -> Keypair:
    return Keypair(crypto.sha256(b"gov-test-seed" + i.to_bytes(4, "big")))


@dataclass(frozen=True)
class Person:
    key: Keypair
    next_key: Keypair
    id: bytes

    @property
    def pub(self) -> bytes:
        return self.key.public_key

    @property
    def address(self) -> bytes:
        return self.key.address


def person(i: int) -> Person:
    key, nxt = kp(i), kp(100_000 + i)
    return Person(key, nxt, derive_id(key.public_key, key_digest(nxt.public_key)))


VALIDATORS = [kp(900 + i) for i in range(4)]
PEOPLE = [person(i) for i in range(6)]  # residents; 0 is a registrar, 1 an issuer
OUTSIDER = person(50)  # funded, no identity in genesis
BALANCE = 1_000_000
TREASURY = 10_000_000

FAST_TRACK = {
    "voting_delay": 2,
    "voting_period": 5,
    "timelock": 2,
    "min_deposit": 100,
}
TRACK_NAMES = ["constitutional", "law", "parameter", "treasury", "registrar", "issuer", "validator", "ruling"]


def genesis_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "chain_id": CHAIN,
        "genesis_time_ms": T0,
        "validators": [{"pubkey": v.public_key.hex(), "power": 10} for v in VALIDATORS],
        "accounts": [{"pubkey": p.pub.hex(), "balance": BALANCE} for p in [*PEOPLE, OUTSIDER]],
        "treasury": TREASURY,
        "identities": [
            {"pubkey": p.pub.hex(), "next_key_digest": key_digest(p.next_key.public_key).hex(), "resident": True}
            for p in PEOPLE
        ],
        "registrars": [PEOPLE[0].pub.hex()],
        "issuers": [{"pubkey": PEOPLE[1].pub.hex(), "name": "Open University"}],
        "constitution": [
            {"number": 1, "text": "Membership is voluntary."},
            {"number": 2, "text": "Every resident has one vote."},
            {"number": 3, "text": "The treasury serves the common good."},
        ],
        "params": {"min_notice_period": 3, "tracks": {name: dict(FAST_TRACK) for name in TRACK_NAMES}},
    }
    doc.update(overrides)
    return doc


def genesis(params: dict[str, Any] | None = None, **overrides: Any) -> Genesis:
    """The default test genesis; `params` merges into its (fast-track) params, track
    by track."""
    doc = genesis_doc(**overrides)
    for name, value in (params or {}).items():
        if name == "tracks":
            for track, fields in value.items():
                doc["params"]["tracks"][track].update(fields)
        else:
            doc["params"][name] = value
    return Genesis.from_json(json.dumps(doc))


class Chain:
    """A committed MemoryKV plus the bookkeeping to make valid blocks on it."""

    def __init__(self, g: Genesis | None = None, cache: VerifyCache | None = None) -> None:
        self.genesis = g or genesis()
        self.state = MemoryKV()
        self.state.apply(init_state(self.genesis))
        self.cache = cache if cache is not None else VerifyCache()
        self.time = self.genesis.genesis_time_ms
        self.prev_hash = ZERO_HASH
        self._pending: dict[bytes, int] = {}
        self.results: list[BlockResult] = []
        self.blocks: list[Block] = []

    @property
    def height(self) -> int:
        return queries.last_height(self.state)

    def nonce(self, key: Keypair) -> int:
        return self._pending.get(key.public_key, queries.account_nonce(self.state, key.public_key))

    def tx(self, key: Keypair, kind: str, body: Struct | bytes, *, cosigners: tuple[Keypair, ...] = (),
           nonce: int | None = None, chain_id: str = CHAIN) -> Tx:
        n = self.nonce(key) if nonce is None else nonce
        if nonce is None:
            self._pending[key.public_key] = n + 1
        raw = body if isinstance(body, bytes) else body.encode()
        return Tx.create(key, chain_id, n, kind, raw, cosigners)

    def block(self, *txs: Tx, evidence: tuple[DuplicateVoteEvidence, ...] = (), dt: int = 1_000) -> BlockResult:
        self.time += dt
        blk = make_block(
            chain_id=CHAIN,
            height=self.height + 1,
            time_ms=self.time,
            prev_hash=self.prev_hash,
            app_hash=app_hash(self.state),
            validators_hash=ZERO_HASH,
            proposer=VALIDATORS[0].public_key,
            txs=tuple(txs),
            evidence=evidence,
        )
        result = apply_block(self.state, blk, cache=self.cache)
        self.state.apply(result.write_set)
        self.prev_hash = blk.hash
        self._pending.clear()
        self.results.append(result)
        self.blocks.append(blk)
        self.last_block = blk
        return result

    def run(self, key: Keypair, kind: str, body: Struct | bytes, **kw: Any) -> TxResult:
        """One tx in its own block; returns its result."""
        return self.block(self.tx(key, kind, body, **kw)).tx_results[0]

    def until(self, height: int) -> None:
        while self.height < height:
            self.block()


def ok(result: TxResult) -> TxResult:
    assert result.ok, f"expected success, got {result.code}: {result.reason}"
    return result


def events_of(result: BlockResult, type_: str) -> list[Any]:
    evs = list(result.events)
    for r in result.tx_results:
        evs.extend(r.events)
    return [e for e in evs if e.type == type_]


# ---------------------------------------------------------------- proposals


def submit(c: Chain, action_type: ActionType, action: Struct | bytes, *, who: Any = None, deposit: int = 100,
           title: str = "A proposal") -> Any:
    who = who or PEOPLE[2]
    raw = action if isinstance(action, bytes) else action.encode()
    return c.run(who.key, "proposal.submit", SubmitProposal(title, "why", deposit, action_type, raw))


def new(c: Chain, action_type: ActionType, action: Struct, **kw: Any) -> int:
    ok(submit(c, action_type, action, **kw))
    return max(p.id for p in queries.proposals(c.state))


def prop(c: Chain, pid: int) -> Any:
    view = queries.proposal(c.state, pid)
    assert view is not None
    return view.proposal


def vote(c: Chain, pid: int, *ballots: tuple[Any, Choice]) -> list[Any]:
    res = c.block(*(c.tx(p.key, "proposal.vote", CastVote(pid, ch)) for p, ch in ballots))
    return list(res.tx_results)


def open_voting(c: Chain, pid: int) -> None:
    c.until(prop(c, pid).voting_start)
    assert prop(c, pid).status == Status.VOTING


def decide(c: Chain, pid: int) -> Status:
    c.until(prop(c, pid).voting_end)
    return Status(prop(c, pid).status)


def execute(c: Chain, pid: int) -> Status:
    p = prop(c, pid)
    assert p.status == Status.QUEUED, p.status
    c.until(p.execute_at)
    return Status(prop(c, pid).status)


def passed(c: Chain, action_type: ActionType, action: Struct, voters: list[Any] | None = None) -> int:
    """Submit, get every voter to vote yes, and run to execution."""
    pid = new(c, action_type, action)
    open_voting(c, pid)
    for r in vote(c, pid, *((p, Choice.YES) for p in (voters or PEOPLE))):
        ok(r)
    assert decide(c, pid) == Status.QUEUED
    execute(c, pid)
    return pid


