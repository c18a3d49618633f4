"""Identities with pre-rotated keys, residency and its statuses, registrars."""

from __future__ import annotations

import pytest
from gov_helpers import BALANCE, OUTSIDER, PEOPLE, Chain, Person, kp, ok, person

from protocol.governance import Code, check_tx, invariants, queries
from protocol.governance.accounts import Transfer
from protocol.governance.identity import (
    GrantResidency,
    RegisterIdentity,
    Residency,
    ResidencyAction,
    RotateKey,
    derive_id,
    key_digest,
)

REG = PEOPLE[0]  # the genesis registrar
NEWBIE = person(60)


def register(c: Chain, p: Person = NEWBIE) -> None:
    ok(c.run(p.key, "identity.register", RegisterIdentity(key_digest(p.next_key.public_key))))


def status(c: Chain, iid: bytes) -> Residency:
    ident = queries.identity(c.state, iid)
    assert ident is not None
    return ident.residency


def test_register_derives_the_id_from_the_inception_key_and_next_digest() -> None:
    c = Chain()
    register(c)
    ident = queries.identity_by_key(c.state, NEWBIE.pub)
    assert ident is not None
    assert ident.id == NEWBIE.id == derive_id(NEWBIE.pub, key_digest(NEWBIE.next_key.public_key))
    assert ident.residency == Residency.NONE and ident.key_seq == 0


def test_register_rejections() -> None:
    c = Chain()
    r = c.run(PEOPLE[2].key, "identity.register", RegisterIdentity(bytes(32)))
    assert r.code == Code.KEY_REUSED
    r = c.run(NEWBIE.key, "identity.register", RegisterIdentity(key_digest(NEWBIE.pub)))
    assert r.code == Code.INVALID


def test_rotation_is_signed_by_the_committed_next_key() -> None:
    c = Chain()
    me = PEOPLE[3]
    third = kp(5555)
    ok(c.run(me.next_key, "identity.rotate", RotateKey(me.id, key_digest(third.public_key))))
    ident = queries.identity(c.state, me.id)
    assert ident is not None
    assert (ident.key, ident.key_seq) == (me.next_key.public_key, 1)
    assert ident.next_key_digest == key_digest(third.public_key)
    assert queries.identity_by_key(c.state, me.pub) is None
    # the old key's tokens followed the identity; the old account is retired
    assert queries.account(c.state, me.next_key.address).balance == BALANCE
    old = queries.account(c.state, me.address)
    assert old.balance == 0 and old.retired_to == me.next_key.address
    # the old (possibly stolen) key can neither send nor rotate again
    assert c.run(me.key, "transfer", Transfer(OUTSIDER.address, 1, "")).code == Code.KEY_RETIRED
    assert check_tx(c.state, c.tx(me.key, "transfer", Transfer(OUTSIDER.address, 1, ""))).code == Code.KEY_RETIRED
    # tokens sent to the retired address reach the new key
    ok(c.run(OUTSIDER.key, "transfer", Transfer(me.address, 10, "")))
    assert queries.account(c.state, me.next_key.address).balance == BALANCE + 10
    # the identity keeps its residency and can rotate again with the next committed key
    assert ident.residency == Residency.ACTIVE
    ok(c.run(third, "identity.rotate", RotateKey(me.id, key_digest(kp(5556).public_key))))
    invariants.check(c.state, c.genesis.total_supply)


def test_a_stolen_current_key_cannot_take_over() -> None:
    c = Chain()
    me = PEOPLE[3]
    r = c.run(me.key, "identity.rotate", RotateKey(me.id, key_digest(kp(6666).public_key)))
    assert r.code == Code.NEXT_KEY_MISMATCH
    r = c.run(kp(6666), "identity.rotate", RotateKey(me.id, key_digest(kp(6667).public_key)))
    assert r.code == Code.NEXT_KEY_MISMATCH
    assert queries.identity(c.state, me.id).key == me.pub  # type: ignore[union-attr]


def test_rotation_rejections() -> None:
    c = Chain()
    me = PEOPLE[3]
    r = c.run(me.next_key, "identity.rotate", RotateKey(bytes(32), bytes(32)))
    assert r.code == Code.NOT_FOUND
    r = c.run(me.next_key, "identity.rotate", RotateKey(me.id, key_digest(me.next_key.public_key)))
    assert r.code == Code.INVALID


def test_grant_suspend_reinstate_revoke() -> None:
    c = Chain()
    register(c)
    assert queries.residents(c.state) == 6
    ok(c.run(REG.key, "residency.grant", GrantResidency(NEWBIE.id, 1_000)))
    assert status(c, NEWBIE.id) == Residency.ACTIVE and queries.residents(c.state) == 7
    ident = queries.identity(c.state, NEWBIE.id)
    assert ident is not None and ident.granted_by == REG.id and ident.expires_at == 1_000
    ok(c.run(REG.key, "residency.suspend", ResidencyAction(NEWBIE.id, "unpaid dues")))
    assert status(c, NEWBIE.id) == Residency.SUSPENDED and queries.residents(c.state) == 6
    ok(c.run(REG.key, "residency.reinstate", ResidencyAction(NEWBIE.id, "paid")))
    assert status(c, NEWBIE.id) == Residency.ACTIVE and queries.residents(c.state) == 7
    ok(c.run(REG.key, "residency.revoke", ResidencyAction(NEWBIE.id, "fraud")))
    assert status(c, NEWBIE.id) == Residency.REVOKED and queries.residents(c.state) == 6
    r = c.run(REG.key, "residency.grant", GrantResidency(NEWBIE.id, 2_000))
    assert r.code == Code.WRONG_STATUS  # revocation is final
    invariants.check(c.state)


