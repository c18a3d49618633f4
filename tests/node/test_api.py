"""The HTTP API over a real chain (tests/node/api_fixture.py): hypercorn on
127.0.0.1 (port 0), httpx as the client, every path and shape of docs/api.md."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import trio
from api_fixture import CHAIN, DOC, OUTSIDER, PEOPLE, SimNodeAPI, start_api

from node.api.txbody import tx_to_json_envelope
from protocol import crypto, merkle
from protocol.governance.accounts import Transfer
from protocol.messages import TxBatch
from protocol.types import BlockHeader, Tx

HEX64 = 64


@dataclass
class Api:
    node: SimNodeAPI
    http: httpx.AsyncClient
    address: str


@pytest.fixture
async def api(nursery: trio.Nursery) -> AsyncIterator[Api]:
    node = SimNodeAPI()
    node.populate()
    address = await start_api(nursery, node)
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
        yield Api(node, client, address)


def is_hex(value: object, size: int) -> bool:
    return isinstance(value, str) and len(value) == 2 * size and all(c in "0123456789abcdef" for c in value)


def transfer(api: Api, amount: int = 5, sender: int = 0, nonce: int | None = None) -> Tx:
    return api.node.make_tx(PEOPLE[sender].key, "transfer", Transfer(OUTSIDER.address, amount, "t"), nonce=nonce)


# ---------------------------------------------------------------- server and chain


async def test_server_listens_on_loopback_and_reports_the_real_port(api):
    host, port = api.address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


async def test_status(api):
    r = await api.http.get("/v1/status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    s = r.json()
    for key in ("chain_id", "node_id", "height", "latest_block_hash", "app_hash", "syncing", "peers", "validator"):
        assert key in s
    assert s["chain_id"] == CHAIN and s["height"] == api.node.latest_height() > 0
    assert s["latest_block_hash"] == api.node.block(s["height"])[0].hash.hex()
    assert is_hex(s["validator"], 20) and s["syncing"] is False


async def test_blocks_latest_and_by_height_match_the_chain(api):
    latest = (await api.http.get("/v1/blocks/latest")).json()
    assert latest["height"] == api.node.latest_height()
    pop = api.node.populated
    st, _ = api.node.tx(pop.notarise)
    r = await api.http.get(f"/v1/blocks/{st.height}")
    assert r.status_code == 200
    b = r.json()
    block, commit = api.node.block(st.height)
    assert b["hash"] == block.hash.hex() and b["height"] == st.height
    assert b["time_ms"] == block.header.time_ms and b["time"].endswith("Z") and b["time"].startswith("20")
    assert b["proposer"] == block.header.proposer.hex() and b["app_hash"] == block.header.app_hash.hex()
    assert b["txs"] == [tx.hash.hex() for tx in block.txs] and b["num_txs"] == len(block.txs) >= 7
    assert b["signers"] == [api.node.cluster.keys[0].public_key.hex()]
    assert b["commit"]["block_hash"] == block.hash.hex() and b["commit"]["round"] == commit.round
    assert [s["validator"] for s in b["commit"]["signatures"]] == b["signers"]
    assert b["last_commit"]["height"] == st.height - 1
    assert merkle.root([bytes.fromhex(h) for h in b["txs"]]).hex() == b["tx_root"]
    first = (await api.http.get("/v1/blocks/1")).json()
    assert first["last_commit"] is None and first["prev_hash"] == "00" * 32


@pytest.mark.parametrize("height", ["abc", "-1", "1.5", "0x10", "99999999999999999999999", "1 "])
async def test_malformed_heights_are_400(api, height):
    r = await api.http.get(f"/v1/blocks/{height}")
    assert r.status_code == 400
    assert "error" in r.json()


async def test_missing_block_is_404(api):
    for h in (0, api.node.latest_height() + 1, 2**64 - 1):
        r = await api.http.get(f"/v1/blocks/{h}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_chain_validators_peers_supply_params(api):
    chain = (await api.http.get("/v1/chain")).json()
    assert chain["chain_id"] == CHAIN and is_hex(chain["genesis_hash"], 32) and chain["residents"] == 4
    vals = (await api.http.get("/v1/validators")).json()
    assert vals["validators"] == [{
        "pubkey": api.node.cluster.keys[0].public_key.hex(),
        "address": crypto.address(api.node.cluster.keys[0].public_key).hex(),
        "power": 10,
    }]
    assert vals["total_power"] == 10 and vals["height"] == api.node.latest_height() + 1
    assert (await api.http.get("/v1/validators?height=1")).json()["height"] == 1
    assert (await api.http.get("/v1/validators?height=0")).status_code == 400
    assert (await api.http.get("/v1/peers")).json() == {"count": 0, "peers": []}
    supply = (await api.http.get("/v1/supply")).json()
    assert set(supply) == {"total", "treasury", "escrow", "burned"} and supply["escrow"] == 100  # the deposit
    params = (await api.http.get("/v1/params")).json()
    assert params["tracks"]["law"]["quorum"] == "1/4" and params["tracks"]["law"]["electorate"] == "residents"
    assert params["cancel_burn"] == "1/2" and params["min_notice_period"] == 3


# ---------------------------------------------------------------- transactions


async def test_committed_tx_lookup(api):
    pop = api.node.populated
    r = await api.http.get(f"/v1/txs/{pop.notarise.hex()}")
    assert r.status_code == 200
    t = r.json()
    assert t["status"] == "committed" and t["code"] == 0 and t["code_name"] == "ok" and t["index"] == 1
    assert t["tx"]["kind"] == "notary.notarise"
    assert t["tx"]["body_decoded"] == {"doc_hash": DOC.hex(), "metadata": "deed"}
    assert t["tx"]["sender"] == PEOPLE[2].pub.hex() and t["tx"]["hash"] == pop.notarise.hex()
    failed = (await api.http.get(f"/v1/txs/{pop.failed.hex()}")).json()
    assert failed["status"] == "committed" and failed["code"] == 13 and failed["code_name"] == "insufficient_funds"
    assert "spendable" in failed["info"]


async def test_unknown_and_malformed_tx_hashes(api):
    r = await api.http.get(f"/v1/txs/{'ab' * 32}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for bad in ("zz" * 32, "ab" * 31, "ab" * 33, "abc"):
        r = await api.http.get(f"/v1/txs/{bad}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


async def test_submit_msgpack_then_it_commits(api):
    tx = transfer(api)
    r = await api.http.post("/v1/txs", content=tx.encode(), headers={"content-type": "application/msgpack"})
    assert r.status_code == 202
    assert r.json() == {"hash": tx.hash.hex(), "status": "pending", "reason": "", "height": None, "index": None,
                        "code": None, "code_name": None, "info": ""}
    pending = (await api.http.get(f"/v1/txs/{tx.hash.hex()}")).json()
    assert pending["status"] == "pending"
    api.node.run_until_committed([tx.hash])
    done = (await api.http.get(f"/v1/txs/{tx.hash.hex()}")).json()
    assert done["status"] == "committed" and done["code"] == 0 and done["height"] == api.node.tx(tx.hash)[0].height


async def test_submit_a_batch_reports_each_tx_in_order(api):
    first = transfer(api)
    second = api.node.make_tx(PEOPLE[0].key, "transfer", Transfer(OUTSIDER.address, 1, "t"), nonce=first.nonce + 1)
    gap = api.node.make_tx(PEOPLE[0].key, "transfer", Transfer(OUTSIDER.address, 1, "t"), nonce=first.nonce + 5)
    batch = TxBatch((first, second, gap))
    r = await api.http.post("/v1/txs/batch", content=batch.encode(), headers={"content-type": "application/msgpack"})
    assert r.status_code == 200
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["pending", "pending", "rejected"]
    assert body["accepted"] == 2 and body["rejected"] == 1
    assert body["results"][2]["hash"] == gap.hash.hex() and "nonce" in body["results"][2]["reason"]
    r = await api.http.post("/v1/txs/batch", content=b"\xc1", headers={"content-type": "application/msgpack"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_tx"
    r = await api.http.post("/v1/txs/batch", json={}, headers={})
    assert r.status_code == 415


async def test_a_batch_can_ask_for_the_refused_txs_only(api):
    first = transfer(api)
    gap = api.node.make_tx(PEOPLE[0].key, "transfer", Transfer(OUTSIDER.address, 1, "t"), nonce=first.nonce + 5)
    batch = TxBatch((first, gap))
    r = await api.http.post("/v1/txs/batch?results=refused", content=batch.encode(),
                            headers={"content-type": "application/msgpack"})
    body = r.json()
    assert r.status_code == 200 and body["accepted"] == 1 and body["rejected"] == 1
    assert [(x["position"], x["hash"], x["status"]) for x in body["results"]] == [(1, gap.hash.hex(), "rejected")]
    r = await api.http.post("/v1/txs/batch?results=some", content=batch.encode(),
                            headers={"content-type": "application/msgpack"})
    assert r.status_code == 400


async def test_a_busy_node_answers_429_with_retry_after(api, monkeypatch):
    from node.api.contract import TxStatus

    async def busy_batch(txs):
        return [TxStatus(tx.hash, "rejected", "node busy; retry later", retry=True) for tx in txs]

    async def busy_one(tx, *, wait_commit, timeout_s):
        return TxStatus(tx.hash, "rejected", "node busy; retry later", retry=True)

    monkeypatch.setattr(api.node, "submit_txs", busy_batch)
    monkeypatch.setattr(api.node, "submit_tx", busy_one)
    tx = transfer(api)
    r = await api.http.post("/v1/txs/batch", content=TxBatch((tx,)).encode(),
                            headers={"content-type": "application/msgpack"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "busy"
    r = await api.http.post("/v1/txs", content=tx.encode(), headers={"content-type": "application/msgpack"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["message"] == "node busy; retry later"


async def test_submit_json_envelope_and_wait_for_commit(api):
    tx = transfer(api)
    r = await api.http.post("/v1/txs?wait=commit&timeout=5", json=tx_to_json_envelope(tx))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "committed" and body["hash"] == tx.hash.hex() and body["code"] == 0
    assert body["height"] == api.node.latest_height() and isinstance(body["index"], int)
    block = api.node.block(body["height"])[0]
    assert block.txs[body["index"]].hash == tx.hash


async def test_submit_json_wrapped_bytes_and_an_unpayable_transfer(api):
    broke = crypto.Keypair(crypto.sha256(b"test-api/broke"))  # holds nothing
    tx = api.node.make_tx(broke, "transfer", Transfer(OUTSIDER.address, 1, "t"), nonce=0)
    wrapped = {"tx": base64.b64encode(tx.encode()).decode()}
    r = await api.http.post("/v1/txs?wait=commit", json=wrapped)
    assert r.status_code == 422  # refused at admission (issue #9), not committed as a failure
    body = r.json()
    assert body["status"] == "rejected" and body["hash"] == tx.hash.hex()
    assert body["reason"].startswith("insufficient funds: needs 1 spendable tokens, has 0")


async def test_resubmitting_a_committed_tx_returns_its_result(api):
    pop = api.node.populated
    tx = api.node.tx(pop.transfer)[1]
    r = await api.http.post("/v1/txs", content=tx.encode(), headers={"content-type": "application/msgpack"})
    assert r.status_code == 200 and r.json()["status"] == "committed" and r.json()["hash"] == pop.transfer.hex()


async def test_mempool_refusal_is_422_with_reason(api):
    tx = transfer(api, nonce=10_000)
    r = await api.http.post("/v1/txs?wait=commit", content=tx.encode(), headers={"content-type": "application/msgpack"})
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == "rejected" and "nonce" in body["reason"]
    assert body["error"]["code"] == "tx_rejected" and body["hash"] == tx.hash.hex()
    assert (await api.http.get(f"/v1/txs/{tx.hash.hex()}")).json()["status"] == "rejected"


async def test_wait_timeout_leaves_the_tx_pending(api):
    tx = transfer(api)
    r = await api.http.post("/v1/txs?wait=commit&timeout=0.05", json=tx_to_json_envelope(tx))
    assert r.status_code == 202 and r.json()["status"] == "pending"


@pytest.mark.parametrize("query", ["wait=soon", "wait=commit&timeout=0", "wait=commit&timeout=61",
                                   "wait=commit&timeout=abc", "wait=commit&timeout=-1", "wait=commit&timeout=1e3"])
async def test_bad_wait_parameters_are_400(api, query):
    tx = transfer(api)
    r = await api.http.post(f"/v1/txs?{query}", content=tx.encode(), headers={"content-type": "application/msgpack"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


# ---------------------------------------------------------------- governance queries


async def test_accounts_by_address_and_by_pubkey(api):
    r = await api.http.get(f"/v1/accounts/{OUTSIDER.address.hex()}")
    a = r.json()
    assert r.status_code == 200 and a["address"] == OUTSIDER.address.hex()
    assert a["balance"] == 1_000_000 + 1_000 and a["nonce"] == 1 and a["spendable"] == a["balance"] - a["locked"]
    by_key = (await api.http.get(f"/v1/accounts/{OUTSIDER.pub.hex()}")).json()
    assert by_key == a
    never = (await api.http.get(f"/v1/accounts/{'00' * 20}")).json()
    assert never["balance"] == 0 and never["nonce"] == 0 and never["locks"] == []
    assert (await api.http.get("/v1/accounts/1234")).status_code == 400


async def test_identities(api):
    p0, p1, p2, _ = PEOPLE
    r = await api.http.get(f"/v1/identities/{p2.id.hex()}")
    i = r.json()
    assert r.status_code == 200 and i["id"] == p2.id.hex() and i["key"] == p2.pub.hex()
    assert i["residency"] == "active" and i["registrar"] is None and i["issuer"] is None
    assert i["address"] == p2.address.hex()
    reg = (await api.http.get(f"/v1/identities/{p0.id.hex()}")).json()
    assert reg["registrar"] == {"appointed_height": 0, "proposal_id": None}
    iss = (await api.http.get(f"/v1/identities/by-key/{p1.pub.hex()}")).json()
    assert iss["id"] == p1.id.hex() and iss["issuer"]["name"] == "Open University" and iss["issuer"]["accredited"]
    new = (await api.http.get(f"/v1/identities/{api.node.populated.outsider_identity.hex()}")).json()
    assert new["residency"] == "none" and new["created_height"] >= 1
    assert (await api.http.get(f"/v1/identities/{'11' * 32}")).status_code == 404
    regs = (await api.http.get("/v1/registrars")).json()["registrars"]
    assert [x["identity"] for x in regs] == [p0.id.hex()]
    issuers = (await api.http.get("/v1/issuers")).json()["issuers"]
    assert [x["identity"] for x in issuers] == [p1.id.hex()]


async def test_unions_and_credentials(api):
    p1, p2, p3 = PEOPLE[1:]
    pop = api.node.populated
    u = (await api.http.get(f"/v1/unions/{pop.union_id}")).json()
    assert u["kind"] == "marriage" and u["status"] == "active" and sorted(u["parties"]) == sorted([p2.id.hex(),
                                                                                                    p3.id.hex()])
    assert u["history"][0]["action"] == "created" and is_hex(u["history"][0]["tx_hash"], 32)
    mine = (await api.http.get(f"/v1/identities/{p2.id.hex()}/unions")).json()
    assert [x["id"] for x in mine["unions"]] == [pop.union_id]
    c = (await api.http.get(f"/v1/credentials/{pop.credential_id}")).json()
    assert c["status"] == "valid" and c["issuer"] == p1.id.hex() and c["subject"] == p2.id.hex()
    assert c["schema"] == "degree/v1" and c["expires_at"] is None
    held = (await api.http.get(f"/v1/identities/{p2.id.hex()}/credentials")).json()
    assert [x["id"] for x in held["credentials"]] == [pop.credential_id]
    issued = (await api.http.get(f"/v1/issuers/{p1.id.hex()}/credentials")).json()
    assert [x["id"] for x in issued["credentials"]] == [pop.credential_id]
    assert (await api.http.get("/v1/unions/999")).status_code == 404
    assert (await api.http.get("/v1/credentials/999")).status_code == 404
    assert (await api.http.get("/v1/credentials/x")).status_code == 400


async def test_proposals_with_live_tally_and_votes(api):
    pid = api.node.populated.proposal_id
    lst = (await api.http.get("/v1/proposals")).json()
    assert lst["total"] == 1 and [p["id"] for p in lst["proposals"]] == [pid]
    assert (await api.http.get("/v1/proposals?status=voting")).json()["total"] == 1
    assert (await api.http.get("/v1/proposals?status=executed")).json()["total"] == 0
    assert (await api.http.get("/v1/proposals?status=bogus")).status_code == 400
    assert (await api.http.get("/v1/proposals?limit=0")).status_code == 400
    p = (await api.http.get(f"/v1/proposals/{pid}")).json()
    assert p["status"] == "voting" and p["track"] == "law" and p["action_type"] == "enact_law"
    assert p["action_decoded"] == {"text": "Plant ten trees per village."}
    assert p["tally"] == {"yes": 2, "no": 1, "abstain": 0, "veto": 0, "cast": 3, "eligible": 4,
                          "outcome": "passed", "final": False}
    assert p["rules"]["threshold"] == "1/2" and p["proposer"] == PEOPLE[3].pub.hex()
    votes = (await api.http.get(f"/v1/proposals/{pid}/votes")).json()
    assert votes["total"] == 3
    by_voter = {v["voter"]: v for v in votes["votes"]}
    assert by_voter[PEOPLE[1].id.hex()]["choice"] == "no" and by_voter[PEOPLE[0].id.hex()]["weight"] == 1
    assert all(v["voter_kind"] == "identity" for v in votes["votes"])
    page = (await api.http.get(f"/v1/proposals/{pid}/votes?limit=1&offset=2")).json()
    assert len(page["votes"]) == 1 and page["votes"][0] == votes["votes"][2]
    assert (await api.http.get("/v1/proposals/77")).status_code == 404
    assert (await api.http.get("/v1/proposals/77/votes")).status_code == 404


async def test_constitution_and_history(api):
    c = (await api.http.get("/v1/constitution")).json()
    assert c["version"] == 1 and is_hex(c["hash"], 32)
    assert c["articles"] == [{"number": 1, "text": "Membership is voluntary."},
                             {"number": 2, "text": "Every resident has one vote."}]
    hist = (await api.http.get("/v1/constitution/history")).json()["versions"]
    assert len(hist) == 1 and hist[0]["hash"] == c["hash"] and hist[0]["prev_hash"] == "00" * 32
    assert hist[0]["changes"][0] == {"number": 1, "text": "Membership is voluntary."}
    v1 = (await api.http.get("/v1/constitution/versions/1")).json()
    assert v1["articles"] == c["articles"]
    assert (await api.http.get("/v1/constitution/versions/2")).status_code == 404
    assert (await api.http.get("/v1/constitution/versions/0")).status_code == 404


async def test_notary_record_carries_a_verifiable_inclusion_proof(api):
    r = await api.http.get(f"/v1/notary/{DOC.hex()}")
    assert r.status_code == 200
    rec = r.json()["records"][0]
    assert rec["doc_hash"] == DOC.hex() and rec["notariser"] == PEOPLE[2].pub.hex()
    assert rec["identity"] == PEOPLE[2].id.hex() and rec["metadata"] == "deed"
    proof = rec["proof"]
    # Verify as a light client would: the header from /v1/blocks, the path from the proof.
    b = (await api.http.get(f"/v1/blocks/{proof['height']}")).json()
    assert proof["block_hash"] == b["hash"] and proof["tx_root"] == b["tx_root"]
    assert len(proof["inclusion"]["path"]) >= 2 and proof["inclusion"]["tree_size"] == b["num_txs"]
    inc = merkle.InclusionProof(proof["inclusion"]["index"], proof["inclusion"]["tree_size"],
                                tuple(bytes.fromhex(p) for p in proof["inclusion"]["path"]))
    assert merkle.verify_inclusion(bytes.fromhex(proof["tx_hash"]), inc, bytes.fromhex(b["tx_root"]))
    header = api.node.block(proof["height"])[0].header
    assert isinstance(header, BlockHeader) and header.digest().hex() == proof["block_hash"]
    assert (await api.http.get(f"/v1/notary/{'22' * 32}")).status_code == 404
    assert (await api.http.get("/v1/notary/xyz")).status_code == 400


# ---------------------------------------------------------------- events


async def next_event(lines: AsyncIterator[str]) -> dict[str, str]:
    """The next SSE frame that carries an event (comment-only frames are skipped)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if "event" in fields:
                return fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    raise AssertionError("stream ended")


