"""The state key layout. `docs/governance.md` is its specification.

Every key is an ASCII prefix ending in "/" followed by fixed-width parts; integers
are big-endian so that a prefix scan returns records in numeric order. No prefix is
a prefix of another one's scan range.
"""

from __future__ import annotations

U64_MAX = 2**64 - 1

META_CHAIN = b"m/chain"  # ChainInfo
META_HEIGHT = b"m/height"  # u64: last applied height (0 = genesis)
META_TIME = b"m/time"  # u64: time_ms of the last applied block (genesis time at 0)
META_APP_HASH = b"m/app_hash"  # 32 bytes; not part of its own digest
META_SUPPLY = b"m/supply"  # Supply
META_PARAMS = b"m/params"  # Params
META_COUNTERS = b"m/counters"  # Counters
META_RESIDENTS = b"m/residents"  # u64: identities whose residency is ACTIVE

ACCOUNT = b"a/"  # a/ address(20) -> Account
LOCK = b"l/"  # l/ address(20) proposal(8) -> u64 vote lock
IDENTITY = b"i/"  # i/ identity id(32) -> Identity
KEY = b"k/"  # k/ pubkey(32) -> identity id: current keys only
KEY_USED = b"kh/"  # kh/ pubkey(32) -> identity id: every key ever bound
REGISTRAR = b"rg/"  # rg/ identity id -> Registrar
ISSUER = b"is/"  # is/ identity id -> Issuer
PROPOSAL = b"p/"  # p/ proposal id(8) -> Proposal (fixed while it is voted on)
TALLY = b"pt/"  # pt/ proposal id(8) -> Counts: the running tally
VOTE = b"v/"  # v/ proposal id(8) voter(32 identity id | 20 address) -> VoteRecord
ARTICLE = b"c/art/"  # c/art/ number(4) -> Article
CONSTITUTION_HEAD = b"c/head"  # ConstitutionVersion (current)
CONSTITUTION_VERSION = b"c/ver/"  # c/ver/ version(4) -> ConstitutionVersion
NOTARY = b"n/"  # n/ document hash(32) height(8) tx index(4) -> NotaryRecord
UNION = b"u/"  # u/ union id(8) -> Union
UNION_EVENT = b"uh/"  # uh/ union id(8) seq(4) -> UnionEvent
UNION_PARTY = b"up/"  # up/ identity id(32) union id(8) -> b""
CREDENTIAL = b"cr/"  # cr/ credential id(8) -> Credential
CREDENTIAL_SUBJECT = b"cs/"  # cs/ subject id(32) credential id(8) -> b""
CREDENTIAL_ISSUER = b"ci/"  # ci/ issuer id(32) credential id(8) -> b""
VALIDATORS = b"vs/"  # vs/ first height(8) -> ValidatorSet signing from that height on
EVIDENCE = b"ev/"  # ev/ pubkey(32) height(8) -> b"": offence already punished
QUEUE = b"q/"  # q/ due height(8) kind(1) id -> b"": end-of-block work


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def read_u64(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def account(address: bytes) -> bytes:
    return ACCOUNT + address


def lock(address: bytes, proposal_id: int) -> bytes:
    return LOCK + address + u64(proposal_id)


def identity(identity_id: bytes) -> bytes:
    return IDENTITY + identity_id


def key(pubkey: bytes) -> bytes:
    return KEY + pubkey


def key_used(pubkey: bytes) -> bytes:
    return KEY_USED + pubkey


def registrar(identity_id: bytes) -> bytes:
    return REGISTRAR + identity_id


def issuer(identity_id: bytes) -> bytes:
    return ISSUER + identity_id


def proposal(proposal_id: int) -> bytes:
    return PROPOSAL + u64(proposal_id)


def tally(proposal_id: int) -> bytes:
    return TALLY + u64(proposal_id)


def votes(proposal_id: int) -> bytes:
    return VOTE + u64(proposal_id)


def vote(proposal_id: int, voter: bytes) -> bytes:
    return VOTE + u64(proposal_id) + voter


def article(number: int) -> bytes:
    return ARTICLE + u32(number)


def constitution_version(version: int) -> bytes:
    return CONSTITUTION_VERSION + u32(version)


def notary(doc_hash: bytes, height: int, index: int) -> bytes:
    return NOTARY + doc_hash + u64(height) + u32(index)


def union(union_id: int) -> bytes:
    return UNION + u64(union_id)


def union_event(union_id: int, seq: int) -> bytes:
    return UNION_EVENT + u64(union_id) + u32(seq)


def union_party(identity_id: bytes, union_id: int) -> bytes:
    return UNION_PARTY + identity_id + u64(union_id)


def credential(credential_id: int) -> bytes:
    return CREDENTIAL + u64(credential_id)


def credential_subject(subject: bytes, credential_id: int) -> bytes:
    return CREDENTIAL_SUBJECT + subject + u64(credential_id)


def credential_issuer(issuer_id: bytes, credential_id: int) -> bytes:
    return CREDENTIAL_ISSUER + issuer_id + u64(credential_id)


def validators(first_height: int) -> bytes:
    return VALIDATORS + u64(first_height)


def evidence(pubkey: bytes, height: int) -> bytes:
    return EVIDENCE + pubkey + u64(height)


def queue(due: int, kind: int, item: bytes) -> bytes:
    return QUEUE + u64(due) + bytes([kind]) + item
