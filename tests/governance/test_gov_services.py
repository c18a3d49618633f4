"""Civil services: notary records and proofs, marriages and contracts, credentials."""

from __future__ import annotations

from dataclasses import replace

from gov_helpers import OUTSIDER, PEOPLE, Chain, Person, ok, passed, person

from protocol import crypto
from protocol.governance import Code, invariants, queries
from protocol.governance.accounts import Transfer
from protocol.governance.actions import ActionType, DissolveUnion, IdentityRef
from protocol.governance.credentials import CredentialStatus, IssueCredential, RevokeCredential
from protocol.governance.identity import RegisterIdentity, ResidencyAction, key_digest
from protocol.governance.notary import Notarise, prove, verify_proof
from protocol.governance.unions import CreateUnion, UnionAction, UnionKind, UnionRef, UnionStatus

DOC = crypto.sha256(b"deed of the village hall")
A, B, C, D = PEOPLE[2], PEOPLE[3], PEOPLE[4], PEOPLE[5]
ISSUER = PEOPLE[1]

# ---------------------------------------------------------------- notary


def test_notarise_and_prove() -> None:
    c = Chain()
    filler = c.tx(OUTSIDER.key, "transfer", Transfer(A.address, 1, ""))
    res = c.block(filler, c.tx(A.key, "notary.notarise", Notarise(DOC, "v1")), c.tx(OUTSIDER.key, "notary.notarise",
                                                                                    Notarise(DOC, "")))
    assert all(r.ok for r in res.tx_results)
    block = c.last_block
    recs = queries.notary_records(c.state, DOC)
    assert [(r.tx_index, r.metadata) for r in recs] == [(1, "v1"), (2, "")]
    assert recs[0].identity == A.id and recs[1].identity is None
    assert (recs[0].height, recs[0].time_ms, recs[0].tx_hash) == (1, block.header.time_ms, block.txs[1].hash)
    proof = prove(block, recs[0])
    assert verify_proof(proof, block.header, recs[0])
    assert not verify_proof(proof, block.header, recs[1])  # another record's tx
    other = replace(block.header, time_ms=block.header.time_ms + 1)
    assert not verify_proof(proof, other)  # another block
    tampered = replace(proof, inclusion=replace(proof.inclusion, index=0))
    assert not verify_proof(tampered, block.header)
    assert queries.notary_records(c.state, crypto.sha256(b"other")) == []


def test_notarise_later_again_keeps_both_in_height_order() -> None:
    c = Chain()
    ok(c.run(B.key, "notary.notarise", Notarise(DOC, "first")))
    c.block()
    ok(c.run(A.key, "notary.notarise", Notarise(DOC, "second")))
    assert [r.metadata for r in queries.notary_records(c.state, DOC)] == ["first", "second"]


# ---------------------------------------------------------------- unions


def marry(c: Chain, x: Person = A, y: Person = B, notice: int = 3) -> int:
    ok(c.run(x.key, "union.create", CreateUnion(UnionKind.MARRIAGE, "A & B", DOC, notice), cosigners=(y.key,)))
    return queries.unions_of(c.state, x.id)[-1].id


def test_marriage_created_and_dissolved_by_both() -> None:
    c = Chain()
    uid = marry(c)
    u = queries.union(c.state, uid)
    assert u is not None and u.status == UnionStatus.ACTIVE and u.parties == tuple(sorted([A.id, B.id]))
    assert [x.id for x in queries.unions_of(c.state, B.id)] == [uid]
    assert c.run(A.key, "union.dissolve", UnionRef(uid)).code == Code.PARTIES_MISMATCH
    ok(c.run(B.key, "union.dissolve", UnionRef(uid), cosigners=(A.key,)))
    u = queries.union(c.state, uid)
    assert u is not None and u.status == UnionStatus.DISSOLVED and u.ended_height == c.height
    hist = queries.union_history(c.state, uid)
    assert [e.action for e in hist] == [UnionAction.CREATED, UnionAction.DISSOLVED_BY_PARTIES]
    assert c.run(B.key, "union.dissolve", UnionRef(uid), cosigners=(A.key,)).code == Code.WRONG_STATUS