def test_expiry_and_renewal() -> None:
    c = Chain()
    register(c)
    ok(c.run(REG.key, "residency.grant", GrantResidency(NEWBIE.id, c.height + 3)))
    ok(c.run(REG.key, "residency.grant", GrantResidency(NEWBIE.id, c.height + 5)))  # renewal moves the expiry
    invariants.check(c.state)
    due = queries.identity(c.state, NEWBIE.id).expires_at  # type: ignore[union-attr]
    assert due is not None
    c.until(due - 1)
    assert status(c, NEWBIE.id) == Residency.ACTIVE
    c.block()
    assert status(c, NEWBIE.id) == Residency.EXPIRED and queries.residents(c.state) == 6
    ok(c.run(REG.key, "residency.grant", GrantResidency(NEWBIE.id, c.height + 10)))  # expired may be granted again
    assert status(c, NEWBIE.id) == Residency.ACTIVE
    invariants.check(c.state)


def test_suspended_residency_still_expires() -> None:
    c = Chain()
    register(c)
    ok(c.run(REG.key, "residency.grant", GrantResidency(NEWBIE.id, c.height + 3)))
    ok(c.run(REG.key, "residency.suspend", ResidencyAction(NEWBIE.id, "")))
    c.until(c.height + 3)
    assert status(c, NEWBIE.id) == Residency.EXPIRED and queries.residents(c.state) == 6
    assert c.run(REG.key, "residency.reinstate", ResidencyAction(NEWBIE.id, "")).code == Code.WRONG_STATUS
    ok(c.run(REG.key, "residency.revoke", ResidencyAction(NEWBIE.id, "")))  # expired can still be revoked
    invariants.check(c.state)


@pytest.mark.parametrize(
    ("kind", "body", "code"),
    [
        ("residency.grant", GrantResidency(NEWBIE.id, 10**6), Code.NOT_FOUND),
        ("residency.suspend", ResidencyAction(PEOPLE[4].id, ""), Code.OK),
        ("residency.reinstate", ResidencyAction(PEOPLE[4].id, ""), Code.WRONG_STATUS),
        ("residency.revoke", ResidencyAction(bytes(32), ""), Code.NOT_FOUND),
        ("residency.grant", GrantResidency(PEOPLE[4].id, 1), Code.INVALID),
    ],
)
def test_registrar_tx_rejections(kind: str, body: object, code: Code) -> None:
    c = Chain()
    c.block()
    assert c.run(REG.key, kind, body).code == code  # type: ignore[arg-type]


def test_only_active_registrars_act() -> None:
    c = Chain()
    register(c)
    assert c.run(PEOPLE[2].key, "residency.grant", GrantResidency(NEWBIE.id, 99)).code == Code.NOT_REGISTRAR
    assert c.run(OUTSIDER.key, "residency.grant", GrantResidency(NEWBIE.id, 99)).code == Code.NOT_IDENTITY
    ok(c.run(REG.key, "residency.suspend", ResidencyAction(REG.id, "self-suspension")))
    assert c.run(REG.key, "residency.grant", GrantResidency(NEWBIE.id, 99)).code == Code.NOT_REGISTRAR


def test_suspend_twice_and_revoke_twice() -> None:
    c = Chain()
    ok(c.run(REG.key, "residency.suspend", ResidencyAction(PEOPLE[5].id, "")))
    assert c.run(REG.key, "residency.suspend", ResidencyAction(PEOPLE[5].id, "")).code == Code.WRONG_STATUS
    ok(c.run(REG.key, "residency.revoke", ResidencyAction(PEOPLE[5].id, "")))
    assert c.run(REG.key, "residency.revoke", ResidencyAction(PEOPLE[5].id, "")).code == Code.WRONG_STATUS
    assert c.run(REG.key, "residency.grant", GrantResidency(PEOPLE[5].id, 99)).code == Code.WRONG_STATUS


def test_rotation_to_a_key_already_bound_elsewhere_is_refused() -> None:
    c = Chain()
    me = PEOPLE[4]
    # the holder of the next key used it as the inception key of a second identity
    ok(c.run(me.next_key, "identity.register", RegisterIdentity(key_digest(kp(7777).public_key))))
    r = c.run(me.next_key, "identity.rotate", RotateKey(me.id, key_digest(kp(7778).public_key)))
    assert r.code == Code.KEY_REUSED


def test_a_residency_without_expiry_is_not_given_one() -> None:
    c = Chain()
    r = c.run(REG.key, "residency.grant", GrantResidency(PEOPLE[3].id, 500))
    assert r.code == Code.WRONG_STATUS and "no expiry" in r.reason
