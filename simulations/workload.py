"""Governance transactions at a configured rate, from simulated clients.

Each client holds an account key with a genesis balance (the first `residents` are
also resident identities) and talks to one honest home node, as a wallet talks to
one API. Arrivals are a Poisson process drawn from the workload's own seeded
stream. Kinds (scenario `workload.mix` weights):

==========  =======================================================================
transfer    tokens to another client
notarise    a random document hash into the notary
register    a brand-new key registers an identity (nonce 0, no balance needed: fee 0)
proposal    a resident proposes a law (LAW track, resident electorate, deposit)
vote        a resident votes on a proposal that is open on its home node's state
            (with none open there, the client notarises instead: admission refuses
            a vote that could only fail)
marriage    two residents create a marriage, co-signed by the second
==========  =======================================================================

The client's nonce advances only when its home node accepts the tx. A refusal is
recorded with its reason; a node that is down or paused does not answer and the
client tries again at its next turn. Every acknowledged tx is kept for the
lost-transaction checker. Genesis uses `SIM_PARAMS`: the default parameters with
tracks short enough that proposals open, close and execute within a simulation.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from dataclasses import dataclass

from protocol import crypto
from protocol.governance import proposals as gp
from protocol.governance import queries
from protocol.governance.accounts import Transfer
from protocol.governance.actions import ActionType, EnactLaw
from protocol.governance.identity import RegisterIdentity, key_digest
from protocol.governance.notary import Notarise
from protocol.governance.params import DEFAULT_PARAMS, Params
from protocol.governance.proposals import CastVote, Choice, SubmitProposal
from protocol.governance.unions import CreateUnion, UnionKind
from protocol.types import Tx
from simulations.cluster import Cluster, SimNode
from simulations.scenario import WorkloadSpec

SIM_PARAMS: Params = dataclasses.replace(
    DEFAULT_PARAMS,
    min_notice_period=10,
    tracks=tuple(
        dataclasses.replace(t, min_deposit=100, voting_delay=2, voting_period=12, timelock=2)
        for t in DEFAULT_PARAMS.tracks
    ),
)
DEPOSIT = 100
RESIDENT_KINDS = frozenset({"proposal", "vote", "marriage"})


@dataclass
class Client:
    key: crypto.Keypair
    home: str
    resident: bool
    nonce: int = 0


@dataclass(frozen=True, slots=True)
class Submission:
    t_ms: int
    client: int  # index, -1 for a fresh registering key
    kind: str
    node: str
    tx_hash: bytes
    accepted: bool
    reason: str


class Workload:
    def __init__(self, cluster: Cluster, spec: WorkloadSpec, rng: random.Random, stop_ms: int) -> None:
        self.cluster = cluster
        self.spec = spec
        self.rng = rng
        self.stop_ms = stop_ms
        homes = [n.name for n in cluster.honest_nodes()] or sorted(cluster.nodes)
        self.clients = [
            Client(k, homes[i % len(homes)], i < spec.residents) for i, k in enumerate(cluster.account_keys)
        ]
        self.residents = [i for i, c in enumerate(self.clients) if c.resident]
        kinds = [(k, w) for k, w in spec.mix if w > 0]
        if not self.residents:
            kinds = [(k, w) for k, w in kinds if k not in RESIDENT_KINDS]
        self.kinds = [k for k, _ in kinds]
        self.weights = [w for _, w in kinds]
        self.submissions: list[Submission] = []
        self.acked: dict[bytes, tuple[int, str, str]] = {}  # tx hash -> (t, kind, node)

    def install(self) -> None:
        if self.spec.rate > 0 and self.kinds:
            self.cluster.sched.at(self.spec.start_ms, self._arrive)

    def _arrive(self) -> None:
        now = self.cluster.sched.now_ms
        if now > self.stop_ms:
            return
        self._one(self.rng.choices(self.kinds, self.weights)[0])
        gap = max(1, math.ceil(self.rng.expovariate(self.spec.rate) * 1000))
        self.cluster.sched.after(gap, self._arrive)

    # ------------------------------------------------------------ building txs

    def _one(self, kind: str) -> None:
        pool = self.residents if kind in RESIDENT_KINDS else range(len(self.clients))
        ci = self.rng.choice(list(pool))
        client = self.clients[ci]
        node = self.cluster.nodes[client.home]
        if node.replica is None or node.paused:
            self._record(kind, ci, node.name, b"", False, "home node unavailable")
            return
        chain = self.cluster.chain_id
        if kind == "vote" and not open_proposals(node):
            kind = "notarise"
        if kind == "register":
            fresh = crypto.Keypair(self.rng.randbytes(32))
            nxt = crypto.Keypair(self.rng.randbytes(32))
            tx = Tx.create(fresh, chain, 0, "identity.register", RegisterIdentity(key_digest(nxt.public_key)).encode())
            self._submit(kind, -1, node, tx)
            return
        tx = self._build(kind, client, node)
        self._submit(kind, ci, node, tx)

    def _build(self, kind: str, client: Client, node: SimNode) -> Tx:
        chain, n = self.cluster.chain_id, client.nonce
        if kind == "transfer":
            to = self.rng.choice([c for c in self.clients if c is not client]).key.address
            return Tx.create(client.key, chain, n, "transfer", Transfer(to, self.rng.randrange(1, 100), "").encode())
        if kind == "notarise":
            doc = Notarise(self.rng.randbytes(32), "sim")
            return Tx.create(client.key, chain, n, "notary.notarise", doc.encode())
        if kind == "proposal":
            law = EnactLaw(f"law {self.rng.randrange(1_000_000)}").encode()
            submit = SubmitProposal("a law", "drawn by the simulator", DEPOSIT, ActionType.ENACT_LAW, law)
            return Tx.create(client.key, chain, n, "proposal.submit", submit.encode())
        if kind == "vote":
            pid = self.rng.choice(open_proposals(node))
            choice = self.rng.choice([Choice.YES, Choice.YES, Choice.NO, Choice.ABSTAIN])
            return Tx.create(client.key, chain, n, "proposal.vote", CastVote(pid, choice).encode())
        if kind == "marriage":
            other = self.clients[self.rng.choice([i for i in self.residents if self.clients[i] is not client])]
            union = CreateUnion(UnionKind.MARRIAGE, "marriage", self.rng.randbytes(32), SIM_PARAMS.min_notice_period)
            return Tx.create(client.key, chain, n, "union.create", union.encode(), cosigners=(other.key,))
        raise ValueError(f"unknown tx kind {kind!r}")

    def _submit(self, kind: str, ci: int, node: SimNode, tx: Tx) -> None:
        answers = node.submit([tx])
        if not answers:  # the replica halted on this input
            self._record(kind, ci, node.name, tx.hash, False, "home node unavailable")
            return
        a = answers[0]
        if a.accepted:
            self.acked[a.tx_hash] = (self.cluster.sched.now_ms, kind, node.name)
            if ci >= 0:
                self.clients[ci].nonce += 1
        self._record(kind, ci, node.name, a.tx_hash, a.accepted, a.reason)

    def _record(self, kind: str, ci: int, node: str, tx_hash: bytes, accepted: bool, reason: str) -> None:
        now = self.cluster.sched.now_ms
        self.submissions.append(Submission(now, ci, kind, node, tx_hash, accepted, reason))
        self.cluster.trace.record(now, node, "submit", kind, tx_hash, accepted)

    # ------------------------------------------------------------ reporting

    def stats(self) -> dict[str, object]:
        by_kind = Counter(s.kind for s in self.submissions)
        acked = Counter(s.kind for s in self.submissions if s.accepted)
        refused = Counter(_reason_class(s.reason) for s in self.submissions if not s.accepted)
        return {
            "submitted": len(self.submissions),
            "acked": len(self.acked),
            "by_kind": {k: {"submitted": by_kind[k], "acked": acked[k]} for k in sorted(by_kind)},
            "refused": dict(sorted(refused.items())),
        }


def gp_proposals(node: SimNode) -> list[gp.Proposal]:
    return queries.proposals(node.disk.state)


def open_proposals(node: SimNode) -> list[int]:
    """Ids of the proposals open for votes on the node's committed state."""
    return [p.id for p in gp_proposals(node) if p.status == gp.Status.VOTING]


def _reason_class(reason: str) -> str:
    """A refusal reason without its numbers, so counts group."""
    return "".join("#" if ch.isdigit() else ch for ch in reason).split("(")[0].strip()