def test_unilateral_dissolution_after_notice() -> None:
    c = Chain()
    uid = marry(c, notice=4)
    assert c.run(C.key, "union.notice", UnionRef(uid)).code == Code.UNAUTHORIZED
    ok(c.run(A.key, "union.notice", UnionRef(uid)))
    u = queries.union(c.state, uid)
    assert u is not None and u.status == UnionStatus.NOTICE and u.notice_due == c.height + 4
    assert c.run(B.key, "union.notice", UnionRef(uid)).code == Code.WRONG_STATUS
    c.until(u.notice_due - 1)
    assert queries.union(c.state, uid).status == UnionStatus.NOTICE  # type: ignore[union-attr]
    c.block()
    assert queries.union(c.state, uid).status == UnionStatus.DISSOLVED  # type: ignore[union-attr]
    assert [e.action for e in queries.union_history(c.state, uid)][-1] == UnionAction.DISSOLVED_BY_NOTICE


def test_mutual_dissolution_during_notice_cancels_the_pending_one() -> None:
    c = Chain()
    uid = marry(c)
    ok(c.run(A.key, "union.notice", UnionRef(uid)))
    ok(c.run(A.key, "union.dissolve", UnionRef(uid), cosigners=(B.key,)))
    c.until(c.height + 5)
    assert len(queries.union_history(c.state, uid)) == 3
    invariants.check(c.state)


def test_union_rejections() -> None:
    c = Chain()
    stranger = person(70)
    ok(c.run(stranger.key, "identity.register", RegisterIdentity(key_digest(stranger.next_key.public_key))))
    body = CreateUnion(UnionKind.MARRIAGE, "x", DOC, 3)
    assert c.run(A.key, "union.create", body).code == Code.PARTIES_MISMATCH
    assert c.run(A.key, "union.create", body, cosigners=(B.key, C.key)).code == Code.PARTIES_MISMATCH
    assert c.run(A.key, "union.create", body, cosigners=(OUTSIDER.key,)).code == Code.NOT_IDENTITY
    assert c.run(A.key, "union.create", body, cosigners=(stranger.key,)).code == Code.NOT_RESIDENT
    assert c.run(OUTSIDER.key, "union.create", body, cosigners=(A.key,)).code == Code.NOT_IDENTITY
    short = CreateUnion(UnionKind.MARRIAGE, "x", DOC, 2)
    assert c.run(A.key, "union.create", short, cosigners=(B.key,)).code == Code.INVALID
    assert c.run(A.key, "union.notice", UnionRef(99)).code == Code.NOT_FOUND
    assert c.run(A.key, "union.notice", UnionRef(1), cosigners=(B.key,)).code == Code.BAD_BODY


def test_contract_of_four_parties() -> None:
    c = Chain()
    body = CreateUnion(UnionKind.CONTRACT, "Cooperative bakery", DOC, 10)
    ok(c.run(A.key, "union.create", body, cosigners=(B.key, C.key, D.key)))
    uid = queries.unions_of(c.state, D.id)[0].id
    assert len(queries.union(c.state, uid).parties) == 4  # type: ignore[union-attr]
    # a party whose residency is suspended can still sign the dissolution
    ok(c.run(PEOPLE[0].key, "residency.suspend", ResidencyAction(D.id, "")))
    assert c.run(A.key, "union.dissolve", UnionRef(uid), cosigners=(B.key, C.key)).code == Code.PARTIES_MISMATCH
    ok(c.run(A.key, "union.dissolve", UnionRef(uid), cosigners=(B.key, C.key, D.key)))


def test_dissolution_by_governance_supersedes_a_pending_notice() -> None:
    c = Chain()
    uid = marry(c, notice=1000)
    ok(c.run(A.key, "union.notice", UnionRef(uid)))
    passed(c, ActionType.DISSOLVE_UNION, DissolveUnion(uid, "court order"))
    u = queries.union(c.state, uid)
    assert u is not None and u.status == UnionStatus.DISSOLVED
    assert queries.union_history(c.state, uid)[-1].action == UnionAction.DISSOLVED_BY_GOVERNANCE
    invariants.check(c.state)  # the notice's queue entry went with it
    c.until(u.notice_due or 0)  # type: ignore[arg-type]
    assert len(queries.union_history(c.state, uid)) == 3


