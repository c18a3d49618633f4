"""The genesis document: strict JSON, canonical hash, the initial state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gov_helpers import BALANCE, OUTSIDER, PEOPLE, TREASURY, VALIDATORS, genesis, genesis_doc

from protocol.errors import ValidationError
from protocol.governance import Genesis, app_hash, genesis_app_hash, init_state, invariants, queries, validators_for
from protocol.governance.identity import Residency
from protocol.governance.params import DEFAULT_PARAMS, Electorate, Ratio, Track
from protocol.kv import MemoryKV


def load(ws: Any) -> MemoryKV:
    kv = MemoryKV()
    kv.apply(ws)
    return kv


def test_json_round_trip_and_hash_is_spelling_independent() -> None:
    g = genesis()
    again = Genesis.from_json(g.to_json())
    assert again == g and again.hash == g.hash
    doc = genesis_doc()
    doc["accounts"] = list(reversed(doc["accounts"]))  # order in the file does not matter
    assert Genesis.from_json(json.dumps(doc, indent=4)).hash == g.hash


def test_minimal_genesis_uses_default_params() -> None:
    g = Genesis.from_json(
        json.dumps({"chain_id": "c", "genesis_time_ms": 0, "validators": [{"pubkey": "11" * 32, "power": 1}],
                    "constitution": [{"number": 1, "text": "x"}]})
    )
    assert g.params == DEFAULT_PARAMS
    c = g.params.track(Track.CONSTITUTIONAL)
    assert (c.quorum, c.threshold, c.electorate) == (Ratio(2, 5), Ratio(2, 3), Electorate.RESIDENTS)


def test_track_override_keeps_unnamed_fields() -> None:
    g = genesis(params={"tracks": {"law": {"quorum": "1/10", "electorate": "tokens"}}})
    law = g.params.track(Track.LAW)
    assert law.quorum == Ratio(1, 10) and law.electorate == Electorate.TOKENS
    assert law.threshold == DEFAULT_PARAMS.track(Track.LAW).threshold


def mutate(path: list[Any], value: Any) -> str:
    doc = genesis_doc()
    target = doc
    for p in path[:-1]:
        target = target[p]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["chain_id"], KeyError, "lacks field(s) chain_id"),
        (["colour"], "blue", "unknown field(s) colour"),
        (["treasury"], 1.5, "floats are not allowed"),
        (["treasury"], True, "genesis.treasury must be an integer"),
        (["treasury"], -1, "genesis.treasury must be an integer"),
        (["genesis_time_ms"], "0", "genesis.genesis_time_ms must be an integer"),
        (["validators"], [], "at least one validator"),
        (["validators", 0, "pubkey"], "zz" * 32, "validators[0].pubkey must be 64 hex digits"),
        (["validators", 0, "pubkey"], "aa " * 21 + "a", "validators[0].pubkey must be 64 hex digits"),
        (["validators", 0, "power"], 0, "validators[0].power must be an integer in [1,"),
        (["accounts", 0, "balance"], 0, "balance must be positive"),
        (["accounts", 1, "pubkey"], PEOPLE[0].pub.hex(), "accounts must be unique"),
        (["registrars"], [OUTSIDER.pub.hex()], "must be a listed resident identity"),
        (["issuers", 0, "pubkey"], OUTSIDER.pub.hex(), "must be a listed identity"),
        (["constitution"], [], "at least one article"),
        (["constitution", 0, "text"], "", "text cannot be empty"),
        (["params", "tracks", "law", "threshold"], "1/3", "below 1/2"),
        (["params", "tracks", "law", "quorum"], "3/2", "fraction like"),
        (["params", "tracks", "law", "quorum"], "0.4", "fraction like"),
        (["params", "tracks", "law", "electorate"], "everyone", "residents"),
        (["params", "tracks", "senate"], {}, "unknown field(s) senate"),
        (["params", "tracks", "law", "voting_period"], 0, "voting_period must be an integer in [1,"),
        (["identities", 0, "expires_at"], 0, "expires_at"),
    ],
)
def test_invalid_genesis_is_refused_with_a_clear_reason(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        Genesis.from_json(mutate(path, value))
    assert message in str(err.value)


def test_not_json_at_all() -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        Genesis.from_json("{")
    with pytest.raises(ValidationError, match="must be an object"):
        Genesis.from_json("[]")


def test_account_needs_exactly_one_of_address_or_pubkey() -> None:
    doc = genesis_doc()
    doc["accounts"][0]["address"] = "00" * 20
    with pytest.raises(ValidationError, match="exactly one of address, pubkey"):
        Genesis.from_json(json.dumps(doc))


def test_initial_state() -> None:
    g = genesis()
    ws = init_state(g)
    assert ws == init_state(g)  # deterministic
    kv = load(ws)
    assert app_hash(kv) == genesis_app_hash(ws)
    assert queries.last_height(kv) == 0
    assert queries.chain_info(kv).genesis_hash == g.hash
    s = queries.supply(kv)
    assert (s.total, s.treasury, s.escrow, s.burned) == (TREASURY + 7 * BALANCE, TREASURY, 0, 0)
    assert queries.account(kv, OUTSIDER.address).balance == BALANCE
    assert queries.residents(kv) == len(PEOPLE)
    me = queries.identity_by_key(kv, PEOPLE[2].pub)
    assert me is not None and me.id == PEOPLE[2].id and me.residency == Residency.ACTIVE
    assert [r for r, _ in queries.registrars(kv)] == [PEOPLE[0].id]
    assert [(i, rec.name) for i, rec in queries.issuers(kv)] == [(PEOPLE[1].id, "Open University")]
    view = queries.constitution(kv)
    assert view.version == 1 and [a.number for a in view.articles] == [1, 2, 3]
    for h in (0, 1, 2, 50):
        assert validators_for(kv, h).hash == validators_for(kv, 1).hash
    assert {v.pubkey for v in validators_for(kv, 1).validators} == {v.public_key for v in VALIDATORS}
    invariants.check(kv, g.total_supply)


def test_genesis_residency_expiry_is_scheduled() -> None:
    doc = genesis_doc()
    doc["identities"][3]["expires_at"] = 4
    g = Genesis.from_json(json.dumps(doc))
    from gov_helpers import Chain

    c = Chain(g)
    c.until(3)
    assert queries.identity(c.state, PEOPLE[3].id).residency == Residency.ACTIVE  # type: ignore[union-attr]
    c.block()  # txs of block 4 still see an active residency; it ends with the block
    assert queries.identity(c.state, PEOPLE[3].id).residency == Residency.EXPIRED  # type: ignore[union-attr]
    assert queries.residents(c.state) == len(PEOPLE) - 1
