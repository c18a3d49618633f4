"""What must hold after a run, checked over the honest nodes only.

* Safety: no two different blocks committed at one height, the same app hash after
  every height, and every node's chain links (prev hash, app hash in the next header).
* Validity: every committed block is well formed; every committed tx is for this
  chain and carries signatures that verify; no tx is committed twice.
* Liveness: after the last fault event (or `liveness.after_s`), every honest node
  that is up commits at least `heights` new heights within `within_s`.
* Accountability: evidence never names an honest validator, and whenever honest
  nodes fork, the duplicate-vote evidence collected (reported by replicas, and
  `conflicting_commit_evidence` over the conflicting commits) names validators
  holding more than 1/3 of the power, i.e. at least f + 1 of n equal validators.
* No acknowledged transaction is lost: every tx an honest node accepted from a
  client is committed by the end, or at least still waits in an honest mempool
  (reported as pending).

Each checker returns a `Verdict`; details are sorted, so reports are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.consensus.forensics import conflicting_commit_evidence
from protocol.types import Commit, DuplicateVoteEvidence
from simulations.cluster import Cluster, SimNode
from simulations.scenario import Scenario
from simulations.workload import Workload

OK, VIOLATED, NOT_CHECKED, NOT_APPLICABLE = "ok", "violated", "not-checked", "not-applicable"
MAX_DETAILS = 20


@dataclass
class Verdict:
    status: str
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.status = VIOLATED
        if len(self.details) < MAX_DETAILS:
            self.details.append(text)


@dataclass
class EvidenceItem:
    validator: str
    kind: str  # "duplicate-vote", "fork-commit", "conflicting-proposal"
    height: int
    round: int
    source: str  # reporting node, or "checker"


@dataclass
class Results:
    safety: Verdict
    forks: list[int]
    validity: Verdict
    liveness: Verdict
    accountability: Verdict
    evidence: list[EvidenceItem]
    lost: Verdict
    lost_txs: list[bytes]
    pending_txs: list[bytes]
    lost_causes: dict[str, int]
    halted: dict[str, str]  # every node whose replica stopped itself

    @property
    def named(self) -> list[str]:
        return sorted({e.validator for e in self.evidence})


def check(cluster: Cluster, scenario: Scenario, workload: Workload | None) -> Results:
    safety, forks = check_safety(cluster)
    evidence = collect_evidence(cluster, forks)
    lost, lost_txs, pending = check_lost(cluster, workload)
    causes: dict[str, int] = {}
    for h in lost_txs:
        assert workload is not None
        cause = lost_cause(cluster, workload, h)
        causes[cause] = causes.get(cause, 0) + 1
    return Results(
        safety=safety,
        forks=forks,
        validity=check_validity(cluster),
        liveness=check_liveness(cluster, scenario),
        accountability=check_accountability(cluster, forks, evidence),
        evidence=evidence,
        lost=lost,
        lost_txs=lost_txs,
        pending_txs=pending,
        lost_causes=dict(sorted(causes.items())),
        halted={name: n.halted for name, n in sorted(cluster.nodes.items()) if n.halted is not None},
    )


def _live(node: SimNode) -> bool:
    return node.replica is not None and not node.paused


# ---------------------------------------------------------------- safety


def check_safety(cluster: Cluster) -> tuple[Verdict, list[int]]:
    v = Verdict(OK)
    honest = {n.name for n in cluster.honest_nodes()}
    forks = []
    for h in sorted(cluster.commits):
        seen = {name: val for name, val in sorted(cluster.commits[h].items()) if name in honest}
        blocks = {b for b, _ in seen.values()}
        if len(blocks) > 1:
            forks.append(h)
            sides = sorted({f"{b.hex()[:12]} by {','.join(n for n, (x, _) in seen.items() if x == b)}" for b in blocks})
            v.note(f"height {h}: conflicting blocks {' / '.join(sides)}")
        elif len({a for _, a in seen.values()}) > 1:
            v.note(f"height {h}: one block, different app hashes ({', '.join(sorted(seen))})")
    for node in cluster.honest_nodes():
        chain = node.disk.blocks
        for h in sorted(chain):
            if h - 1 in chain and chain[h][0].header.prev_hash != chain[h - 1][0].hash:
                v.note(f"{node.name}: block {h} does not extend block {h - 1}")
            after = cluster.commits.get(h - 1, {}).get(node.name)
            if after is not None and chain[h][0].header.app_hash != after[1]:
                v.note(f"{node.name}: block {h} carries an app hash other than the state after {h - 1}")
    return v, forks


# ---------------------------------------------------------------- validity


def check_validity(cluster: Cluster) -> Verdict:
    v = Verdict(OK)
    checked: set[bytes] = set()
    for node in cluster.honest_nodes():
        where: dict[bytes, int] = {}
        for h in sorted(node.disk.blocks):
            block = node.disk.blocks[h][0]
            for tx in block.txs:
                first = where.setdefault(tx.hash, h)
                if first != h:
                    v.note(f"{node.name}: tx {tx.hash.hex()[:12]} committed at heights {first} and {h}")
            if block.hash in checked:
                continue
            checked.add(block.hash)
            problem = block.check_structure()
            if problem is not None:
                v.note(f"block {h} ({block.hash.hex()[:12]}): {problem}")
            for tx in block.txs:
                if tx.chain_id != cluster.chain_id:
                    v.note(f"block {h}: tx {tx.hash.hex()[:12]} is for chain {tx.chain_id!r}")
                elif not tx.verify_signatures(cluster.cache):
                    v.note(f"block {h}: tx {tx.hash.hex()[:12]} has a signature that does not verify")
    return v


# ---------------------------------------------------------------- liveness


def height_at(cluster: Cluster, node: str, t_ms: int) -> int:
    """The node's stored height at virtual time t (commits at t included)."""
    best = 0
    for t, h, _ in cluster.commit_times[node]:
        if t > t_ms:
            break
        best = max(best, h)
    return best