def test_governance_dissolution_of_an_active_union() -> None:
    c = Chain()
    uid = marry(c, notice=1000)
    pid = passed(c, ActionType.DISSOLVE_UNION, DissolveUnion(uid, "court order"))
    last = queries.union_history(c.state, uid)[-1]
    assert (last.action, last.proposal_id) == (UnionAction.DISSOLVED_BY_GOVERNANCE, pid)


# ---------------------------------------------------------------- credentials


def issue(c: Chain, expires: int | None = None) -> int:
    ok(c.run(ISSUER.key, "credential.issue", IssueCredential(A.id, "diploma/bsc", DOC, expires)))
    return queries.credentials_of(c.state, A.id)[-1].credential.id


def test_issue_and_revoke() -> None:
    c = Chain()
    cid = issue(c)
    view = queries.credential(c.state, cid)
    assert view is not None and view.status == CredentialStatus.VALID
    assert (view.credential.issuer, view.credential.subject, view.credential.schema) == (ISSUER.id, A.id, "diploma/bsc")
    assert [v.credential.id for v in queries.credentials_by(c.state, ISSUER.id)] == [cid]
    assert c.run(B.key, "credential.revoke", RevokeCredential(cid, "")).code == Code.UNAUTHORIZED
    ok(c.run(ISSUER.key, "credential.revoke", RevokeCredential(cid, "plagiarism")))
    view = queries.credential(c.state, cid)
    assert view is not None and view.status == CredentialStatus.REVOKED
    assert view.credential.revoke_reason == "plagiarism"
    assert c.run(ISSUER.key, "credential.revoke", RevokeCredential(cid, "")).code == Code.WRONG_STATUS
    assert c.run(ISSUER.key, "credential.revoke", RevokeCredential(77, "")).code == Code.NOT_FOUND


def test_expiry() -> None:
    c = Chain()
    cid = issue(c, expires=3)
    c.until(3)
    assert queries.credential(c.state, cid).status == CredentialStatus.VALID  # type: ignore[union-attr]
    c.block()
    assert queries.credential(c.state, cid).status == CredentialStatus.EXPIRED  # type: ignore[union-attr]


def test_issue_rejections() -> None:
    c = Chain()
    c.block()
    assert c.run(A.key, "credential.issue", IssueCredential(B.id, "x", DOC, None)).code == Code.NOT_ISSUER
    assert c.run(OUTSIDER.key, "credential.issue", IssueCredential(B.id, "x", DOC, None)).code == Code.NOT_IDENTITY
    r = c.run(ISSUER.key, "credential.issue", IssueCredential(bytes(32), "x", DOC, None))
    assert r.code == Code.NOT_FOUND
    assert c.run(ISSUER.key, "credential.issue", IssueCredential(B.id, "", DOC, None)).code == Code.INVALID
    assert c.run(ISSUER.key, "credential.issue", IssueCredential(B.id, "x", DOC, 1)).code == Code.INVALID


def test_credentials_of_a_deaccredited_issuer_report_issuer_revoked() -> None:
    c = Chain()
    cid = issue(c)
    passed(c, ActionType.REVOKE_ISSUER, IdentityRef(ISSUER.id))
    assert queries.credential(c.state, cid).status == CredentialStatus.ISSUER_REVOKED  # type: ignore[union-attr]
    assert c.run(ISSUER.key, "credential.issue", IssueCredential(B.id, "x", DOC, None)).code == Code.NOT_ISSUER
    ok(c.run(ISSUER.key, "credential.revoke", RevokeCredential(cid, "withdrawn")))  # may still revoke its own
    assert queries.credential(c.state, cid).status == CredentialStatus.REVOKED  # type: ignore[union-attr]
