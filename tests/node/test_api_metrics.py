"""node.metrics.Metrics (own registry, bounded labels, exposition) and its serving
at GET /metrics; docs/api.md names every route and every metric."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import trio
from api_fixture import CHAIN, OUTSIDER, PEOPLE, SimNodeAPI, start_api
from prometheus_client.parser import text_string_to_metric_families

from node.api.app import create_app
from node.api.server import serve_metrics
from node.metrics import MEMPOOL_REASONS, Metrics, rejection_code
from protocol import crypto
from protocol.governance.accounts import Transfer
from protocol.types import Tx

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def families(text: bytes | str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text.decode() if isinstance(text, bytes) else text)}


def sample(text: bytes, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise KeyError(f"{name} {labels}")


def test_each_metrics_has_its_own_registry():
    a, b = Metrics("a"), Metrics("b")
    a.on_commit(5, 0, 0.01, 0.002, 3)
    assert sample(a.render(), "ekklesia_consensus_height") == 5
    assert sample(b.render(), "ekklesia_consensus_height") == 0
    assert sample(a.render(), "ekklesia_txs_committed_total") == 3
    assert sample(b.render(), "ekklesia_node_info", chain_id="b") == 1


def test_update_methods_move_their_metrics():
    m = Metrics(CHAIN)
    m.on_new_round(7, 2)
    m.on_step("propose", 0.3)
    m.on_step("prevote", -1.0)  # clock oddities count as 0, never raise
    m.on_proposal(0.02)
    m.on_vote("prevote", 0.01)
    m.late_vote("precommit")
    m.duplicate_vote("prevote")
    m.on_commit(7, 2, 0.004, 0.001, 10, time_ms=1_000)
    m.on_commit(8, 0, 0.004, 0.001, 0, synced=True, time_ms=3_500)
    m.gossip_in("consensus", 300)
    m.gossip_out("txs", 1_000, n_messages=4)
    m.mempool_size(12, 4096)
    m.mempool_admitted(2)
    m.mempool_rejected("duplicate transaction")
    m.set_peers(3)
    m.set_syncing(True)
    m.set_sync_target(100)
    out = m.render()
    assert sample(out, "ekklesia_consensus_round") == 2
    assert sample(out, "ekklesia_consensus_height") == 8
    assert sample(out, "ekklesia_consensus_rounds_per_height_bucket", le="1.0") == 1
    assert sample(out, "ekklesia_consensus_rounds_per_height_bucket", le="3.0") == 2
    assert sample(out, "ekklesia_consensus_step_duration_seconds_count", step="propose") == 1
    assert sample(out, "ekklesia_consensus_step_duration_seconds_sum", step="prevote") == 0
    assert sample(out, "ekklesia_consensus_late_votes_total", type="precommit") == 1
    assert sample(out, "ekklesia_consensus_duplicate_votes_total", type="prevote") == 1
    assert sample(out, "ekklesia_blocks_committed_total", source="sync") == 1
    assert sample(out, "ekklesia_sync_blocks_total") == 1
    assert sample(out, "ekklesia_block_interval_seconds_sum") == 2.5
    assert sample(out, "ekklesia_gossip_bytes_total", topic="txs", direction="out") == 1_000
    assert sample(out, "ekklesia_gossip_messages_total", topic="txs", direction="out") == 4
    assert sample(out, "ekklesia_gossip_messages_total", topic="consensus", direction="in") == 1
    assert sample(out, "ekklesia_mempool_size") == 12 and sample(out, "ekklesia_mempool_bytes") == 4096
    assert sample(out, "ekklesia_mempool_rejected_total", reason="duplicate") == 1
    assert sample(out, "ekklesia_peers") == 3 and sample(out, "ekklesia_sync_syncing") == 1
    assert sample(out, "ekklesia_sync_target_height") == 100


def test_label_values_stay_in_their_sets():
    m = Metrics()
    before = len(list(text_string_to_metric_families(m.render().decode())))
    series = sum(len(f.samples) for f in text_string_to_metric_families(m.render().decode()))
    for i in range(200):
        m.gossip_in(f"topic-{i}", 10)
        m.on_step(f"step-{i}", 0.1)
        m.late_vote(f"vote-{i}")
        m.mempool_rejected(f"a reason nobody anticipated #{i}")
    out = m.render()
    assert len(list(text_string_to_metric_families(out.decode()))) == before
    assert sum(len(f.samples) for f in text_string_to_metric_families(out.decode())) <= series + 30
    assert sample(out, "ekklesia_gossip_messages_total", topic="other", direction="in") == 200
    assert sample(out, "ekklesia_mempool_rejected_total", reason="other") == 200


def test_real_mempool_refusals_get_their_reason_label():
    node = SimNodeAPI()
    key = PEOPLE[0].key
    body = Transfer(OUTSIDER.address, 1, "").encode()
    ok = Tx.create(key, CHAIN, 0, "transfer", body)
    bad_sig = Tx(ok.chain_id, ok.sender, ok.nonce, ok.kind, ok.body, (), bytes(64))
    cases = {
        "bad_nonce": Tx.create(key, CHAIN, 5, "transfer", body),
        "wrong_chain": Tx.create(key, "other-chain", 0, "transfer", body),
        "bad_signature": bad_sig,
        "unknown_kind": Tx.create(key, CHAIN, 0, "no.such.kind", body),
        "bad_body": Tx.create(key, CHAIN, 0, "transfer", b"\x90"),
        "insufficient_funds": Tx.create(crypto.Keypair(bytes([99]) * 32), CHAIN, 0, "transfer", body),
    }
    for expected, tx in cases.items():
        node.sim.submit([tx])
        reason = node.admissions[tx.hash].reason
        assert not node.admissions[tx.hash].accepted
        assert rejection_code(reason) == expected, reason
    node.sim.submit([ok])
    node.sim.submit([ok])
    assert rejection_code(node.admissions[ok.hash].reason) == "duplicate"
    out = node.metrics_text()
    for reason in [*cases, "duplicate"]:
        assert sample(out, "ekklesia_mempool_rejected_total", reason=reason) == 1
    assert sample(out, "ekklesia_mempool_admitted_total") == 1
    assert set(MEMPOOL_REASONS) >= {rejection_code(r) for r in ("node is syncing; submit elsewhere",
                                                                 "mempool is full; retry later",
                                                                 "sender already has 256 pending transactions")}


async def test_metrics_endpoint_serves_the_node_registry(nursery):
    node = SimNodeAPI()
    node.populate()
    address = await start_api(nursery, node)
    async with httpx.AsyncClient(base_url=f"http://{address}") as client:
        r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = families(r.text)
    assert "ekklesia_consensus_height" in fams and "ekklesia_gossip_bytes" in fams
    assert sample(r.content, "ekklesia_consensus_height") == node.latest_height()
    assert sample(r.content, "ekklesia_txs_committed_total") == 11  # 8 txs, then 3 votes
    assert sample(r.content, "ekklesia_blocks_committed_total", source="consensus") == node.latest_height()


async def test_metrics_can_have_a_listener_of_their_own(nursery):
    node = SimNodeAPI()
    address = await nursery.start(lambda task_status: serve_metrics(node, "127.0.0.1:0", task_status=task_status))
    async with httpx.AsyncClient(base_url=f"http://{address}") as client:
        assert "ekklesia_peers" in families((await client.get("/metrics")).text)
        r = await client.get("/v1/status")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    no_metrics = await start_api(nursery, node, serve_metrics=False)
    async with httpx.AsyncClient(base_url=f"http://{no_metrics}") as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_serve_api_rejects_bad_listen_addresses():
    from node.api.server import serve_api

    for listen in ("nonsense", "127.0.0.1:99999", "::1:80"):
        with pytest.raises(ValueError):
            await serve_api(SimNodeAPI(), listen, max_body_bytes=1024, max_connections=1, admin_enabled=False)
    with trio.fail_after(5), pytest.raises(ValueError):
        await serve_api(SimNodeAPI(), "127.0.0.1:0", max_body_bytes=1024, max_connections=0, admin_enabled=False)


def test_docs_name_every_route_and_metric():
    text = DOCS.read_text()
    app = create_app(SimNodeAPI(), max_body_bytes=1024, admin_enabled=True)
    paths = [r.path for r in app.routes]  # type: ignore[attr-defined]
    missing = [p for p in paths if f"`{p}`" not in text and f" {p}" not in text]
    assert not missing, f"docs/api.md lacks {missing}"
    names = sorted(n for n in families(Metrics().render()) if not n.endswith("_created"))
    undocumented = [n for n in names if not re.search(rf"`{re.escape(n)}(_total|_bucket)?`", text)]
    assert not undocumented, f"docs/api.md lacks metrics {undocumented}"


def test_the_network_counters_are_exported_at_scrape_time():
    m = Metrics(CHAIN)
    assert sample(m.render(), "ekklesia_p2p_events_total", event="gossip_send_dropped") == 0  # no network yet
    counters = {"gossip_send_dropped": 46, "dial_failures": 2, "rr_requests": 9}
    m.p2p_source(lambda: counters)
    out = m.render()
    assert sample(out, "ekklesia_p2p_events_total", event="gossip_send_dropped") == 46
    assert sample(out, "ekklesia_p2p_events_total", event="dial_failures") == 2
    assert sample(out, "ekklesia_p2p_events_total", event="peers_banned") == 0
    counters["gossip_send_dropped"] = 50  # read when scraped, not copied once
    assert sample(m.render(), "ekklesia_p2p_events_total", event="gossip_send_dropped") == 50
    with pytest.raises(KeyError):
        sample(out, "ekklesia_p2p_events_total", event="rr_requests")  # a fixed set of labels only
