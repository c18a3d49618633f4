"""`ekklesia status`, `ekklesia query …`, `ekklesia tx …` and `init --genesis/--peer`,
through click's CliRunner against the real HTTP API of a simulated validator
(tests/node/api_fixture.py: the production replica under virtual time, so a tx with
--wait commit is committed at once). Also `node.proofs` against tampered answers."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import trio
from api_fixture import DOC, OUTSIDER, PEOPLE, SimNodeAPI, serve_in_thread
from click.testing import CliRunner, Result

import node.cli as cli
from node.client import Client
from node.config import Config
from node.home import Home
from node.keys import FAST_INSECURE_KDF, Keystore
from node.proofs import verify_notary_record
from protocol import crypto
from protocol.governance import queries
from protocol.governance.identity import derive_id, key_digest
from protocol.governance.unions import UnionRef

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("EKKLESIA_"):
            monkeypatch.delenv(var)
    monkeypatch.setattr(cli, "KEYSTORE_KDF", FAST_INSECURE_KDF)
    monkeypatch.setattr(cli, "_interactive", lambda: False)


@dataclass
class Sim:
    node: SimNodeAPI
    url: str
    keys: Path

    def run(self, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
        env = {"EKKLESIA_NODE": self.url, **(env or {})}
        argv = list(args)
        if args and args[0] == "tx" and "--keys-dir" not in argv:
            argv += ["--keys-dir", str(self.keys)]
        result = CliRunner().invoke(cli.main, argv, env=env, catch_exceptions=True)
        assert "Traceback" not in result.output
        if result.exception is not None:
            assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code == code, (argv, result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str, code: int = 0, **kw: Any) -> Any:
        return json.loads(self.run(*args, "--json", code=code, **kw).stdout)

    def q(self, *args: str) -> Any:
        return self.json("query", *args, "--keys-dir", str(self.keys))


@contextmanager
def serve_sim(tmp_path: Path) -> Iterator[Sim]:
    node = SimNodeAPI()
    node.populate()  # one of everything: a notarisation, a marriage (1), a credential (1), proposal 1 voting
    keys = tmp_path / "keys"
    ks = Keystore(keys)
    for i, p in enumerate(PEOPLE):  # p0 registrar, p1 issuer; all residents
        ks.add(f"p{i}", seed=p.key.seed)
        ks.add(f"p{i}-next", seed=p.next_key.seed)
    ks.add("outsider", seed=OUTSIDER.key.seed)
    ks.add("newbie")
    ks.add("newbie-next")
    # Every CLI call opens a connection; a closed one keeps its slot until the server's
    # keep-alive timeout (5 s), so the fixture's default of 16 slots would stall.
    with serve_in_thread(node, max_connections=900) as address:
        yield Sim(node, f"http://{address}", keys)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    """A fresh chain, for tests that submit transactions."""
    with serve_sim(tmp_path) as s:
        yield s


@pytest.fixture(scope="module")
def ro(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """One chain shared by the tests that only read (or fail before submitting)."""
    with serve_sim(tmp_path_factory.mktemp("ro")) as s:
        yield s


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0]


def api_get(sim: Sim, path: str) -> Any:
    return httpx.get(sim.url + path, timeout=10).json()


# ----------------------------------------------------------------------------- status and queries


def test_status_text_and_json(ro: Sim) -> None:
    out = ro.json("status")
    assert out == api_get(ro, "/v1/status")
    text = ro.run("status").stdout
    assert "chain_id" in text and "api-test" in text
    # host:port works as --node; so does $EKKLESIA_NODE (the fixture uses it)
    assert ro.json("status", "--node", ro.url.removeprefix("http://"))["chain_id"] == "api-test"


@pytest.mark.parametrize("args,path", [
    (("chain",), "/v1/chain"), (("supply",), "/v1/supply"), (("params",), "/v1/params"),
    (("validators",), "/v1/validators"), (("validators", "--height", "2"), "/v1/validators?height=2"),
    (("registrars",), "/v1/registrars"), (("issuers",), "/v1/issuers"), (("peers",), "/v1/peers"),
    (("proposals",), "/v1/proposals"), (("proposals", "--status", "voting"), "/v1/proposals?status=voting"),
    (("proposal", "1"), "/v1/proposals/1"), (("votes", "1"), "/v1/proposals/1/votes"),
    (("constitution",), "/v1/constitution"), (("constitution", "--history"), "/v1/constitution/history"),
    (("constitution", "--version", "1"), "/v1/constitution/versions/1"),
    (("union", "1"), "/v1/unions/1"), (("credential", "1"), "/v1/credentials/1"),
    (("block", "2"), "/v1/blocks/2"), (("block",), "/v1/blocks/latest"),
    (("notary", DOC.hex()), f"/v1/notary/{DOC.hex()}"),
])
def test_queries_pass_the_api_json_through_and_render_text(ro: Sim, args: tuple[str, ...], path: str) -> None:
    assert ro.json("query", *args) == api_get(ro, path)
    text = ro.run("query", *args).stdout
    assert text.strip() and not text.lstrip().startswith("{")


def test_query_account_by_name_address_or_pubkey(ro: Sim) -> None:
    p0 = PEOPLE[0]
    by_name = ro.q("account", "p0")
    assert by_name == ro.q("account", p0.address.hex()) == ro.q("account", "0x" + p0.pub.hex().upper())
    assert by_name["address"] == p0.address.hex() and by_name["balance"] > 0
    assert "nobody" in ro.run("query", "account", "nobody", "--keys-dir", str(ro.keys), code=2).stderr


def test_query_identity_by_id_key_name_and_pubkey(ro: Sim) -> None:
    p2 = PEOPLE[2]
    by_id = ro.q("identity", p2.id.hex())
    assert by_id["id"] == p2.id.hex() and by_id["residency"] == "active"
    assert ro.q("identity", "p2") == by_id == ro.q("identity", "--key", p2.pub.hex()) == ro.q("identity", "--key",
                                                                                                   "p2")
    ro.run("query", "identity", code=2)  # neither
    unions = ro.q("unions", "p2")["unions"]
    assert [u["id"] for u in unions] == [ro.node.populated.union_id]
    held = ro.q("credentials", "p2")["credentials"]
    issued = ro.q("credentials", "p1", "--issued")["credentials"]
    assert held == issued and held[0]["id"] == ro.node.populated.credential_id
    assert "degree/v1" in ro.run("query", "credentials", "p2", "--keys-dir", str(ro.keys)).stdout


def test_query_tx_and_proposal_text(ro: Sim) -> None:
    h = ro.node.populated.transfer.hex()
    out = ro.json("query", "tx", h)
    assert out["status"] == "committed" and out["tx"]["kind"] == "transfer"
    text = ro.run("query", "proposal", "1").stdout
    assert "tally: yes 2  no 1" in text and "enact_law" in text
    assert "Plant trees" in ro.run("query", "proposals").stdout


@pytest.mark.parametrize("args,needle", [
    (("proposal", "99"), "no proposal 99"),
    (("union", "99"), "no union 99"),
    (("credential", "99"), "no credential 99"),
    (("tx", "00" * 32), "no transaction"),
    (("identity", "00" * 32), "no identity"),
    (("block", "9999"), "no block at height 9999"),
    (("notary", "11" * 32), "never notarised"),
])
def test_not_found_is_one_error_line_and_exit_1(ro: Sim, args: tuple[str, ...], needle: str) -> None:
    result = ro.run("query", *args, code=1)
    assert needle in one_error_line(result)
    assert result.stdout == ""
    ro.run("query", *args, "--json", code=1)


@pytest.mark.parametrize("args", [
    ("query", "tx", "not-hex"),
    ("query", "proposal", "-1"),
    ("query", "notary", "no-such-file"),
    ("query", "constitution", "--history", "--version", "1"),
    ("query", "proposals", "--status", "bogus"),
    ("tx", "transfer", "p1", "0", "--from", "p0"),
    ("tx", "transfer", "p1", "5"),  # no --from
    ("tx", "transfer", "p1", "5", "--from", "p0", "--memo", "x" * 129),
    ("tx", "transfer", "p1", "5", "--from", "p0", "--wait", "maybe"),
    ("tx", "notarise", "--from", "p0"),  # neither file nor --hash
    ("tx", "identity", "register", "--from", "newbie"),  # no next key
    ("tx", "union", "create", "--title", "x", "--terms-hash", "00" * 32, "--from", "p0"),  # no co-signer
    ("tx", "proposal", "submit", "change-params", "--set", "law.nonsense=1", "--title", "t", "--from", "p0"),
    ("tx", "proposal", "submit", "amend-constitution", "--title", "t", "--from", "p0"),  # no change
    ("tx", "proposal", "vote", "1", "maybe", "--from", "p0"),
])
def test_bad_usage_exits_2_without_a_traceback(ro: Sim, args: tuple[str, ...]) -> None:
    result = ro.run(*args, code=2)
    assert result.stdout == ""


def test_unreachable_node_is_one_error_line(ro: Sim) -> None:
    for args in (("status",), ("query", "supply"), ("tx", "transfer", "p1", "5", "--from", "p0")):
        line = one_error_line(ro.run(*args, "--node", "http://127.0.0.1:9", code=1))
        assert "no answer from the node at http://127.0.0.1:9" in line


def test_subprocess_exit_codes_and_one_line_errors(ro: Sim) -> None:
    exe = [sys.executable, "-m", "node"]
    env = {**os.environ, "EKKLESIA_NODE": ro.url}
    ok = subprocess.run([*exe, "query", "supply", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["total"] > 0
    missing = subprocess.run([*exe, "query", "proposal", "99"], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == ["error: /v1/proposals/99: 404 no "
                                                                               "proposal 99"]


# ----------------------------------------------------------------------------- transactions


def test_transfer_commits_and_prints_the_result(sim: Sim) -> None:
    before = sim.q("account", "outsider")["balance"]
    out = sim.json("tx", "transfer", "outsider", "250", "--memo", "rent", "--from", "p0")
    assert out["status"] == "committed" and out["code"] == 0 and out["code_name"] == "ok"
    assert sim.q("account", "outsider")["balance"] == before + 250
    tx = sim.json("query", "tx", out["hash"])["tx"]
    assert tx["body_decoded"] == {"to": OUTSIDER.address.hex(), "amount": 250, "memo": "rent"}
    text = sim.run("tx", "transfer", OUTSIDER.address.hex(), "1", "--from", "p0").stdout
    assert "status  committed" in text and "result  ok (0)" in text


def test_an_unpayable_transfer_is_refused_with_its_reason(sim: Sim) -> None:
    result = sim.run("tx", "transfer", "outsider", str(10**12), "--from", "p1", "--json", code=1)
    out = json.loads(result.stdout)
    assert out["status"] == "rejected" and out["reason"].startswith("insufficient funds: ")
    assert "refused the tx: insufficient funds" in one_error_line(result)


def test_failed_execution_exits_1_with_its_code(sim: Sim) -> None:
    # Admission judges the committed state, so a tx still fails at execution when one
    # ahead of it changes that state: here the other party dissolves the union first.
    uid = sim.json("tx", "union", "create", "--kind", "contract", "--title", "race", "--terms-hash", "ef" * 32,
                   "--from", "p2", "--cosigner", "p3")["union_id"]
    p2, p3 = PEOPLE[2], PEOPLE[3]
    nonce = queries.account_nonce(sim.node.state(), p3.pub)
    sim.node.feed(sim.node.make_tx(p3.key, "union.dissolve", UnionRef(uid), cosigners=(p2.key,), nonce=nonce))
    result = sim.run("tx", "union", "notice", str(uid), "--from", "p2", "--json", code=1)
    out = json.loads(result.stdout)
    assert out["status"] == "committed" and out["code_name"] == "wrong_status" and out["info"]
    assert "failed at execution: wrong_status" in one_error_line(result)


def test_wait_none_returns_after_admission(sim: Sim) -> None:
    out = sim.json("tx", "transfer", "outsider", "3", "--from", "p3", "--wait", "none")
    assert out["status"] == "pending" and out["height"] is None
    sim.node.run_until_committed([bytes.fromhex(out["hash"])])
    assert sim.json("query", "tx", out["hash"])["status"] == "committed"


def test_dry_run_signs_without_submitting(sim: Sim) -> None:
    nonce = sim.q("account", "p0")["nonce"]
    out = sim.json("tx", "proposal", "submit", "law", "--title", "t", "--text", "Be kind.", "--from", "p0",
                   "--dry-run")
    assert out["dry_run"] is True and out["nonce"] == nonce and out["kind"] == "proposal.submit"
    assert out["body_decoded"]["action_decoded"] == {"text": "Be kind."}
    assert out["body_decoded"]["deposit"] == 100  # the track's minimum, from /v1/params
    assert sim.q("account", "p0")["nonce"] == nonce
    # the printed tx is the exact signed encoding: it can be posted as is
    r = httpx.post(sim.url + "/v1/txs?wait=commit", json={"tx": out["tx"]}, timeout=10)
    assert r.json()["hash"] == out["hash"] and r.json()["status"] == "committed"


def test_identity_register_residency_lifecycle_and_rotation(sim: Sim) -> None:
    sim.run("tx", "transfer", "newbie", "5000", "--from", "p0")
    ks = Keystore(sim.keys)
    newbie = bytes.fromhex(ks.show("newbie").pubkey)
    nxt = bytes.fromhex(ks.show("newbie-next").pubkey)
    out = sim.json("tx", "identity", "register", "--from", "newbie", "--next-key", "newbie-next")
    iid = derive_id(newbie, key_digest(nxt)).hex()
    assert out["identity"] == iid and sim.q("identity", "newbie")["id"] == iid

    sim.run("tx", "residency", "grant", "newbie", "--duration", "1000", "--from", "p0")
    ident = sim.q("identity", iid)
    assert ident["residency"] == "active" and ident["expires_at"] > 1000
    for verb, state in (("suspend", "suspended"), ("reinstate", "active"), ("revoke", "revoked")):
        sim.run("tx", "residency", verb, iid, "--reason", f"test {verb}", "--from", "p0")
        assert sim.q("identity", iid)["residency"] == state
    # a non-registrar cannot grant: the node refuses it (NOT_REGISTRAR on the committed state)
    bad = json.loads(sim.run("tx", "residency", "grant", "p3", "--expires-at", "99999", "--from", "p3", "--json",
                             code=1).stdout)
    assert bad["status"] == "rejected" and bad["reason"] == "not permitted: the sender is not a registrar"

    # rotation is sent by the committed next key; then the old key is retired: the node refuses its txs
    ks.add("newbie-next2")
    sim.run("tx", "identity", "rotate", "newbie", "--from", "newbie-next", "--next-key", "newbie-next2")
    assert sim.q("identity", iid)["key"] == nxt.hex()
    refused = sim.run("tx", "transfer", "p0", "1", "--from", "newbie", code=1)
    assert "refused" in one_error_line(refused)
    assert "status  rejected" in refused.stdout and "reason" in refused.stdout


def test_every_proposal_action(sim: Sim, tmp_path: Path) -> None:
    law = tmp_path / "law.txt"
    law.write_text("Every village plants ten trees.", encoding="utf-8")
    validator = sim.node.cluster.keys[0].public_key.hex()
    union = str(sim.node.populated.union_id)
    cases: list[tuple[list[str], str, Any]] = [
        (["treasury-spend", "--to", "p3", "--amount", "5", "--purpose", "seeds"], "treasury_spend",
         {"recipient": PEOPLE[3].address.hex(), "amount": 5, "purpose": "seeds"}),
        (["law", "--text-file", str(law)], "enact_law", {"text": "Every village plants ten trees."}),
        (["amend-constitution", "--article", "3=Peace.", "--repeal", "2"], "amend_constitution",
         {"base_version": 1, "changes": [{"number": 2, "text": None}, {"number": 3, "text": "Peace."}]}),
        (["appoint-registrar", "p1"], "appoint_registrar", {"identity_id": PEOPLE[1].id.hex()}),
        (["remove-registrar", "p0"], "remove_registrar", {"identity_id": PEOPLE[0].id.hex()}),
        (["accredit-issuer", "p2", "--name", "Guild"], "accredit_issuer",
         {"identity_id": PEOPLE[2].id.hex(), "name": "Guild"}),
        (["revoke-issuer", PEOPLE[1].id.hex()], "revoke_issuer", {"identity_id": PEOPLE[1].id.hex()}),
        (["change-validators", "--validator", f"{validator}=20"], "change_validators",
         {"updates": [{"pubkey": validator, "power": 20}]}),
        (["residency-ruling", "p3", "--to", "suspend", "--reason", "r"], "residency_ruling",
         {"identity_id": PEOPLE[3].id.hex(), "to": "suspended", "reason": "r"}),
        (["dissolve-union", union, "--reason", "r"], "dissolve_union", {"union_id": int(union), "reason": "r"}),
    ]
    ids = []
    for args, action_type, decoded in cases:
        out = sim.json("tx", "proposal", "submit", *args, "--title", action_type, "--from", "p0")
        assert out["code_name"] == "ok", out
        p = sim.json("query", "proposal", str(out["proposal_id"]))
        assert (p["action_type"], p["action_decoded"], p["title"]) == (action_type, decoded, action_type)
        assert p["deposit"] == 100 and p["status"] == "pending"
        ids.append(p["id"])

    # change-params: the changed track keeps its other fields; touching the constitutional track moves the proposal
    out = sim.json("tx", "proposal", "submit", "change-params", "--set", "fee=1", "--set", "law.quorum=1/3",
                   "--set", "law.electorate=tokens", "--title", "params", "--deposit", "150", "--from", "p0")
    p = sim.json("query", "proposal", str(out["proposal_id"]))
    law_track = {**api_get(sim, "/v1/params")["tracks"]["law"], "quorum": "1/3", "electorate": "tokens"}
    assert p["track"] == "parameter" and p["deposit"] == 150
    assert p["action_decoded"]["fee"] == 1 and p["action_decoded"]["cancel_burn"] is None
    assert p["action_decoded"]["tracks"] == [{"track": "law", **law_track}]
    const = sim.json("tx", "proposal", "submit", "change-params", "--set", "constitutional.timelock=7",
                     "--title", "c", "--from", "p0")
    assert sim.json("query", "proposal", str(const["proposal_id"]))["track"] == "constitutional"

    # cancel while pending (voting starts 2 heights after submission here); vote once voting
    sim.run("tx", "proposal", "cancel", str(const["proposal_id"]), "--from", "p0")
    assert sim.json("query", "proposal", str(const["proposal_id"]))["status"] == "cancelled"
    late = json.loads(sim.run("tx", "proposal", "cancel", str(ids[1]), "--from", "p0", "--json", code=1).stdout)
    assert late["status"] == "rejected" and late["reason"].startswith("would fail: a proposal can be cancelled only")
    start = sim.json("query", "proposal", str(ids[0]))["voting_start"]
    sim.node.advance_to_height(start + 1)
    sim.run("tx", "proposal", "vote", str(ids[0]), "YES", "--from", "p2")
    votes = sim.json("query", "votes", str(ids[0]))["votes"]
    assert [(v["voter"], v["choice"]) for v in votes] == [(PEOPLE[2].address.hex(), "yes")]  # treasury: tokens
    tally = sim.json("query", "proposal", str(ids[0]))["tally"]
    assert tally["yes"] == votes[0]["weight"] > 0


def test_notarise_then_verify_the_proof(sim: Sim, tmp_path: Path) -> None:
    doc = tmp_path / "deed.txt"
    doc.write_bytes(b"the deed to the mill")
    out = sim.json("tx", "notarise", str(doc), "--metadata", "mill deed", "--from", "p2")
    assert out["doc_hash"] == crypto.sha256(b"the deed to the mill").hex()
    by_hash = sim.json("tx", "notarise", "--hash", out["doc_hash"], "--from", "p3")
    assert by_hash["code_name"] == "ok"

    verified = sim.json("query", "notary", str(doc), "--verify")
    assert verified["verified"] is True and len(verified["records"]) == 2
    for rec in verified["records"]:
        checks = rec["verification"]["checks"]
        assert [c["check"] for c in checks] == ["record", "transaction", "inclusion", "header", "validators",
                                                "commit"]
        assert all(c["ok"] is True for c in checks)
    text = sim.run("query", "notary", str(doc), "--verify").stdout
    assert "all records verified" in text and "FAIL" not in text

    # the validator set anchored in a genesis file; another chain's genesis fails
    genesis = tmp_path / "genesis.json"
    genesis.write_text(sim.node.cluster.genesis.to_json())
    assert sim.json("query", "notary", str(doc), "--verify", "--genesis", str(genesis))["verified"] is True
    other = json.loads(genesis.read_text())
    other["validators"] = [{"pubkey": PEOPLE[0].pub.hex(), "power": 10}]
    genesis.write_text(json.dumps(other))
    failed = sim.run("query", "notary", str(doc), "--verify", "--genesis", str(genesis), code=1)
    assert "validators" in failed.stdout and "FAIL" in failed.stdout
    assert one_error_line(failed) == "error: verification failed"
    # a second node to fetch the proof material from
    assert sim.json("query", "notary", out["doc_hash"], "--verify", "--trusted-node", sim.url)["verified"] is True


def _proof_material(sim: Sim) -> dict[str, Any]:
    rec = api_get(sim, f"/v1/notary/{DOC.hex()}")["records"][0]
    return {
        "record": rec,
        "tx": api_get(sim, f"/v1/txs/{rec['tx_hash']}")["tx"],
        "block": api_get(sim, f"/v1/blocks/{rec['height']}"),
        "validators": api_get(sim, f"/v1/validators?height={rec['height']}"),
    }


def _flip(hex_text: str) -> str:
    return ("1" if hex_text[0] != "1" else "2") + hex_text[1:]


def _tamper_tx_root(m: dict[str, Any]) -> None:
    m["block"]["tx_root"] = _flip(m["block"]["tx_root"])


def _tamper_path(m: dict[str, Any]) -> None:
    m["record"]["proof"]["inclusion"]["path"][0] = _flip(m["record"]["proof"]["inclusion"]["path"][0])


def _tamper_commit(m: dict[str, Any]) -> None:
    m["block"]["commit"]["signatures"][0]["signature"] = _flip(m["block"]["commit"]["signatures"][0]["signature"])


def _tamper_power(m: dict[str, Any]) -> None:
    m["validators"]["validators"][0]["power"] += 1


def _tamper_body(m: dict[str, Any]) -> None:
    m["tx"]["nonce"] += 1


def _tamper_time(m: dict[str, Any]) -> None:
    m["block"]["time_ms"] += 1


def _tamper_format(m: dict[str, Any]) -> None:
    del m["block"]["validators_hash"]


def _no_proof(m: dict[str, Any]) -> None:
    m["record"]["proof"] = None


@pytest.mark.parametrize("tamper,failed", [
    (_tamper_tx_root, "inclusion"), (_tamper_path, "inclusion"), (_tamper_commit, "commit"),
    (_tamper_power, "validators"), (_tamper_body, "transaction"), (_tamper_time, "header"),
    (_tamper_format, "format"), (_no_proof, "record"),
])
def test_proof_verification_detects_tampering(ro: Sim, tamper: Any, failed: str) -> None:
    m = _proof_material(ro)
    assert verify_notary_record(DOC, **m).ok
    bad = copy.deepcopy(m)
    tamper(bad)
    v = verify_notary_record(DOC, **bad)
    assert not v.ok
    first_bad = next(c for c in v.checks if c.ok is not True)
    assert first_bad.name == failed, v.to_json()
    assert not verify_notary_record(crypto.sha256(b"another document"), **m).ok


def test_union_create_notice_and_dissolve(sim: Sim, tmp_path: Path) -> None:
    vows = tmp_path / "vows.txt"
    vows.write_text("care and honesty")
    out = sim.json("tx", "union", "create", "--title", "P0 & P1", "--terms-file", str(vows), "--from", "p0",
                   "--cosigner", "p1")
    uid = str(out["union_id"])
    u = sim.json("query", "union", uid)
    assert u["status"] == "active" and u["kind"] == "marriage" and u["notice_period"] == 3  # the minimum
    assert u["terms_hash"] == crypto.sha256(b"care and honesty").hex()
    assert sorted(u["parties"]) == sorted([PEOPLE[0].id.hex(), PEOPLE[1].id.hex()])
    # dissolving needs every party: without one the node refuses it (PARTIES_MISMATCH)
    alone = json.loads(sim.run("tx", "union", "dissolve", uid, "--from", "p0", "--cosigner", "p2", "--json",
                               code=1).stdout)
    assert alone["status"] == "rejected" and alone["reason"].startswith("not permitted: a mutual dissolution")
    sim.run("tx", "union", "dissolve", uid, "--from", "p1", "--cosigner", "p0")
    assert sim.json("query", "union", uid)["status"] == "dissolved"

    contract = sim.json("tx", "union", "create", "--kind", "contract", "--title", "Co-op", "--terms-hash",
                        "ab" * 32, "--notice-period", "50", "--from", "p0", "--cosigner", "p1", "--cosigner", "p3")
    cid = str(contract["union_id"])
    sim.run("tx", "union", "notice", cid, "--from", "p3")
    c = sim.json("query", "union", cid)
    assert c["status"] == "notice" and len(c["parties"]) == 3 and c["notice_due"] is not None


def test_credential_issue_and_revoke(sim: Sim) -> None:
    out = sim.json("tx", "credential", "issue", "p3", "--schema", "member/v1", "--claims-hash", "cd" * 32,
                   "--expires-at", "100000", "--from", "p1")
    cid = str(out["credential_id"])
    cred = sim.json("query", "credential", cid)
    assert (cred["subject"], cred["status"], cred["expires_at"]) == (PEOPLE[3].id.hex(), "valid", 100000)
    not_issuer = sim.run("tx", "credential", "issue", "p3", "--schema", "x", "--claims-hash", "cd" * 32,
                         "--from", "p2", "--json", code=1)
    refusal = json.loads(not_issuer.stdout)
    assert refusal["status"] == "rejected"
    assert refusal["reason"] == "not permitted: the sender is not an accredited issuer"
    sim.run("tx", "credential", "revoke", cid, "--reason", "error", "--from", "p1")
    cred = sim.json("query", "credential", cid)
    assert cred["status"] == "revoked" and cred["revoke_reason"] == "error"


def test_encrypted_keys_take_the_passphrase_from_file_or_env(sim: Sim, tmp_path: Path) -> None:
    Keystore(sim.keys, kdf=FAST_INSECURE_KDF).add("locked", seed=PEOPLE[3].next_key.seed, passphrase="s3cret")
    sim.run("tx", "transfer", "locked", "100", "--from", "p0")
    args = ("tx", "transfer", "p0", "1", "--from", "locked")
    assert "EKKLESIA_PASSPHRASE" in one_error_line(sim.run(*args, code=1))
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    sim.run(*args, "--passphrase-file", str(pw))
    sim.run(*args, env={"EKKLESIA_PASSPHRASE": "s3cret"})
    assert "passphrase" in one_error_line(sim.run(*args, env={"EKKLESIA_PASSPHRASE": "wrong"}, code=1)).lower()
    # and via --home: the keystore at <home>/keys
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True, mode=0o700)
    Keystore(home / "keys").add("h", seed=PEOPLE[0].key.seed)
    assert CliRunner().invoke(cli.main, ["tx", "transfer", PEOPLE[1].address.hex(), "1", "--from", "h",
                                                "--home", str(home)],
                              env={"EKKLESIA_NODE": sim.url}).exit_code == 0


def test_client_nonce_of_an_unknown_account_is_zero() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no account"}})

    async def go() -> int:
        c = Client("127.0.0.1:1")
        c.http = httpx.AsyncClient(base_url=c.base, transport=httpx.MockTransport(handler))
        async with c:
            return await c.nonce(bytes(32))

    assert trio.run(go) == 0


def _leaves(group: click.Group, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            assert "Examples:" in (cmd.epilog or ""), (*prefix, name)
            yield from _leaves(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_has_help_with_examples_and_json() -> None:
    leaves = [*_leaves(cli.main.commands["tx"], ("tx",)),  # type: ignore[arg-type]
              *_leaves(cli.main.commands["query"], ("query",)), (("status",), cli.main.commands["status"])]
    assert len(leaves) > 40
    for path, cmd in leaves:
        result = CliRunner().invoke(cli.main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Examples:" in result.stdout and "--json" in result.stdout, path
        assert cmd.help, path


# ----------------------------------------------------------------------------- init --genesis / --peer


def test_init_with_genesis_and_peers(tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(SimNodeAPI(start=False).cluster.genesis.to_json())
    home = tmp_path / "joiner"
    peer = _real_peer_id_multiaddr(tmp_path)
    result = CliRunner().invoke(cli.main, ["init", "--home", str(home), "--genesis", str(genesis), "--peer", peer,
                                           "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    h = Home(home)
    assert out["genesis_written"] is True and h.genesis_file.read_text() == genesis.read_text()
    assert h.genesis_file.stat().st_mode & 0o777 == 0o600
    assert Config.load(h, env={}).p2p.peers == (peer,)

    again = CliRunner().invoke(cli.main, ["init", "--home", str(home), "--force", "--genesis", str(genesis)])
    assert again.exit_code == 0  # the same genesis again: fine
    refused = CliRunner().invoke(cli.main, ["init", "--home", str(tmp_path / "x"), "--genesis", str(tmp_path)])
    assert refused.exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"chain_id": "x"}')
    invalid = CliRunner().invoke(cli.main, ["init", "--home", str(tmp_path / "y"), "--genesis", str(bad)])
    assert invalid.exit_code == 1 and "not a valid genesis" in one_error_line(invalid)
    assert not (tmp_path / "y").exists()
    bad_peer = CliRunner().invoke(cli.main, ["init", "--home", str(tmp_path / "z"), "--peer", "/ip4/1.2.3.4/tcp/1"])
    assert bad_peer.exit_code == 1 and "p2p.peers" in bad_peer.stderr and "Traceback" not in bad_peer.output
    assert not (tmp_path / "z").exists()


def test_init_replaces_a_different_genesis_only_with_force(tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(SimNodeAPI(start=False).cluster.genesis.to_json())
    other = tmp_path / "other.json"
    doc = json.loads(genesis.read_text())
    doc["chain_id"] = "other-chain"
    other.write_text(json.dumps(doc))
    home = tmp_path / "n"
    assert CliRunner().invoke(cli.main, ["init", "--home", str(home), "--genesis", str(genesis)]).exit_code == 0
    r = CliRunner().invoke(cli.main, ["init", "--home", str(home), "--genesis", str(other)])
    assert r.exit_code == 1 and "already initialised" in one_error_line(r)
    r = CliRunner().invoke(cli.main, ["init", "--home", str(home), "--force", "--genesis", str(other)])
    assert r.exit_code == 0 and Home(home).genesis_file.read_text() == other.read_text()
    assert [p.name.startswith("genesis.json.") for p in Home(home).config_dir.glob("genesis.json.*.bak")] == [True]
    # never under a chain's data
    (Home(home).data_dir / "store").mkdir()
    r = CliRunner().invoke(cli.main, ["init", "--home", str(home), "--force", "--genesis", str(genesis)])
    assert r.exit_code == 1 and "remove it" in one_error_line(r)
    assert Home(home).genesis_file.read_text() == other.read_text()


def _real_peer_id_multiaddr(tmp_path: Path) -> str:
    from node.p2p import load_or_create_node_key, peer_id_of

    return f"/ip4/10.0.0.5/tcp/26656/p2p/{peer_id_of(load_or_create_node_key(tmp_path / 'node_key'))}"
