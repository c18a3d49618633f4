"""A `NodeAPI` over a real chain: one validator in the deterministic simulator.

`SimNodeAPI` runs `simulations.cluster.Cluster(1, ...)` — the production replica
(consensus engine, mempool, governance state machine) under virtual time — with a
genesis that has residents, a registrar and an issuer, and serves its blocks,
commits, state and tx results through the API contract. Nothing is mocked: every
block, signature, Merkle root and query answer comes from the protocol code.

Time only moves when asked: `advance(ms)` runs the simulation forward (and
publishes block and tx events to subscribers, through the node's own `EventHub`);
`submit_tx(..., wait_commit=True)` runs it forward until the tx is committed or
`timeout_s` of virtual time has passed. `populate()` commits one of every kind of
record the query endpoints serve.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import trio

from node.api.contract import NodeEvent, TxStatus
from node.events import EventHub
from node.metrics import Metrics
from protocol import crypto
from protocol.governance import Genesis, queries
from protocol.governance.accounts import Transfer
from protocol.governance.actions import ActionType, EnactLaw
from protocol.governance.credentials import IssueCredential
from protocol.governance.identity import RegisterIdentity, derive_id, key_digest
from protocol.governance.notary import Notarise
from protocol.governance.proposals import CastVote, Choice, Status, SubmitProposal
from protocol.governance.unions import CreateUnion, UnionKind
from protocol.governance.validator_set import validators_for
from protocol.kv import KVReader
from protocol.replica import CommitBlock, TxAdmitted
from protocol.types import Block, Commit, Tx
from protocol.wire import Struct
from simulations.cluster import Cluster, SimNode

CHAIN = "api-test"
T0 = 1_700_000_000_000
BALANCE = 1_000_000
TRACKS = ["constitutional", "law", "parameter", "treasury", "registrar", "issuer", "validator", "ruling"]
NODE_ID = "12D3KooWApiFixtureNode1111111111111111111111111111"
DOC = crypto.sha256(b"the deed to the village well")
TERMS = crypto.sha256(b"marriage terms")
CLAIMS = crypto.sha256(b"bachelor of arts")


def _key(tag: str) -> crypto.Keypair:
    return crypto.Keypair(crypto.sha256(b"api-fixture/" + tag.encode()))


@dataclass(frozen=True)
class Person:
    key: crypto.Keypair
    next_key: crypto.Keypair

    @property
    def pub(self) -> bytes:
        return self.key.public_key

    @property
    def address(self) -> bytes:
        return crypto.address(self.pub)

    @property
    def id(self) -> bytes:
        return derive_id(self.pub, key_digest(self.next_key.public_key))


PEOPLE = [Person(_key(f"p{i}"), _key(f"p{i}-next")) for i in range(4)]  # residents; 0 registrar, 1 issuer
OUTSIDER = Person(_key("outsider"), _key("outsider-next"))  # funded, no identity at genesis


def genesis(validator: bytes) -> Genesis:
    doc = {
        "chain_id": CHAIN,
        "genesis_time_ms": T0,
        "validators": [{"pubkey": validator.hex(), "power": 10}],
        "accounts": [{"pubkey": p.pub.hex(), "balance": BALANCE} for p in [*PEOPLE, OUTSIDER]],
        "treasury": 10_000_000,
        "identities": [
            {"pubkey": p.pub.hex(), "next_key_digest": key_digest(p.next_key.public_key).hex(), "resident": True}
            for p in PEOPLE
        ],
        "registrars": [PEOPLE[0].pub.hex()],
        "issuers": [{"pubkey": PEOPLE[1].pub.hex(), "name": "Open University"}],
        "constitution": [
            {"number": 1, "text": "Membership is voluntary."},
            {"number": 2, "text": "Every resident has one vote."},
        ],
        "params": {
            "min_notice_period": 3,
            "tracks": {
                t: {"voting_delay": 2, "voting_period": 1000, "timelock": 2, "min_deposit": 100} for t in TRACKS
            },
        },
    }
    return Genesis.from_json(json.dumps(doc))


@dataclass
class Populated:
    """What `populate()` committed (ids the tests query)."""

    transfer: bytes = b""
    notarise: bytes = b""
    failed: bytes = b""  # a tx that executed with a non-zero code
    proposal_id: int = 0
    union_id: int = 0
    credential_id: int = 0
    outsider_identity: bytes = b""


class SimNodeAPI:
    """The `NodeAPI` contract over one simulated validator."""

    def __init__(self, seed: int = 7, *, start: bool = True) -> None:
        self.cluster = Cluster(1, seed=seed, chain_id=CHAIN)
        g = genesis(self.cluster.keys[0].public_key)
        self.cluster.genesis = g
        self.sim = SimNode(self.cluster, "n0", self.cluster.keys[0], g)
        self.cluster.nodes = {"n0": self.sim}
        self.sim.execute = self._execute  # type: ignore[method-assign]  # observe every action, then run it
        self.chain_id = CHAIN
        self.node_id = NODE_ID
        self.hub = EventHub(buffer=256)
        self.metrics = Metrics(CHAIN, version="test")
        self.results: dict[bytes, TxStatus] = {}
        self.rejected: dict[bytes, str] = {}
        self.submitted: dict[bytes, Tx] = {}
        self.admissions: dict[bytes, TxAdmitted] = {}
        self.blocked: set[str] = set()
        self.fail_status = False  # fault injection: status() raises
        self._nonces: dict[bytes, int] = {}
        self.populated = Populated()
        if start:  # a lone validator commits height 1 at once; unstarted, the chain stays at genesis
            self.cluster.start()

    # ------------------------------------------------------------ the simulation

    def _execute(self, a: Any) -> None:
        if isinstance(a, TxAdmitted):
            self.admissions[a.tx_hash] = a
            if a.accepted:
                self.metrics.mempool_admitted()
            else:
                self.metrics.mempool_rejected(a.reason)
        t0 = time.perf_counter()
        SimNode.execute(self.sim, a)
        if isinstance(a, CommitBlock):
            self._committed(a, time.perf_counter() - t0)

    def _committed(self, a: CommitBlock, commit_s: float) -> None:
        block, result = a.block, a.result
        self.metrics.on_commit(block.height, a.commit.round, 0.0, commit_s, len(block.txs),
                               synced=a.synced, time_ms=block.header.time_ms)
        replica = self.sim.replica
        self.metrics.mempool_size(len(replica.mempool) if replica else 0, replica.mempool.size_bytes if replica else 0)
        self.hub.publish(NodeEvent("block", {
            "height": block.height, "hash": block.hash.hex(), "time_ms": block.header.time_ms,
            "txs": len(block.txs), "app_hash": result.app_hash.hex(),
        }))
        for i, (tx, r) in enumerate(zip(block.txs, result.tx_results, strict=True)):
            self.results[tx.hash] = TxStatus(tx.hash, "committed", height=block.height, index=i, code=r.code,
                                             info=r.info)
            self.hub.publish(NodeEvent("tx", {"hash": tx.hash.hex(), "height": block.height, "index": i,
                                              "code": r.code, "info": r.info}))

    def advance(self, ms: int) -> None:
        self.cluster.run_until(self.cluster.sched.now_ms + ms)

    def advance_to_height(self, height: int) -> None:
        while self.latest_height() < height:
            self.advance(100)

    def run_until_committed(self, hashes: Sequence[bytes], limit_ms: int = 10_000) -> None:
        end = self.cluster.sched.now_ms + limit_ms
        while not all(h in self.results for h in hashes):
            if self.cluster.sched.now_ms >= end:
                raise AssertionError("txs not committed in time")
            self.advance(100)

    # ------------------------------------------------------------ making txs

    def next_nonce(self, key: crypto.Keypair) -> int:
        pk = key.public_key
        n = self._nonces.get(pk, queries.account_nonce(self.state(), pk))
        self._nonces[pk] = n + 1
        return n

    def make_tx(self, key: crypto.Keypair, kind: str, body: Struct, cosigners: tuple[crypto.Keypair, ...] = (),
                nonce: int | None = None) -> Tx:
        n = self.next_nonce(key) if nonce is None else nonce
        return Tx.create(key, CHAIN, n, kind, body.encode(), cosigners)

    def feed(self, *txs: Tx) -> list[bytes]:
        """Submit directly (as gossip from a client would reach the mempool)."""
        for tx in txs:
            self.submitted[tx.hash] = tx
        self.sim.submit(list(txs))
        for tx in txs:
            adm = self.admissions.get(tx.hash)
            assert adm is not None and adm.accepted, f"{tx.kind} refused: {adm.reason if adm else '?'}"
        return [tx.hash for tx in txs]

    def populate(self) -> Populated:
        """Commit one of everything: a transfer, a notarisation (in a block with
        several txs, for a non-trivial Merkle proof), a new identity, a marriage, a
        credential, a failing transfer, and a proposal in its voting period with votes."""
        p0, p1, p2, p3 = PEOPLE
        pop = self.populated
        first = [
            self.make_tx(p0.key, "transfer", Transfer(OUTSIDER.address, 1_000, "welcome")),
            self.make_tx(p2.key, "notary.notarise", Notarise(DOC, "deed")),
            self.make_tx(OUTSIDER.key, "identity.register", RegisterIdentity(key_digest(OUTSIDER.next_key.public_key))),
            self.make_tx(p2.key, "union.create", CreateUnion(UnionKind.MARRIAGE, "P2 & P3", TERMS, 10),
                         cosigners=(p3.key,)),
            self.make_tx(p1.key, "credential.issue", IssueCredential(p2.id, "degree/v1", CLAIMS, None)),
            self.make_tx(p3.key, "proposal.submit",
                         SubmitProposal("Plant trees", "Every village plants ten trees.", 100, ActionType.ENACT_LAW,
                                        EnactLaw("Plant ten trees per village.").encode())),
            # both fit p1's committed balance, so both are admitted; the second fails at
            # execution: the first spent the tokens
            self.make_tx(p1.key, "transfer", Transfer(p0.address, BALANCE // 2 + 1, "most of it")),
            self.make_tx(p1.key, "transfer", Transfer(OUTSIDER.address, BALANCE // 2 + 1, "too much")),
        ]
        hashes = self.feed(*first)
        self.run_until_committed(hashes)
        pop.transfer, pop.notarise, pop.failed = hashes[0], hashes[1], hashes[7]
        pop.outsider_identity = OUTSIDER.id
        state = self.state()
        pop.proposal_id = max(p.id for p in queries.proposals(state))
        pop.union_id = queries.unions_of(state, p2.id)[0].id
        pop.credential_id = queries.credentials_of(state, p2.id)[0].credential.id
        view = queries.proposal(state, pop.proposal_id)
        assert view is not None
        self.advance_to_height(view.proposal.voting_start + 1)
        assert queries.proposal(self.state(), pop.proposal_id).proposal.status == Status.VOTING  # type: ignore[union-attr]
        ballots = [(p0, Choice.YES), (p1, Choice.NO), (p2, Choice.YES)]
        self.run_until_committed(
            self.feed(*(self.make_tx(p.key, "proposal.vote", CastVote(pop.proposal_id, c)) for p, c in ballots))
        )
        return pop

    # ------------------------------------------------------------ NodeAPI

    def status(self) -> dict[str, Any]:
        if self.fail_status:
            raise RuntimeError("injected fault in status()")
        head = self.sim.disk.blocks.get(self.latest_height())
        replica = self.sim.replica
        engine = replica.engine if replica is not None else None
        return {
            "chain_id": CHAIN,
            "node_id": NODE_ID,
            "moniker": "sim",
            "height": self.latest_height(),
            "latest_block_hash": (head[0].hash if head else bytes(32)).hex(),
            "latest_block_time_ms": head[0].header.time_ms if head else T0,
            "app_hash": (self.state().get(b"m/app_hash") or bytes(32)).hex(),
            "syncing": replica is None or replica.syncing,
            "peers": 0,
            "validator": crypto.address(self.cluster.keys[0].public_key).hex(),
            "round": engine.state.round if engine is not None else None,
            "step": engine.state.step.name.lower() if engine is not None else None,
            "mempool_size": len(replica.mempool) if replica is not None else 0,
        }

    def block(self, height: int) -> tuple[Block, Commit] | None:
        return self.sim.disk.blocks.get(height)

    def latest_height(self) -> int:
        return self.sim.disk.height

    def tx(self, tx_hash: bytes) -> tuple[TxStatus, Tx | None]:
        st = self.results.get(tx_hash)
        if st is not None:
            assert st.height is not None and st.index is not None
            return st, self.sim.disk.blocks[st.height][0].txs[st.index]
        replica = self.sim.replica
        if replica is not None and tx_hash in replica.mempool:
            return TxStatus(tx_hash, "pending"), self.submitted.get(tx_hash)
        if tx_hash in self.rejected:
            return TxStatus(tx_hash, "rejected", self.rejected[tx_hash]), None
        return TxStatus(tx_hash, "unknown"), None

    async def submit_tx(self, tx: Tx, *, wait_commit: bool, timeout_s: float) -> TxStatus:
        h = tx.hash
        self.admissions.pop(h, None)
        self.submitted[h] = tx
        self.sim.submit([tx])
        adm = self.admissions.pop(h, None)
        if adm is None or not adm.accepted:
            known, _ = self.tx(h)
            if known.status == "committed":
                return known
            reason = adm.reason if adm is not None else "not admitted"
            self.rejected[h] = reason
            return TxStatus(h, "rejected", reason)
        if not wait_commit:
            return TxStatus(h, "pending")
        end = self.cluster.sched.now_ms + int(timeout_s * 1000)  # virtual time stands in for wall time
        while h not in self.results and self.cluster.sched.now_ms < end:
            self.advance(min(100, end - self.cluster.sched.now_ms))
            await trio.sleep(0)
        return self.results.get(h) or TxStatus(h, "pending")

    async def submit_txs(self, txs: list[Tx]) -> list[TxStatus]:
        out = []
        for tx in txs:
            h = tx.hash
            self.admissions.pop(h, None)
            self.submitted[h] = tx
            self.sim.submit([tx])
            adm = self.admissions.pop(h, None)
            out.append(TxStatus(h, "pending") if adm is not None and adm.accepted
                       else TxStatus(h, "rejected", adm.reason if adm else "not admitted"))
        return out

    def state(self) -> KVReader:
        return self.sim.disk.state

    def validators(self, height: int | None = None) -> list[tuple[bytes, int]]:
        vs = validators_for(self.state(), height if height is not None else self.latest_height() + 1)
        return [(v.pubkey, v.power) for v in vs.validators]

    def peers(self) -> list[str]:
        return []

    def subscribe(self, kinds: Collection[str]) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[NodeEvent]]:
        return self.hub.subscribe(kinds)

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    async def admin_block_peer(self, peer_id: str) -> None:
        if not peer_id.startswith(("12D3KooW", "Qm")):
            raise ValueError(f"not a peer id: {peer_id!r}")
        self.blocked.add(peer_id)

    async def admin_unblock_peer(self, peer_id: str) -> None:
        if not peer_id.startswith(("12D3KooW", "Qm")):
            raise ValueError(f"not a peer id: {peer_id!r}")
        self.blocked.discard(peer_id)



# ---------------------------------------------------------------- serving it

MAX_BODY = 64 * 1024


async def start_api(nursery: trio.Nursery, node: Any, **options: Any) -> str:
    """Serve `node` on 127.0.0.1, a free port; returns the bound "host:port"."""
    from functools import partial

    from node.api.server import serve_api

    kw: dict[str, Any] = {"max_body_bytes": MAX_BODY, "max_connections": 16, "admin_enabled": True, **options}
    return await nursery.start(partial(serve_api, node, "127.0.0.1:0", **kw))  # type: ignore[no-any-return]


@contextmanager
def serve_in_thread(node: Any, **options: Any) -> Iterator[str]:
    """Serve `node` from a trio loop in a thread of its own, for synchronous tests
    (Hypothesis drives those: one server for every example). Yields "host:port"."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["token"] = trio.lowlevel.current_trio_token()
        box["stop"] = stop = trio.Event()
        async with trio.open_nursery() as nursery:
            box["address"] = await start_api(nursery, node, **options)
            ready.set()
            await stop.wait()
            nursery.cancel_scope.cancel()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="api-server", daemon=True)
    thread.start()
    if not ready.wait(10) or "error" in box:
        raise RuntimeError(f"the API server did not start: {box.get('error')!r}")
    try:
        yield box["address"]
    finally:
        trio.from_thread.run_sync(box["stop"].set, trio_token=box["token"])
        thread.join(10)
