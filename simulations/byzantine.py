"""Byzantine behaviours: rewrites of a node's own actions.

A Byzantine `SimNode` runs an honest replica; its `byzantine` hook sees every action
the replica asks for and returns what the node really does. Conflicting messages
are signed with the node's own key (`Vote.create`, `Proposal.create`), so honest
nodes see genuinely signed equivocation, exactly what a real attacker could send.
`SendTo` (a simulator action) addresses chosen peers only.

Behaviours (scenario key `behaviour`):

=================  =====================================================================
equivocate         as proposer, a second signed block for `side_b`, the first for the rest
double-vote        every vote is sent together with a signed vote for the other value
withhold-votes     never sends its votes (of `types`)
wrong-height       sends extra signed votes for heights `h + offset`
wrong-round        sends extra signed votes for rounds `r + offset`
invalid-block      as proposer, sends blocks no honest node accepts (bad tx signature,
                   wrong app hash)
replay             re-sends proposals and votes of earlier heights
fork-coalition     the members collude: `side_b` sees a twin of every block a member
                   proposes, and the members' votes for it as votes for the twin —
                   with more than 1/3 of the power this forks the honest nodes
silent             signs but sends nothing
=================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol import crypto
from protocol.governance.notary import Notarise
from protocol.replica import Broadcast
from protocol.types import Block, Proposal, Tx, Vote, make_block
from simulations.cluster import Cluster, SendTo, SimNode
from simulations.scenario import ByzantineSpec

TWIN_NONCE = 2**40  # far beyond any real nonce: the extra tx fails admission, the block stays valid
BOGUS = crypto.sha256(b"ekklesia/sim/bogus-block")
REPLAY_HISTORY = 256

Behaviour = Callable[[SimNode, Any], list[Any]]


def install(cluster: Cluster, specs: tuple[ByzantineSpec, ...] | list[ByzantineSpec]) -> None:
    for spec in specs:
        shared: dict[bytes, bytes] = {}  # fork-coalition: block hash -> its twin's hash
        for name in spec.nodes:
            node = cluster.nodes[name]
            node.byzantine = make(spec, cluster, node, shared)
            cluster.faulty.add(name)
            cluster.faulty.add(cluster.validator_of[name])


def make(spec: ByzantineSpec, cluster: Cluster, node: SimNode, shared: dict[bytes, bytes]) -> Behaviour:
    others = [n for n in sorted(cluster.nodes) if n != node.name]
    members = set(spec.nodes)
    if spec.side_b:
        side_b = tuple(n for n in others if n in spec.side_b)
    else:  # every other honest node, and no member of the group
        side_b = tuple(n for n in others if n not in members)[1::2]
    side_a = tuple(n for n in others if n not in side_b)
    b = spec.behaviour
    if b == "equivocate":
        return _Equivocate(cluster, side_a, side_b)
    if b == "double-vote":
        return _DoubleVote(cluster, others)
    if b == "withhold-votes":
        return _Withhold(spec.types)
    if b == "wrong-height":
        return _WrongHeightOrRound(cluster, others, spec.offsets, height=True)
    if b == "wrong-round":
        return _WrongHeightOrRound(cluster, others, spec.offsets, height=False)
    if b == "invalid-block":
        return _InvalidBlock(cluster, others)
    if b == "replay":
        r = _Replay(cluster, others)
        node.observers.append(r.observe)
        return r
    if b == "fork-coalition":
        return _Coalition(cluster, side_a, side_b, shared)
    if b == "silent":
        return _silent
    raise ValueError(f"unknown behaviour {b!r}")


def _silent(node: SimNode, a: Any) -> list[Any]:
    return [] if isinstance(a, Broadcast | SendTo) else [a]


def twin_block(node: SimNode, block: Block, salt: int) -> Block:
    """The same header fields plus one signed tx that fails admission (nonce far ahead):
    a valid block with another hash."""
    assert node.key is not None
    h = block.header
    extra = Tx.create(
        node.key, h.chain_id, TWIN_NONCE + salt, "notary.notarise",
        Notarise(crypto.sha256(b"twin%d" % salt), "twin").encode(),
    )
    return make_block(
        chain_id=h.chain_id, height=h.height, time_ms=h.time_ms, prev_hash=h.prev_hash, app_hash=h.app_hash,
        validators_hash=h.validators_hash, proposer=h.proposer, txs=(*block.txs, extra),
        last_commit=block.last_commit, evidence=block.evidence,
    )


def _salt(p: Proposal) -> int:
    return p.height * 1_000 + p.round


def _sign_proposal(node: SimNode, p: Proposal, block: Block) -> Proposal:
    assert node.key is not None
    return Proposal.create(node.key, node.cluster.chain_id, p.height, p.round, p.pol_round, block, p.timestamp_ms)


def _sign_vote(node: SimNode, v: Vote, *, height: int | None = None, round: int | None = None,
               block_hash: bytes | str | None = "same") -> Vote:  # fmt: skip
    assert node.key is not None
    return Vote.create(
        node.key, node.cluster.chain_id, v.type, v.height if height is None else height,
        v.round if round is None else round, v.block_hash if block_hash == "same" else block_hash,  # type: ignore[arg-type]
        v.timestamp_ms,
    )


def _own_proposal(node: SimNode, a: Any) -> Proposal | None:
    m = a.message if isinstance(a, Broadcast) else None
    return m if isinstance(m, Proposal) and node.key is not None and m.proposer == node.key.public_key else None


def _own_vote(node: SimNode, a: Any) -> Vote | None:
    m = a.message if isinstance(a, Broadcast) else None
    return m if isinstance(m, Vote) and node.key is not None and m.validator == node.key.public_key else None


class _Equivocate:
    def __init__(self, cluster: Cluster, side_a: tuple[str, ...], side_b: tuple[str, ...]) -> None:
        self.side_a, self.side_b = side_a, side_b

    def __call__(self, node: SimNode, a: Any) -> list[Any]:
        p = _own_proposal(node, a)
        if p is None:
            return [a]
        twin = _sign_proposal(node, p, twin_block(node, p.block, _salt(p)))
        return [SendTo(p, self.side_a), SendTo(twin, self.side_b)]


class _DoubleVote:
    def __init__(self, cluster: Cluster, others: list[str]) -> None:
        self.others = tuple(others)

    def __call__(self, node: SimNode, a: Any) -> list[Any]:
        v = _own_vote(node, a)
        if v is None:
            return [a]
        twin = _sign_vote(node, v, block_hash=None if v.block_hash is not None else BOGUS)
        pair = [a, SendTo(twin, self.others)]
        node.rng.shuffle(pair)
        return pair


class _Withhold:
    def __init__(self, types: tuple[str, ...]) -> None:
        self.types = {1 if t == "prevote" else 2 for t in types}

    def __call__(self, node: SimNode, a: Any) -> list[Any]:
        v = _own_vote(node, a)
        return [] if v is not None and int(v.type) in self.types else [a]


class _WrongHeightOrRound:
    def __init__(self, cluster: Cluster, others: list[str], offsets: tuple[int, ...], *, height: bool) -> None:
        self.others = tuple(others)
        self.offsets = offsets
        self.height = height

    def __call__(self, node: SimNode, a: Any) -> list[Any]:
        v = _own_vote(node, a)
        if v is None:
            return [a]
        out: list[Any] = [a]
        for off in self.offsets:
            if self.height and v.height + off >= 1:
                out.append(SendTo(_sign_vote(node, v, height=v.height + off), self.others))
            elif not self.height and v.round + off >= 0:
                out.append(SendTo(_sign_vote(node, v, round=v.round + off), self.others))
        return out


class _InvalidBlock:
    def __init__(self, cluster: Cluster, others: list[str]) -> None:
        self.others = tuple(others)

    def __call__(self, node: SimNode, a: Any) -> list[Any]:
        p = _own_proposal(node, a)
        if p is None:
            return [a]
        h = p.block.header
        if p.round % 2 == 0:  # a tx whose signature does not verify: the proposer's fault
            good = twin_block(node, p.block, _salt(p)).txs[-1]
            bad = Tx(good.chain_id, good.sender, good.nonce, good.kind, good.body, (), bytes(64))
            block = make_block(
                chain_id=h.chain_id, height=h.height, time_ms=h.time_ms, prev_hash=h.prev_hash,
                app_hash=h.app_hash, validators_hash=h.validators_hash, proposer=h.proposer,
                txs=(*p.block.txs, bad), last_commit=p.block.last_commit, evidence=p.block.evidence,
            )
        else:  # a state root this chain never had
            block = make_block(
                chain_id=h.chain_id, height=h.height, time_ms=h.time_ms, prev_hash=h.prev_hash,
                app_hash=crypto.sha256(h.app_hash), validators_hash=h.validators_hash, proposer=h.proposer,
                txs=p.block.txs, last_commit=p.block.last_commit, evidence=p.block.evidence,
            )
        return [SendTo(_sign_proposal(node, p, block), self.others)]


class _Replay:
    def __init__(self, cluster: Cluster, others: list[str]) -> None:
        self.others = tuple(others)
        self.history: list[Proposal | Vote] = []

    def observe(self, node: SimNode, message: object) -> None:
        if isinstance(message, Proposal | Vote):
            self._keep(message)

    def _keep(self, m: Proposal | Vote) -> None:
        self.history.append(m)
        if len(self.history) > REPLAY_HISTORY:
            del self.history[: REPLAY_HISTORY // 2]

    def __call__(self, node: SimNode, a: Any) -> list[Any]:
        if not isinstance(a, Broadcast) or not isinstance(a.message, Proposal | Vote):
            return [a]
        current = a.message.height
        old = [m for m in self.history if m.height < current]
        self._keep(a.message)
        out: list[Any] = [a]
        for m in node.rng.sample(old, min(2, len(old))):
            out.append(SendTo(m, self.others))
        return out


class _Coalition:
    def __init__(
        self, cluster: Cluster, side_a: tuple[str, ...], side_b: tuple[str, ...], twins: dict[bytes, bytes]
    ) -> None:
        self.side_a, self.side_b = side_a, side_b
        self.twins = twins

    def __call__(self, node: SimNode, a: Any) -> list[Any]:
        p = _own_proposal(node, a)
        if p is not None:
            alt = twin_block(node, p.block, _salt(p))
            self.twins[p.block.hash] = alt.hash
            return [SendTo(p, self.side_a), SendTo(_sign_proposal(node, p, alt), self.side_b)]
        v = _own_vote(node, a)
        if v is not None and v.block_hash in self.twins:
            twin = _sign_vote(node, v, block_hash=self.twins[v.block_hash])
            return [SendTo(v, self.side_a), SendTo(twin, self.side_b)]
        return [a]
