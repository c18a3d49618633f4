"""The genesis document (JSON) and the initial state it describes.

`Genesis.from_json` is strict: unknown fields, missing required fields, floats,
booleans where integers belong and malformed hex are `ValidationError`s naming the
field. `Genesis.hash` is SHA-256 of the canonical msgpack of the parsed document, so
two JSON spellings of the same genesis have one hash. See docs/governance.md.
"""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Annotated, Any

from protocol import crypto
from protocol.errors import DecodeError, ValidationError
from protocol.governance import accounts, apphash, constitution, identity, keys
from protocol.governance.constitution import Article
from protocol.governance.context import save
from protocol.governance.counters import Counters
from protocol.governance.credentials import Issuer, set_issuer
from protocol.governance.params import DEFAULT_PARAMS, Electorate, Params, Ratio, Track, TrackParams
from protocol.kv import MemoryKV, Overlay, WriteSet
from protocol.limits import MAX_CHAIN_ID, MAX_VALIDATORS, U64_MAX
from protocol.validators import MAX_POWER, ValidatorSet
from protocol.wire import BOOL, HASH, PUBKEY, U64, Int, Nested, Optional, Seq, Str, Struct, struct_list

MAX_GENESIS_ACCOUNTS = 1_000_000
MAX_GENESIS_IDENTITIES = 1_000_000


@dataclass(frozen=True, slots=True)
class GenesisValidator(Struct):
    pubkey: Annotated[bytes, PUBKEY]
    power: Annotated[int, Int(1, MAX_POWER)]


@dataclass(frozen=True, slots=True)
class GenesisAccount(Struct):
    address: Annotated[bytes, accounts.ADDRESS]
    balance: Annotated[int, U64]


@dataclass(frozen=True, slots=True)
class GenesisIdentity(Struct):
    pubkey: Annotated[bytes, PUBKEY]
    next_key_digest: Annotated[bytes, HASH]
    resident: Annotated[bool, BOOL]
    expires_at: Annotated[int | None, Optional(U64)]  # last active height; None: no expiry


@dataclass(frozen=True, slots=True)
class GenesisIssuer(Struct):
    pubkey: Annotated[bytes, PUBKEY]
    name: Annotated[str, Str(128)]


@dataclass(frozen=True, slots=True)
class ChainInfo(Struct):
    chain_id: Annotated[str, Str(MAX_CHAIN_ID)]
    genesis_time_ms: Annotated[int, U64]
    genesis_hash: Annotated[bytes, HASH]


