"""Prometheus metrics of one node, in a registry of its own.

Every node owns a `Metrics` with its own `CollectorRegistry` (never the process-wide
default one), so several nodes in one process — a test, the in-process testnet —
keep separate numbers. The runtime calls the `on_*`/`*_in`/`*_out`/`set_*` methods
as things happen; `render()` is the text exposition served at `GET /metrics`.

Label values come from small fixed sets: a value outside its set is reported as
"other", so no caller can grow the number of series (no peer ids, no free text,
no heights in labels). `docs/api.md` lists every metric.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

STEPS = ("propose", "prevote", "precommit", "commit")
VOTE_TYPES = ("prevote", "precommit")
TOPICS = ("txs", "consensus")
DIRECTIONS = ("in", "out")
BLOCK_SOURCES = ("consensus", "sync")
# The network layer's own counters (node.p2p.Network.stats), as `event` labels: most are
# losses py-libp2p would otherwise keep silent.
P2P_EVENTS = (
    "gossip_send_dropped",  # an outbound RPC dropped: py-libp2p's 32-slot peer queue was full
    "gossip_dropped",  # an inbound message dropped: our incoming channel was full
    "gossip_published_alone",  # published with no peer on the topic: reached nobody
    "gossip_rejected",
    "gossip_ignored",
    "gossip_rate_limited",
    "gossip_duplicates",  # copies of a message already validated, dropped unread by py-libp2p
    "gossip_validator_errors",
    "dials",
    "dial_failures",
    "connections_refused",
    "peers_banned",
    "handler_errors",
)
MEMPOOL_REASONS = (
    "syncing",
    "busy",
    "duplicate",
    "full",
    "sender_limit",
    "bad_nonce",
    "wrong_chain",
    "bad_signature",
    "key_retired",
    "fee_unpaid",
    "insufficient_funds",
    "not_permitted",
    "would_fail",
    "unknown_kind",
    "bad_body",
    "too_large",
    "other",
)
OTHER = "other"

# Seconds. Consensus steps run from milliseconds (a lone validator) to the timeouts
# of late rounds; block work from microseconds (empty block) to seconds.
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_WORK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_ROUND_BUCKETS = (1, 2, 3, 4, 5, 8, 16, 32)
_TX_BUCKETS = (0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000)
_INTERVAL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300)

# Mempool and check_tx refusals are free text (they are shown to the submitter);
# these patterns map them onto MEMPOOL_REASONS. First match wins; no match: "other".
_REASON_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), code)
    for p, code in (
        # check_tx's refusals from a kind's own check (protocol.governance.app._refusal):
        # anchored prefixes, first, as the rest of such a reason is free text.
        (r"^insufficient funds: ", "insufficient_funds"),
        (r"^not permitted: ", "not_permitted"),
        (r"^would fail: ", "would_fail"),
        (r"\bsyncing\b", "syncing"),
        (r"^duplicate transaction", "duplicate"),
        (r"mempool is full", "full"),
        (r"\bpending transactions\b", "sender_limit"),
        (r"\bnonce\b", "bad_nonce"),
        (r"^tx is for chain\b", "wrong_chain"),
        (r"signature does not verify", "bad_signature"),
        (r"\brotated out\b", "key_retired"),
        (r"^the fee is\b", "fee_unpaid"),
        (r"^unknown tx kind\b", "unknown_kind"),
        (r"^bad \S+ body: |takes no co-signatures", "bad_body"),
        (r"\btoo large\b|\bexceeds\b.*\b(limit|bytes)\b", "too_large"),
    )
)


def rejection_code(reason: str) -> str:
    """The bounded label for a mempool refusal: `reason` may already be one of
    MEMPOOL_REASONS, or the free-text reason the mempool / check_tx gave."""
    if reason in MEMPOOL_REASONS:
        return reason
    text = reason.lower()
    for pattern, code in _REASON_PATTERNS:
        if pattern.search(text):
            return code
    return OTHER


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


class Metrics:
    """One node's metrics. All methods are cheap and never raise on odd input
    (negative durations count as 0, unknown label values as "other")."""

    def __init__(self, chain_id: str = "", *, version: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._info = Gauge("ekklesia_node_info", "Constant 1, labelled with the node's chain id and version.",
                           ["chain_id", "version"], registry=r)
        self._info.labels(chain_id=chain_id, version=version).set(1)

        # ---------------------------------------------------------- consensus
        self.height = Gauge("ekklesia_consensus_height", "Last committed block height.", registry=r)
        self.round = Gauge("ekklesia_consensus_round", "Round the engine is in at the current height.", registry=r)
        self.rounds_per_height = Histogram(
            "ekklesia_consensus_rounds_per_height",
            "Rounds a height took to commit (1 = decided in round 0).",
            buckets=_ROUND_BUCKETS, registry=r,
        )
        self.step_duration = Histogram(
            "ekklesia_consensus_step_duration_seconds",
            "Time spent in each consensus step, observed when the step ends.",
            ["step"], buckets=_STEP_BUCKETS, registry=r,
        )
        self.proposal_delay = Histogram(
            "ekklesia_consensus_proposal_delay_seconds",
            "Delay from the start of a round to the arrival of its proposal.",
            buckets=_DELAY_BUCKETS, registry=r,
        )
        self.vote_delay = Histogram(
            "ekklesia_consensus_vote_delay_seconds",
            "Delay from the start of a round to the arrival of each vote of that round.",
            ["type"], buckets=_DELAY_BUCKETS, registry=r,
        )
        self.late_votes = Counter(
            "ekklesia_consensus_late_votes",
            "Votes that arrived for a height or round the engine had already left.",
            ["type"], registry=r,
        )
        self.duplicate_votes = Counter(
            "ekklesia_consensus_duplicate_votes",
            "Votes received again (same validator, height, round, type and block).",
            ["type"], registry=r,
        )
        # Counted by the replica; read when scraped (`compact_waits.source`).
        self.compact_waits = _ReadCounter(
            "ekklesia_consensus_compact_waits",
            "Proposals that arrived naming transactions this node did not hold yet (they wait for them).",
        )
        r.register(self.compact_waits)
        self.block_requests = Counter(
            "ekklesia_consensus_block_requests",
            "Proposals or blocks this node asked its peers for whole (its gossip did not bring them).",
            registry=r,
        )
        self.blocks = Counter(
            "ekklesia_blocks_committed", "Blocks committed, by how they were decided.", ["source"], registry=r
        )
        self.txs_committed = Counter("ekklesia_txs_committed", "Transactions in committed blocks.", registry=r)
        self.block_txs = Histogram(
            "ekklesia_block_txs", "Transactions per committed block.", buckets=_TX_BUCKETS, registry=r
        )
        self.block_execution = Histogram(
            "ekklesia_block_execution_seconds",
            "Time to execute a decided block against the state (apply_block).",
            buckets=_WORK_BUCKETS, registry=r,
        )
        self.block_commit = Histogram(
            "ekklesia_block_commit_seconds",
            "Time to store a committed block, its results and state changes atomically.",
            buckets=_WORK_BUCKETS, registry=r,
        )
        self.block_interval = Histogram(
            "ekklesia_block_interval_seconds",
            "Difference of consecutive committed blocks' header times.",
            buckets=_INTERVAL_BUCKETS, registry=r,
        )
        self._last_block_time_ms: int | None = None

        # ---------------------------------------------------------- gossip
        self.gossip_messages = Counter(
            "ekklesia_gossip_messages", "Gossip messages by topic and direction.", ["topic", "direction"], registry=r
        )
        self.gossip_bytes = Counter(
            "ekklesia_gossip_bytes", "Gossip payload bytes by topic and direction.", ["topic", "direction"], registry=r
        )

        # ---------------------------------------------------------- mempool
        self.mempool_txs = Gauge("ekklesia_mempool_size", "Transactions waiting in the mempool.", registry=r)
        self.mempool_bytes = Gauge("ekklesia_mempool_bytes", "Encoded bytes of the mempool's transactions.",
                                   registry=r)
        self.mempool_admitted_total = Counter(
            "ekklesia_mempool_admitted", "Transactions admitted to the mempool.", registry=r
        )
        self.mempool_rejections = Counter(
            "ekklesia_mempool_rejected", "Transactions refused by the mempool, by reason.", ["reason"], registry=r
        )

        # ---------------------------------------------------------- network, sync
        self.peers = Gauge("ekklesia_peers", "Connected peers.", registry=r)
        self.syncing = Gauge("ekklesia_sync_syncing", "1 while the node is catching up by block sync.", registry=r)
        self.sync_target = Gauge(
            "ekklesia_sync_target_height", "Highest height a peer reported (what sync catches up to).", registry=r
        )
        self.synced_blocks = Counter("ekklesia_sync_blocks", "Blocks applied through block sync.", registry=r)
        self._p2p = _ReadCounter(
            "ekklesia_p2p_events", "Network events by kind (losses, refusals, dials), from the p2p layer.",
            label="event", keys=P2P_EVENTS,
        )
        r.register(self._p2p)

        # Every series exists from the start (at zero): rate() needs the first sample.
        for step in STEPS:
            self.step_duration.labels(step=step)
        for vt in VOTE_TYPES:
            self.vote_delay.labels(type=vt)
            self.late_votes.labels(type=vt)
            self.duplicate_votes.labels(type=vt)
        for src in BLOCK_SOURCES:
            self.blocks.labels(source=src)
        for topic in (*TOPICS, OTHER):
            for d in DIRECTIONS:
                self.gossip_messages.labels(topic=topic, direction=d)
                self.gossip_bytes.labels(topic=topic, direction=d)
        for reason in MEMPOOL_REASONS:
            self.mempool_rejections.labels(reason=reason)

    # ------------------------------------------------------------ consensus

    def on_new_round(self, height: int, round: int) -> None:
        """The engine entered (height, round)."""
        self.round.set(max(round, 0))

    def on_step(self, step: str, duration_s: float) -> None:
        """A step ended after `duration_s` ("propose", "prevote", "precommit", "commit")."""
        self.step_duration.labels(step=_bounded(step, STEPS)).observe(max(duration_s, 0.0))

    def on_proposal(self, delay_s: float) -> None:
        """A proposal for the current round arrived `delay_s` after the round started."""
        self.proposal_delay.observe(max(delay_s, 0.0))

    def on_vote(self, vote_type: str, delay_s: float) -> None:
        """A vote for the current round arrived `delay_s` after the round started."""
        self.vote_delay.labels(type=_bounded(vote_type, VOTE_TYPES)).observe(max(delay_s, 0.0))

    def late_vote(self, vote_type: str) -> None:
        self.late_votes.labels(type=_bounded(vote_type, VOTE_TYPES)).inc()

    def duplicate_vote(self, vote_type: str) -> None:
        self.duplicate_votes.labels(type=_bounded(vote_type, VOTE_TYPES)).inc()

    def on_commit(
        self,
        height: int,
        round: int,
        exec_s: float,
        commit_s: float,
        n_txs: int,
        *,
        synced: bool = False,
        time_ms: int | None = None,
    ) -> None:
        """Block `height`, decided in `round`, was executed in `exec_s` and stored in
        `commit_s`. `synced`: it came from block sync, not from this node's consensus.
        `time_ms`: the header time, for the block interval."""
        self.height.set(height)
        self.rounds_per_height.observe(max(round, 0) + 1)
        self.block_execution.observe(max(exec_s, 0.0))
        self.block_commit.observe(max(commit_s, 0.0))
        self.block_txs.observe(max(n_txs, 0))
        self.txs_committed.inc(max(n_txs, 0))
        self.blocks.labels(source="sync" if synced else "consensus").inc()
        if synced:
            self.synced_blocks.inc()
        if time_ms is not None:
            if self._last_block_time_ms is not None and time_ms >= self._last_block_time_ms:
                self.block_interval.observe((time_ms - self._last_block_time_ms) / 1000)
            self._last_block_time_ms = time_ms

    def set_height(self, height: int) -> None:
        """The stored head at start-up (before any commit)."""
        self.height.set(height)

    # ------------------------------------------------------------ gossip

    def gossip_in(self, topic: str, n_bytes: int, n_messages: int = 1) -> None:
        t = _bounded(topic, TOPICS)
        self.gossip_messages.labels(topic=t, direction="in").inc(max(n_messages, 0))
        self.gossip_bytes.labels(topic=t, direction="in").inc(max(n_bytes, 0))

    def gossip_out(self, topic: str, n_bytes: int, n_messages: int = 1) -> None:
        t = _bounded(topic, TOPICS)
        self.gossip_messages.labels(topic=t, direction="out").inc(max(n_messages, 0))
        self.gossip_bytes.labels(topic=t, direction="out").inc(max(n_bytes, 0))

    # ------------------------------------------------------------ mempool

    def mempool_size(self, n_txs: int, n_bytes: int | None = None) -> None:
        self.mempool_txs.set(max(n_txs, 0))
        if n_bytes is not None:
            self.mempool_bytes.set(max(n_bytes, 0))

    def mempool_admitted(self, n: int = 1) -> None:
        self.mempool_admitted_total.inc(max(n, 0))

    def mempool_rejected(self, reason: str) -> None:
        """`reason`: one of MEMPOOL_REASONS, or the mempool's free-text reason
        (classified by `rejection_code`)."""
        self.mempool_rejections.labels(reason=rejection_code(reason)).inc()

    # ------------------------------------------------------------ network, sync

    def set_peers(self, n: int) -> None:
        self.peers.set(max(n, 0))

    def set_syncing(self, syncing: bool) -> None:
        self.syncing.set(1 if syncing else 0)

    def set_sync_target(self, height: int) -> None:
        self.sync_target.set(max(height, 0))

    def p2p_source(self, stats: Callable[[], Mapping[str, int]]) -> None:
        """Where `ekklesia_p2p_events_total` reads the network's counters (at scrape time)."""
        self._p2p.source = stats

    # ------------------------------------------------------------ exposition

    def render(self) -> bytes:
        """Prometheus text exposition (format 0.0.4) of this node's registry."""
        return generate_latest(self.registry)


class _ReadCounter:
    """A monotonic count kept by another part of the node (the p2p layer, the replica),
    read when scraped rather than mirrored as it changes. `source` returns the values
    by `label` value, one for each of `keys`; an unlabelled counter reads key ""."""

    def __init__(self, name: str, doc: str, *, label: str | None = None, keys: tuple[str, ...] = ("",)) -> None:
        self.name, self.doc, self.label, self.keys = name, doc, label, keys
        self.source: Callable[[], Mapping[str, int]] | None = None

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.doc, labels=[self.label] if self.label else [])
        values = self.source() if self.source is not None else {}
        for key in self.keys:
            family.add_metric([key] if self.label else [], float(values.get(key, 0)))
        yield family
