"""Read-only queries over committed state (any KVReader). None means "no such record"."""

from __future__ import annotations

from dataclasses import dataclass

from protocol import crypto
from protocol.governance import accounts, keys, notary
from protocol.governance import constitution as _constitution
from protocol.governance import credentials as _credentials
from protocol.governance import identity as _identity
from protocol.governance import proposals as _proposals
from protocol.governance import unions as _unions
from protocol.governance.accounts import Account, Supply
from protocol.governance.constitution import Article, ConstitutionVersion
from protocol.governance.context import load_u64, need
from protocol.governance.credentials import Credential, CredentialStatus, Issuer
from protocol.governance.genesis import ChainInfo
from protocol.governance.identity import Identity, Registrar
from protocol.governance.notary import NotaryRecord
from protocol.governance.params import Params
from protocol.governance.proposals import Proposal, VoteRecord
from protocol.governance.tally import Counts, Outcome
from protocol.governance.unions import Union, UnionEvent
from protocol.kv import KVReader

# ---------------------------------------------------------------- chain


def chain_info(state: KVReader) -> ChainInfo:
    return need(state, keys.META_CHAIN, ChainInfo)


def last_height(state: KVReader) -> int:
    return load_u64(state, keys.META_HEIGHT)


def last_time_ms(state: KVReader) -> int:
    return load_u64(state, keys.META_TIME)


def params(state: KVReader) -> Params:
    return need(state, keys.META_PARAMS, Params)


# ---------------------------------------------------------------- accounts


def account(state: KVReader, address: bytes) -> Account:
    """The account at `address` (all zero if it was never used)."""
    return accounts.get_account(state, address)


def account_nonce(state: KVReader, pubkey: bytes) -> int:
    """The next nonce of the key's account (what the mempool needs)."""
    return accounts.get_account(state, crypto.address(pubkey)).nonce


def supply(state: KVReader) -> Supply:
    return accounts.get_supply(state)


def locks(state: KVReader, address: bytes) -> list[tuple[int, int]]:
    """(proposal id, locked amount) of every vote lock on the account."""
    prefix = keys.LOCK + address
    return [(keys.read_u64(k[len(prefix) :]), keys.read_u64(v)) for k, v in state.scan(prefix)]


# ---------------------------------------------------------------- identities


def identity(state: KVReader, identity_id: bytes) -> Identity | None:
    return _identity.get_identity(state, identity_id)


def identity_by_key(state: KVReader, pubkey: bytes) -> Identity | None:
    return _identity.identity_of_key(state, pubkey)


def residents(state: KVReader) -> int:
    return _identity.residents(state)


def registrars(state: KVReader) -> list[tuple[bytes, Registrar]]:
    n = len(keys.REGISTRAR)
    return [(k[n:], Registrar.decode(v)) for k, v in state.scan(keys.REGISTRAR)]


def issuers(state: KVReader) -> list[tuple[bytes, Issuer]]:
    n = len(keys.ISSUER)
    return [(k[n:], Issuer.decode(v)) for k, v in state.scan(keys.ISSUER)]


# ---------------------------------------------------------------- proposals


@dataclass(frozen=True, slots=True)
class ProposalView:
    proposal: Proposal
    counts: Counts  # yes / no / abstain / veto weight
    participation: tuple[int, int]  # votes cast (abstain included), eligible
    outcome: Outcome | None  # final once decided; the standing tally while voting; None before


def proposal(state: KVReader, proposal_id: int) -> ProposalView | None:
    p = _proposals.get_proposal(state, proposal_id)
    if p is None:
        return None
    counts = _proposals.get_counts(state, proposal_id)
    started = p.status not in (_proposals.Status.PENDING, _proposals.Status.CANCELLED)
    return ProposalView(p, counts, (counts.cast, p.eligible), p.outcome(counts) if started else None)


def proposals(state: KVReader) -> list[Proposal]:
    return [Proposal.decode(v) for _, v in state.scan(keys.PROPOSAL)]


def votes(state: KVReader, proposal_id: int) -> list[tuple[bytes, VoteRecord]]:
    return _proposals.votes(state, proposal_id)


# ---------------------------------------------------------------- constitution


@dataclass(frozen=True, slots=True)
class ConstitutionView:
    version: int
    hash: bytes
    articles: tuple[Article, ...]


def constitution(state: KVReader) -> ConstitutionView:
    head = _constitution.head(state)
    return ConstitutionView(head.version, head.hash, tuple(_constitution.articles(state)))


def constitution_history(state: KVReader) -> list[ConstitutionVersion]:
    return _constitution.history(state)


def constitution_at(state: KVReader, version: int) -> list[Article] | None:
    return _constitution.at_version(state, version)


# ---------------------------------------------------------------- services


def notary_records(state: KVReader, doc_hash: bytes) -> list[NotaryRecord]:
    return notary.records(state, doc_hash)


def union(state: KVReader, union_id: int) -> Union | None:
    return _unions.get_union(state, union_id)


def union_history(state: KVReader, union_id: int) -> list[UnionEvent]:
    return _unions.history(state, union_id)


def unions_of(state: KVReader, identity_id: bytes) -> list[Union]:
    return _unions.unions_of(state, identity_id)


@dataclass(frozen=True, slots=True)
class CredentialView:
    credential: Credential
    status: CredentialStatus  # as of the last applied height


def credential(state: KVReader, credential_id: int) -> CredentialView | None:
    cred = _credentials.get_credential(state, credential_id)
    if cred is None:
        return None
    return CredentialView(cred, _credentials.status(state, cred, last_height(state)))


def credentials_of(state: KVReader, subject: bytes) -> list[CredentialView]:
    h = last_height(state)
    return [CredentialView(c, _credentials.status(state, c, h)) for c in _credentials.of_subject(state, subject)]


def credentials_by(state: KVReader, issuer_id: bytes) -> list[CredentialView]:
    h = last_height(state)
    return [CredentialView(c, _credentials.status(state, c, h)) for c in _credentials.of_issuer(state, issuer_id)]