@dataclass(frozen=True, slots=True)
class Genesis(Struct):
    MAX_BYTES = 256 * 1024 * 1024

    chain_id: Annotated[str, Str(MAX_CHAIN_ID)]
    genesis_time_ms: Annotated[int, U64]
    validators: Annotated[tuple[GenesisValidator, ...], struct_list(GenesisValidator, MAX_VALIDATORS)]
    accounts: Annotated[tuple[GenesisAccount, ...], struct_list(GenesisAccount, MAX_GENESIS_ACCOUNTS)]
    treasury: Annotated[int, U64]
    identities: Annotated[tuple[GenesisIdentity, ...], struct_list(GenesisIdentity, MAX_GENESIS_IDENTITIES)]
    registrars: Annotated[tuple[bytes, ...], Seq(PUBKEY, 10_000)]  # keys of listed identities
    issuers: Annotated[tuple[GenesisIssuer, ...], struct_list(GenesisIssuer, 10_000)]
    constitution: Annotated[tuple[Article, ...], struct_list(Article, constitution.MAX_ARTICLES)]
    params: Annotated[Params, Nested(Params)]

    @property
    def hash(self) -> bytes:
        return self.digest()

    @property
    def total_supply(self) -> int:
        return self.treasury + sum(a.balance for a in self.accounts)

    def validate(self) -> None:
        """Raise ValidationError naming the first problem."""
        problem = _problem(self)
        if problem is not None:
            raise ValidationError(f"genesis: {problem}")

    @staticmethod
    def from_json(text: str | bytes) -> Genesis:
        try:
            doc = json.loads(text, parse_float=_no_float, parse_constant=_no_float)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"genesis: not JSON: {exc}") from None
        g = _parse(doc)
        g.validate()
        return g

    def to_json(self) -> str:
        return json.dumps(_unparse(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _no_float(text: str) -> Any:
    raise ValidationError(f"genesis: {text} is not an integer (floats are not allowed)")


def _unique_sorted(items: list[Any]) -> bool:
    return items == sorted(set(items))


def _problem(g: Genesis) -> str | None:
    try:
        Genesis.decode(g.encode())  # every field within its wire bounds
    except DecodeError as exc:
        return exc.reason
    if not g.chain_id or not g.chain_id.isprintable():
        return "chain_id must be a non-empty printable string"
    if not g.validators:
        return "at least one validator is required"
    if not _unique_sorted([v.pubkey for v in g.validators]):
        return "validators must be unique and sorted by pubkey"
    if not _unique_sorted([a.address for a in g.accounts]):
        return "accounts must be unique and sorted by address"
    if any(a.balance == 0 for a in g.accounts):
        return "an account balance must be positive"
    if g.total_supply > U64_MAX:
        return "total supply exceeds 2^64 - 1"
    ids = {i.pubkey: i for i in g.identities}
    if not _unique_sorted([i.pubkey for i in g.identities]):
        return "identities must be unique and sorted by pubkey"
    for i in g.identities:
        if i.next_key_digest == identity.key_digest(i.pubkey):
            return f"identity {i.pubkey.hex()}: next key must differ from the current key"
        if i.expires_at is not None and (not i.resident or i.expires_at == 0):
            return f"identity {i.pubkey.hex()}: expires_at needs a residency and a height of at least 1"
    if not _unique_sorted(list(g.registrars)):
        return "registrars must be unique and sorted"
    for r in g.registrars:
        if r not in ids or not ids[r].resident:
            return f"registrar {r.hex()} must be a listed resident identity"
    if not _unique_sorted([i.pubkey for i in g.issuers]):
        return "issuers must be unique and sorted by pubkey"
    for iss in g.issuers:
        if iss.pubkey not in ids:
            return f"issuer {iss.pubkey.hex()} must be a listed identity"
        if not iss.name:
            return f"issuer {iss.pubkey.hex()} needs a name"
    if not g.constitution:
        return "the constitution needs at least one article"
    if not _unique_sorted([a.number for a in g.constitution]):
        return "articles must be unique and sorted by number"
    if any(not a.text for a in g.constitution):
        return "an article's text cannot be empty"
    return g.params.problem()


# ---------------------------------------------------------------- JSON


class _Doc:
    """A JSON object being read, with the path of each field for error messages."""

    def __init__(
        self, value: Any, path: str, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
    ) -> None:
        if not isinstance(value, dict):
            raise ValidationError(f"genesis: {path} must be an object")
        unknown = sorted(set(value) - required - optional)
        if unknown:
            raise ValidationError(f"genesis: {path} has unknown field(s) {', '.join(unknown)}")
        missing = sorted(required - set(value))
        if missing:
            raise ValidationError(f"genesis: {path} lacks field(s) {', '.join(missing)}")
        self.value: dict[str, Any] = value
        self.path = path

    def has(self, name: str) -> bool:
        return name in self.value

    def raw(self, name: str) -> Any:
        return self.value[name]

    def at(self, name: str) -> str:
        return f"{self.path}.{name}"

    def integer(self, name: str, lo: int = 0, hi: int = U64_MAX) -> int:
        v = self.value[name]
        if type(v) is not int or not lo <= v <= hi:
            raise ValidationError(f"genesis: {self.at(name)} must be an integer in [{lo}, {hi}]")
        return v

    def string(self, name: str, max_bytes: int) -> str:
        v = self.value[name]
        if type(v) is not str or len(v.encode()) > max_bytes:
            raise ValidationError(f"genesis: {self.at(name)} must be a string of at most {max_bytes} bytes")
        return v

    def boolean(self, name: str) -> bool:
        v = self.value[name]
        if type(v) is not bool:
            raise ValidationError(f"genesis: {self.at(name)} must be true or false")
        return v

    def hex(self, name: str, size: int) -> bytes:
        return _hex(self.value[name], self.at(name), size)

    def items(self, name: str) -> list[Any]:
        v = self.value.get(name, [])
        if type(v) is not list:
            raise ValidationError(f"genesis: {self.at(name)} must be a list")
        return v

    def ratio(self, name: str) -> Ratio:
        v = self.value[name]
        try:
            if type(v) is not str:
                raise ValueError
            return Ratio.parse(v)
        except ValueError:
            raise ValidationError(f"genesis: {self.at(name)} must be a fraction like \"2/3\" (at most 1)") from None


_HEX = frozenset("0123456789abcdefABCDEF")


def _hex(v: Any, path: str, size: int) -> bytes:
    try:
        if type(v) is not str or len(v) != 2 * size or not all(ch in _HEX for ch in v):
            raise ValueError
        return bytes.fromhex(v)
    except ValueError:
        raise ValidationError(f"genesis: {path} must be {2 * size} hex digits") from None


_TRACK_FIELDS = {
    "min_deposit",
    "voting_delay",
    "voting_period",
    "quorum",
    "threshold",
    "veto",
    "timelock",
    "electorate",
    "allow_vote_change",
}


def _parse_track(v: Any, path: str, default: TrackParams) -> TrackParams:
    d = _Doc(v, path, set(), _TRACK_FIELDS)
    electorate = default.electorate
    if d.has("electorate"):
        name = d.raw("electorate")
        if name not in ("residents", "tokens"):
            raise ValidationError(f"genesis: {d.at('electorate')} must be \"residents\" or \"tokens\"")
        electorate = Electorate.RESIDENTS if name == "residents" else Electorate.TOKENS
    return TrackParams(
        track=default.track,
        min_deposit=d.integer("min_deposit") if d.has("min_deposit") else default.min_deposit,
        voting_delay=d.integer("voting_delay") if d.has("voting_delay") else default.voting_delay,
        voting_period=d.integer("voting_period", 1) if d.has("voting_period") else default.voting_period,
        quorum=d.ratio("quorum") if d.has("quorum") else default.quorum,
        threshold=d.ratio("threshold") if d.has("threshold") else default.threshold,
        veto=d.ratio("veto") if d.has("veto") else default.veto,
        timelock=d.integer("timelock") if d.has("timelock") else default.timelock,
        electorate=electorate,
        allow_vote_change=d.boolean("allow_vote_change") if d.has("allow_vote_change") else default.allow_vote_change,
    )


def _parse_params(v: Any) -> Params:
    p = DEFAULT_PARAMS
    fields = {"fee", "cancel_burn", "min_notice_period", "max_evidence_age", "evidence_penalty", "tracks"}
    d = _Doc(v, "params", set(), fields)
    tracks = {t.track: t for t in p.tracks}
    if d.has("tracks"):
        names = {t.name.lower(): t for t in Track}
        td = _Doc(d.raw("tracks"), "params.tracks", set(), set(names))
        for name in sorted(td.value):
            tracks[names[name]] = _parse_track(td.raw(name), td.at(name), tracks[names[name]])
    return Params(
        fee=d.integer("fee") if d.has("fee") else p.fee,
        cancel_burn=d.ratio("cancel_burn") if d.has("cancel_burn") else p.cancel_burn,
        min_notice_period=d.integer("min_notice_period") if d.has("min_notice_period") else p.min_notice_period,
        max_evidence_age=d.integer("max_evidence_age") if d.has("max_evidence_age") else p.max_evidence_age,
        evidence_penalty=d.ratio("evidence_penalty") if d.has("evidence_penalty") else p.evidence_penalty,
        tracks=tuple(tracks[t] for t in Track),
    )


def _parse(doc: Any) -> Genesis:
    top_required = {"chain_id", "genesis_time_ms", "validators"}
    top_optional = {"accounts", "treasury", "identities", "registrars", "issuers", "constitution", "params"}
    d = _Doc(doc, "genesis", top_required, top_optional)
    validators = []
    for i, v in enumerate(d.items("validators")):
        vd = _Doc(v, f"validators[{i}]", {"pubkey", "power"})
        validators.append(GenesisValidator(vd.hex("pubkey", 32), vd.integer("power", 1, MAX_POWER)))
    accts = []
    for i, v in enumerate(d.items("accounts")):
        ad = _Doc(v, f"accounts[{i}]", {"balance"}, {"address", "pubkey"})
        if ad.has("address") == ad.has("pubkey"):
            raise ValidationError(f"genesis: accounts[{i}] needs exactly one of address, pubkey")
        addr = ad.hex("address", 20) if ad.has("address") else crypto.address(ad.hex("pubkey", 32))
        accts.append(GenesisAccount(addr, ad.integer("balance")))
    idents = []
    for i, v in enumerate(d.items("identities")):
        idd = _Doc(v, f"identities[{i}]", {"pubkey", "next_key_digest"}, {"resident", "expires_at"})
        expires = idd.raw("expires_at") if idd.has("expires_at") else None
        idents.append(
            GenesisIdentity(
                idd.hex("pubkey", 32),
                idd.hex("next_key_digest", 32),
                idd.boolean("resident") if idd.has("resident") else False,
                None if expires is None else idd.integer("expires_at"),
            )
        )
    registrars = [_hex(r, f"registrars[{i}]", 32) for i, r in enumerate(d.items("registrars"))]
    issuers = []
    for i, v in enumerate(d.items("issuers")):
        isd = _Doc(v, f"issuers[{i}]", {"pubkey", "name"})
        issuers.append(GenesisIssuer(isd.hex("pubkey", 32), isd.string("name", 128)))
    arts = []
    for i, v in enumerate(d.items("constitution")):
        cd = _Doc(v, f"constitution[{i}]", {"number", "text"})
        arts.append(Article(cd.integer("number", 1, 2**32 - 1), cd.string("text", constitution.MAX_ARTICLE)))
    try:
        params = _parse_params(d.raw("params") if d.has("params") else {})
    except ValueError as exc:
        raise ValidationError(f"genesis: params: {exc}") from None
    return Genesis(
        chain_id=d.string("chain_id", MAX_CHAIN_ID),
        genesis_time_ms=d.integer("genesis_time_ms"),
        validators=tuple(sorted(validators, key=lambda x: x.pubkey)),
        accounts=tuple(sorted(accts, key=lambda x: x.address)),
        treasury=d.integer("treasury") if d.has("treasury") else 0,
        identities=tuple(sorted(idents, key=lambda x: x.pubkey)),
        registrars=tuple(sorted(registrars)),
        issuers=tuple(sorted(issuers, key=lambda x: x.pubkey)),
        constitution=tuple(sorted(arts, key=lambda x: x.number)),
        params=params,
    )


def _unparse_track(t: TrackParams) -> dict[str, Any]:
    return {
        "min_deposit": t.min_deposit,
        "voting_delay": t.voting_delay,
        "voting_period": t.voting_period,
        "quorum": str(t.quorum),
        "threshold": str(t.threshold),
        "veto": str(t.veto),
        "timelock": t.timelock,
        "electorate": t.electorate.name.lower(),
        "allow_vote_change": t.allow_vote_change,
    }


def _unparse(g: Genesis) -> dict[str, Any]:
    p = g.params
    return {
        "chain_id": g.chain_id,
        "genesis_time_ms": g.genesis_time_ms,
        "validators": [{"pubkey": v.pubkey.hex(), "power": v.power} for v in g.validators],
        "accounts": [{"address": a.address.hex(), "balance": a.balance} for a in g.accounts],
        "treasury": g.treasury,
        "identities": [
            {
                "pubkey": i.pubkey.hex(),
                "next_key_digest": i.next_key_digest.hex(),
                "resident": i.resident,
                "expires_at": i.expires_at,
            }
            for i in g.identities
        ],
        "registrars": [r.hex() for r in g.registrars],
        "issuers": [{"pubkey": i.pubkey.hex(), "name": i.name} for i in g.issuers],
        "constitution": [{"number": a.number, "text": a.text} for a in g.constitution],
        "params": {
            "fee": p.fee,
            "cancel_burn": str(p.cancel_burn),
            "min_notice_period": p.min_notice_period,
            "max_evidence_age": p.max_evidence_age,
            "evidence_penalty": str(p.evidence_penalty),
            "tracks": {t.track.name.lower(): _unparse_track(t) for t in p.tracks},
        },
    }


# ---------------------------------------------------------------- initial state


def init_state(genesis: Genesis) -> WriteSet:
    """The genesis state as one sorted write set, app hash and height 0 included."""
    genesis.validate()
    kv = Overlay(MemoryKV())
    save(kv, keys.META_CHAIN, ChainInfo(genesis.chain_id, genesis.genesis_time_ms, genesis.hash))
    kv.put(keys.META_HEIGHT, keys.u64(0))
    kv.put(keys.META_TIME, keys.u64(genesis.genesis_time_ms))
    save(kv, keys.META_PARAMS, genesis.params)
    save(kv, keys.META_COUNTERS, Counters(0, 0, 0))
    kv.put(keys.META_RESIDENTS, keys.u64(0))
    save(kv, keys.META_SUPPLY, accounts.Supply(genesis.total_supply, genesis.treasury, 0, 0))
    for a in genesis.accounts:
        accounts.put_account(kv, a.address, accounts.Account(a.balance, 0, 0, None))
    ids: dict[bytes, bytes] = {}
    for gi in genesis.identities:
        ident = identity.bind_new_identity(kv, gi.pubkey, gi.next_key_digest, 0)
        ids[gi.pubkey] = ident.id
        if gi.resident:
            identity.grant(kv, ident, gi.expires_at, 0, None)
    for r in genesis.registrars:
        save(kv, keys.registrar(ids[r]), identity.Registrar(0, None))
    for iss in genesis.issuers:
        set_issuer(kv, ids[iss.pubkey], Issuer(iss.name, True, 0, None))
    constitution.init(kv, genesis.constitution, 0)
    vset = ValidatorSet.of([(v.pubkey, v.power) for v in genesis.validators])
    kv.put(keys.validators(1), vset.encode())
    ws = kv.write_set()
    kv.put(keys.META_APP_HASH, apphash.chain(apphash.ZERO, 0, ws))
    return kv.write_set()


def genesis_app_hash(write_set: WriteSet) -> bytes:
    """The app hash inside a write set from `init_state`."""
    for k, v in write_set:
        if k == keys.META_APP_HASH and v is not None:
            return v
    raise LookupError("the write set carries no app hash")