async def test_event_stream_delivers_blocks_and_tx_results(api):
    async with api.http.stream("GET", "/v1/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = r.aiter_lines()
        with trio.fail_after(5):
            async for line in lines:
                if line == ": subscribed":
                    break
            start = api.node.latest_height()
            tx = transfer(api)
            api.node.feed(tx)
            api.node.run_until_committed([tx.hash])
            blocks, txs = [], []
            while not txs:
                ev = await next_event(lines)
                data = json.loads(ev["data"])
                if ev["event"] == "block":
                    assert ev["id"] == str(data["height"])
                    blocks.append(data)
                else:
                    txs.append(data)
    assert blocks[0]["height"] == start + 1 and is_hex(blocks[0]["hash"], 32)
    assert blocks[0]["hash"] == api.node.block(start + 1)[0].hash.hex()
    assert txs[0]["hash"] == tx.hash.hex() and txs[0]["code"] == 0 and txs[0]["height"] == blocks[-1]["height"]


async def test_event_stream_filters_by_kind(api):
    assert (await api.http.get("/v1/events?kinds=votes")).status_code == 400
    async with api.http.stream("GET", "/v1/events?kinds=tx") as r:
        lines = r.aiter_lines()
        with trio.fail_after(5):
            async for line in lines:
                if line == ": subscribed":
                    break
            tx = transfer(api)
            api.node.feed(tx)
            api.node.run_until_committed([tx.hash])
            ev = await next_event(lines)
    assert ev["event"] == "tx" and json.loads(ev["data"])["hash"] == tx.hash.hex()


# ---------------------------------------------------------------- admin


async def test_admin_block_and_unblock(api):
    peer = "12D3KooWPeer111111111111111111111111111111111111"
    r = await api.http.post(f"/v1/admin/peers/{peer}/block")
    assert r.status_code == 200 and r.json() == {"peer_id": peer, "blocked": True} and peer in api.node.blocked
    r = await api.http.post(f"/v1/admin/peers/{peer}/unblock")
    assert r.json() == {"peer_id": peer, "blocked": False} and peer not in api.node.blocked
    assert (await api.http.post("/v1/admin/peers/not-base58!/block")).status_code == 400
    assert (await api.http.post("/v1/admin/peers/abc/block")).status_code == 400  # the node refuses it
    assert (await api.http.get(f"/v1/admin/peers/{peer}/block")).status_code == 405


async def test_admin_paths_do_not_exist_when_disabled(api, nursery):
    address = await start_api(nursery, api.node, admin_enabled=False)
    async with httpx.AsyncClient(base_url=f"http://{address}") as client:
        peer = "12D3KooWPeer111111111111111111111111111111111111"
        for action in ("block", "unblock"):
            r = await client.post(f"/v1/admin/peers/{peer}/{action}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (await client.get("/v1/status")).status_code == 200
    assert not api.node.blocked