def check_liveness(cluster: Cluster, scenario: Scenario) -> Verdict:
    if scenario.expect.liveness == NOT_CHECKED:
        return Verdict(NOT_CHECKED)
    v = Verdict(OK)
    after = scenario.liveness_after_ms()
    until = after + scenario.liveness.within_ms
    k = scenario.liveness.heights
    live = [n for n in cluster.honest_nodes() if _live(n)]
    if not live:
        v.note("no honest node is up at the end")
    for node in live:
        gained = height_at(cluster, node.name, until) - height_at(cluster, node.name, after)
        if gained < k:
            v.note(f"{node.name}: {gained} new heights in {after / 1000:g}–{until / 1000:g} s, needs {k}")
    for node in live:
        if node.disk.height < scenario.expect.min_height:
            v.note(f"{node.name}: height {node.disk.height} at the end, expected at least {scenario.expect.min_height}")
    return v


# ---------------------------------------------------------------- accountability


def _validator_names(cluster: Cluster) -> dict[bytes, str]:
    return {k.public_key: f"n{i}" for i, k in enumerate(cluster.keys)}


def collect_evidence(cluster: Cluster, forks: list[int]) -> list[EvidenceItem]:
    names = _validator_names(cluster)
    out: list[EvidenceItem] = []

    def add(ev: DuplicateVoteEvidence, kind: str, source: str) -> None:
        out.append(EvidenceItem(names.get(ev.validator, ev.validator.hex()[:12]), kind, ev.height,
                                ev.vote_a.round, source))

    for _, (ev, reporter, _t) in sorted(cluster.evidence.items()):
        add(ev, "duplicate-vote", reporter)
    honest = cluster.honest_nodes()
    for h in forks:
        commits: dict[bytes, Commit] = {}
        for node in honest:
            stored = node.disk.blocks.get(h)
            if stored is not None:
                commits.setdefault(stored[1].block_hash, stored[1])
        sides = [commits[k] for k in sorted(commits)]
        for i, a in enumerate(sides):
            for b in sides[i + 1 :]:
                for ev in conflicting_commit_evidence(a, b):
                    add(ev, "fork-commit", "checker")
    for (h, r, proposer), seen in sorted(cluster.proposals_seen.items()):
        if len(seen) > 1:
            out.append(EvidenceItem(names.get(proposer, proposer.hex()[:12]), "conflicting-proposal", h, r, "checker"))
    out.sort(key=lambda e: (e.validator, e.kind, e.height, e.round, e.source))
    return out


def check_accountability(cluster: Cluster, forks: list[int], evidence: list[EvidenceItem]) -> Verdict:
    v = Verdict(OK if forks else NOT_APPLICABLE)
    honest_validators = {n for n in cluster.powers if n not in cluster.faulty}
    framed = sorted({e.validator for e in evidence if e.validator in honest_validators})
    for name in framed:
        v.note(f"evidence names honest validator {name}")
    if forks:
        votes = {e.validator for e in evidence if e.kind in ("duplicate-vote", "fork-commit")}
        named = sum(cluster.powers.get(n, 0) for n in votes)
        total = sum(cluster.powers.values())
        if 3 * named <= total:
            v.note(
                f"fork at heights {forks} but vote evidence names {sorted(votes) or 'nobody'} "
                f"({named} of {total} power, needs more than 1/3)"
            )
    return v


# ---------------------------------------------------------------- lost transactions


def check_lost(cluster: Cluster, workload: Workload | None) -> tuple[Verdict, list[bytes], list[bytes]]:
    """Lost: acknowledged, not committed by any honest node, and in no honest mempool
    any more (so it never will be). Pending: not committed yet, still in a mempool."""
    if workload is None or not workload.acked:
        return Verdict(OK), [], []
    committed: set[bytes] = set()
    for node in cluster.honest_nodes():
        for block, _ in node.disk.blocks.values():
            committed.update(tx.hash for tx in block.txs)
    waiting = sorted(h for h in workload.acked if h not in committed)
    pools = [n.replica.mempool for n in cluster.honest_nodes() if n.replica is not None]
    pending = [h for h in waiting if any(h in pool for pool in pools)]
    lost = [h for h in waiting if h not in set(pending)]
    v = Verdict(OK)
    for h in lost[:MAX_DETAILS]:
        t, kind, holder = workload.acked[h]
        v.note(f"{kind} tx {h.hex()[:12]} acked by {holder} at {t / 1000:g} s is in no block and no mempool "
               f"({lost_cause(cluster, workload, h)})")
    return v, lost, pending


HOLDER_CRASHED = "the acknowledging node crashed before the tx reached a block"


def lost_cause(cluster: Cluster, workload: Workload, tx_hash: bytes) -> str:
    """Why a lost tx is gone, as far as the run shows: a mempool is volatile, so a
    crash of the node that acknowledged it explains it; anything else is unexplained."""
    t, _, node = workload.acked[tx_hash]
    if any(c >= t for c in cluster.nodes[node].crash_times):
        return HOLDER_CRASHED
    return "unexplained"
