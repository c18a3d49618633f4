"""The wire and storage types of ekklesia: transactions, blocks, proposals, votes,
commits and evidence. All are frozen, slotted wire structs (see `protocol.wire`);
`docs/wire-format.md` is their specification.

Signing payloads exclude the signatures themselves; the signed bytes add the
domain, chain id and kind (`protocol.crypto.sign_bytes`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from protocol import codec, crypto, merkle
from protocol.limits import (
    MAX_BLOCK_BYTES,
    MAX_BLOCK_TXS,
    MAX_CHAIN_ID,
    MAX_COSIGNATURES,
    MAX_EVIDENCE,
    MAX_KIND,
    MAX_PROPOSAL_BYTES,
    MAX_ROUND,
    MAX_TX_BODY,
    MAX_TX_BYTES,
    MAX_VALIDATORS,
    MAX_VOTE_BYTES,
)
from protocol.wire import (
    HASH,
    PUBKEY,
    SIGNATURE,
    U64,
    Bytes,
    Enum,
    Int,
    Nested,
    Optional,
    Str,
    Struct,
    struct_list,
)

ZERO_HASH = bytes(32)
Round = Annotated[int, Int(0, MAX_ROUND)]
PolRound = Annotated[int, Int(-1, MAX_ROUND)]  # a polka's round, or -1


# ---------------------------------------------------------------- transactions


@dataclass(frozen=True, slots=True)
class CoSignature(Struct):
    """A further party's signature of the same transaction signing payload."""

    signer: Annotated[bytes, PUBKEY]
    signature: Annotated[bytes, SIGNATURE]


@dataclass(frozen=True, slots=True)
class Tx(Struct):
    """The envelope of every governance action. `body` is the canonical encoding of
    the kind's own struct (defined by the governance state machine), so the envelope
    can be checked and relayed without knowing every kind."""

    MAX_BYTES = MAX_TX_BYTES
    KEEP_ENCODING = True

    chain_id: Annotated[str, Str(MAX_CHAIN_ID)]
    sender: Annotated[bytes, PUBKEY]
    nonce: Annotated[int, U64]
    kind: Annotated[str, Str(MAX_KIND)]
    body: Annotated[bytes, Bytes(max=MAX_TX_BODY)]
    cosignatures: Annotated[tuple[CoSignature, ...], struct_list(CoSignature, MAX_COSIGNATURES)]
    signature: Annotated[bytes, SIGNATURE]

    def __post_init__(self) -> None:
        if not self.cosignatures:
            return  # nearly every tx: nothing to order
        signers = [c.signer for c in self.cosignatures]
        # One canonical order, so a co-signed tx has exactly one encoding and one hash.
        if signers != sorted(set(signers)):
            raise ValueError("cosignatures must be sorted by signer with no repeats")
        if self.sender in signers:
            raise ValueError("the sender cannot also co-sign")

    def signing_payload(self) -> bytes:
        """What the sender and every co-signer sign. It names the co-signers (not their
        signatures), so a co-signature can be neither stripped nor added by a relayer:
        either changes the payload and invalidates every signature."""
        signers = [c.signer for c in self.cosignatures]
        return codec.pack_tree([self.chain_id, self.sender, self.nonce, self.kind, self.body, signers])

    def sign_message(self) -> bytes:
        """The exact bytes the sender and every co-signer sign (`crypto.sign_bytes`)."""
        return crypto.sign_bytes(self.chain_id, crypto.KIND_TX, self.signing_payload())

    @property
    def hash(self) -> bytes:
        return self.digest()

    @staticmethod
    def create(
        key: crypto.Keypair,
        chain_id: str,
        nonce: int,
        kind: str,
        body: bytes,
        cosigners: tuple[crypto.Keypair, ...] = (),
    ) -> Tx:
        """Build and sign a transaction (sender and every co-signer sign the same payload)."""
        ordered = sorted(cosigners, key=lambda k: k.public_key)
        placeholders = tuple(CoSignature(k.public_key, bytes(64)) for k in ordered)
        unsigned = Tx(chain_id, key.public_key, nonce, kind, body, placeholders, bytes(64))
        payload = unsigned.signing_payload()
        cosigs = tuple(
            CoSignature(k.public_key, k.sign(chain_id, crypto.KIND_TX, payload)) for k in ordered
        )
        sig = key.sign(chain_id, crypto.KIND_TX, payload)
        return Tx(chain_id, key.public_key, nonce, kind, body, cosigs, sig)

    def verify_signatures(self, cache: crypto.VerifyCache | None = None) -> bool:
        """The sender's signature and every co-signature are valid for this chain id
        (what `signature_checks` lists, checked in that order; inlined: every gossiped
        tx comes through here)."""
        chain_id = self.chain_id
        if self._verified(chain_id):
            return True
        message = self.sign_message()
        if not crypto.verify_message(self.sender, message, self.signature, cache):
            return False
        for c in self.cosignatures:
            if not crypto.verify_message(c.signer, message, c.signature, cache):
                return False
        self._set_verified(chain_id)
        return True

    def signature_checks(self) -> list[tuple[bytes, bytes, bytes]]:
        """(public key, sign bytes, signature) of the sender and every co-signer: what
        `verify_signatures` checks, for a host that verifies elsewhere (another process)."""
        message = self.sign_message()
        return [(self.sender, message, self.signature)] + [
            (c.signer, message, c.signature) for c in self.cosignatures
        ]

    def note_verified(self, cache: crypto.VerifyCache | None, cache_keys: Sequence[bytes]) -> None:
        """Every signature of this tx was checked valid elsewhere (`signature_checks`
        run through `crypto.verify_raw` by the host's verification workers): remember it
        here, and in `cache` for other instances of the same tx (the one in a proposal)
        under `cache_keys`, the `crypto.cache_key` of each check, computed there too."""
        if cache is not None:
            for key in cache_keys:
                cache.add(key)
        self._set_verified(self.chain_id)


# ---------------------------------------------------------------- votes


class VoteType(enum.IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class Vote(Struct):
    """A prevote or precommit. `block_hash` None is a vote for nil."""

    MAX_BYTES = MAX_VOTE_BYTES
    KEEP_ENCODING = True

    type: Annotated[VoteType, Enum(VoteType)]
    height: Annotated[int, U64]
    round: Round
    block_hash: Annotated[bytes | None, Optional(HASH)]
    validator: Annotated[bytes, PUBKEY]
    timestamp_ms: Annotated[int, U64]
    signature: Annotated[bytes, SIGNATURE]

    def signing_payload(self) -> bytes:
        return codec.pack_tree(self.to_wire()[:-1])

    @staticmethod
    def create(
        key: crypto.Keypair,
        chain_id: str,
        type: VoteType,
        height: int,
        round: int,
        block_hash: bytes | None,
        timestamp_ms: int,
    ) -> Vote:
        unsigned = Vote(type, height, round, block_hash, key.public_key, timestamp_ms, bytes(64))
        sig = key.sign(chain_id, crypto.KIND_VOTE, unsigned.signing_payload())
        return Vote(type, height, round, block_hash, key.public_key, timestamp_ms, sig)

    def verify(self, chain_id: str, cache: crypto.VerifyCache | None = None) -> bool:
        if self._verified(chain_id):
            return True
        ok = crypto.verify(
            self.validator, chain_id, crypto.KIND_VOTE, self.signing_payload(), self.signature, cache
        )
        if ok:
            self._set_verified(chain_id)
        return ok


@dataclass(frozen=True, slots=True)
class CommitSig(Struct):
    """One validator's precommit inside a commit; height, round and block hash are the
    commit's, so the precommit's signing payload can be rebuilt from the two."""

    validator: Annotated[bytes, PUBKEY]
    timestamp_ms: Annotated[int, U64]
    signature: Annotated[bytes, SIGNATURE]


@dataclass(frozen=True, slots=True)
class Commit(Struct):
    """+2/3 of the voting power precommitting one block at (height, round)."""

    height: Annotated[int, U64]
    round: Round
    block_hash: Annotated[bytes, HASH]
    signatures: Annotated[tuple[CommitSig, ...], struct_list(CommitSig, MAX_VALIDATORS)]

    def __post_init__(self) -> None:
        vals = [s.validator for s in self.signatures]
        if vals != sorted(set(vals)):
            raise ValueError("commit signatures must be sorted by validator with no repeats")

    def votes(self) -> tuple[Vote, ...]:
        """The precommits this commit is made of."""
        return tuple(
            Vote(
                VoteType.PRECOMMIT,
                self.height,
                self.round,
                self.block_hash,
                s.validator,
                s.timestamp_ms,
                s.signature,
            )
            for s in self.signatures
        )

    @staticmethod
    def from_votes(votes: list[Vote] | tuple[Vote, ...]) -> Commit:
        if not votes:
            raise ValueError("a commit needs at least one precommit")
        v0 = votes[0]
        if v0.block_hash is None:
            raise ValueError("a commit is for a block, not nil")
        expected = (VoteType.PRECOMMIT, v0.height, v0.round, v0.block_hash)
        for v in votes:
            if (v.type, v.height, v.round, v.block_hash) != expected:
                raise ValueError("a commit's precommits must agree on height, round and block")
        sigs = sorted(
            (CommitSig(v.validator, v.timestamp_ms, v.signature) for v in votes),
            key=lambda s: s.validator,
        )
        return Commit(v0.height, v0.round, v0.block_hash, tuple(sigs))


# ---------------------------------------------------------------- evidence


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence(Struct):
    """Two signed votes of one validator for the same (height, round, type) but for
    different blocks. Canonical order: vote_a's block hash sorts first (nil as b"")."""

    vote_a: Annotated[Vote, Nested(Vote)]
    vote_b: Annotated[Vote, Nested(Vote)]

    def __post_init__(self) -> None:
        a, b = self.vote_a, self.vote_b
        if (a.validator, a.height, a.round, a.type) != (b.validator, b.height, b.round, b.type):
            raise ValueError("evidence votes must share validator, height, round and type")
        if (a.block_hash or b"") >= (b.block_hash or b""):
            raise ValueError("evidence votes must differ and be in canonical order")

    @staticmethod
    def of(x: Vote, y: Vote) -> DuplicateVoteEvidence:
        a, b = sorted((x, y), key=lambda v: v.block_hash or b"")
        return DuplicateVoteEvidence(a, b)

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    def verify(self, chain_id: str, cache: crypto.VerifyCache | None = None) -> bool:
        return self.vote_a.verify(chain_id, cache) and self.vote_b.verify(chain_id, cache)


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True, slots=True)
class BlockHeader(Struct):
    KEEP_ENCODING = True

    chain_id: Annotated[str, Str(MAX_CHAIN_ID)]
    height: Annotated[int, U64]
    time_ms: Annotated[int, U64]
    prev_hash: Annotated[bytes, HASH]  # ZERO_HASH at height 1
    tx_root: Annotated[bytes, HASH]  # merkle.root(tx hashes)
    app_hash: Annotated[bytes, HASH]  # state after executing the previous block
    validators_hash: Annotated[bytes, HASH]  # the set that signs this height
    proposer: Annotated[bytes, PUBKEY]
    evidence_hash: Annotated[bytes, HASH]  # merkle.root(evidence hashes)
    last_commit_hash: Annotated[bytes, HASH]  # digest of last_commit, ZERO_HASH if none


@dataclass(frozen=True, slots=True)
class Block(Struct):
    MAX_BYTES = MAX_BLOCK_BYTES
    ENCODE_BY_PARTS = True

    header: Annotated[BlockHeader, Nested(BlockHeader)]
    txs: Annotated[tuple[Tx, ...], struct_list(Tx, MAX_BLOCK_TXS)]
    last_commit: Annotated[Commit | None, Optional(Nested(Commit))]
    evidence: Annotated[
        tuple[DuplicateVoteEvidence, ...], struct_list(DuplicateVoteEvidence, MAX_EVIDENCE)
    ]

    @property
    def hash(self) -> bytes:
        return self.header.digest()

    @property
    def height(self) -> int:
        return self.header.height

    def check_structure(self) -> str | None:
        """The header's commitments match the body. Returns a reason, or None if they do."""
        h = self.header
        if h.height == 0:
            return "heights start at 1"
        hashes = [tx.hash for tx in self.txs]
        if h.tx_root != merkle.root(hashes):
            return "tx root does not match the transactions"
        if len(set(hashes)) != len(hashes):
            return "a transaction appears twice"
        if h.evidence_hash != merkle.root([e.digest() for e in self.evidence]):
            return "evidence hash does not match the evidence"
        if h.last_commit_hash != commit_hash(self.last_commit):
            return "last commit hash does not match the last commit"
        if h.height == 1:
            if self.last_commit is not None:
                return "the first block cannot carry a last commit"
            if h.prev_hash != ZERO_HASH:
                return "the first block's previous hash must be zero"
        elif self.last_commit is None:
            return "a block above height 1 must carry the previous block's commit"
        elif self.last_commit.height != h.height - 1:
            return "last commit is not for the previous height"
        elif self.last_commit.block_hash != h.prev_hash:
            return "last commit is not for the previous block"
        for tx in self.txs:
            if tx.chain_id != h.chain_id:
                return "a transaction is for another chain"
        return None


def check_proposal_rounds(height: int, round: int, pol_round: int, block_height: int) -> None:
    """The rules a proposal's own fields obey (also in its compact form)."""
    if pol_round >= round:
        raise ValueError("pol_round must be below the proposal's round")
    if block_height != height:
        raise ValueError("proposal height differs from its block's height")


def tx_root(txs: tuple[Tx, ...] | list[Tx]) -> bytes:
    return merkle.root([tx.hash for tx in txs])


def commit_hash(commit: Commit | None) -> bytes:
    return ZERO_HASH if commit is None else commit.digest()


def make_block(
    *,
    chain_id: str,
    height: int,
    time_ms: int,
    prev_hash: bytes,
    app_hash: bytes,
    validators_hash: bytes,
    proposer: bytes,
    txs: tuple[Tx, ...] = (),
    last_commit: Commit | None = None,
    evidence: tuple[DuplicateVoteEvidence, ...] = (),
) -> Block:
    """A block whose header commitments match its body."""
    header = BlockHeader(
        chain_id=chain_id,
        height=height,
        time_ms=time_ms,
        prev_hash=prev_hash,
        tx_root=tx_root(txs),
        app_hash=app_hash,
        validators_hash=validators_hash,
        proposer=proposer,
        evidence_hash=merkle.root([e.digest() for e in evidence]),
        last_commit_hash=commit_hash(last_commit),
    )
    return Block(header, txs, last_commit, evidence)


# ---------------------------------------------------------------- proposals


@dataclass(frozen=True, slots=True)
class Proposal(Struct):
    """A proposer's block for (height, round). `pol_round` is the round of the polka
    that justifies re-proposing a valid block, or -1 (the paper's validRound)."""

    MAX_BYTES = MAX_PROPOSAL_BYTES
    ENCODE_BY_PARTS = True

    height: Annotated[int, U64]
    round: Round
    pol_round: PolRound
    block: Annotated[Block, Nested(Block)]
    proposer: Annotated[bytes, PUBKEY]
    timestamp_ms: Annotated[int, U64]
    signature: Annotated[bytes, SIGNATURE]

    def __post_init__(self) -> None:
        check_proposal_rounds(self.height, self.round, self.pol_round, self.block.header.height)

    def signing_payload(self) -> bytes:
        return Proposal.payload(self.height, self.round, self.pol_round, self.block.hash, self.proposer,
                                self.timestamp_ms)

    @staticmethod
    def payload(
        height: int, round: int, pol_round: int, block_hash: bytes, proposer: bytes, timestamp_ms: int
    ) -> bytes:
        # The block is covered through its hash: signing cost does not grow with it, and
        # a compact proposal (protocol.compact) carries the same signature.
        return codec.pack_tree([height, round, pol_round, block_hash, proposer, timestamp_ms])

    @staticmethod
    def create(
        key: crypto.Keypair,
        chain_id: str,
        height: int,
        round: int,
        pol_round: int,
        block: Block,
        timestamp_ms: int,
    ) -> Proposal:
        unsigned = Proposal(height, round, pol_round, block, key.public_key, timestamp_ms, bytes(64))
        sig = key.sign(chain_id, crypto.KIND_PROPOSAL, unsigned.signing_payload())
        return Proposal(height, round, pol_round, block, key.public_key, timestamp_ms, sig)

    def verify(self, chain_id: str, cache: crypto.VerifyCache | None = None) -> bool:
        if self._verified(chain_id):
            return True
        ok = crypto.verify(
            self.proposer, chain_id, crypto.KIND_PROPOSAL, self.signing_payload(), self.signature, cache
        )
        if ok:
            self._set_verified(chain_id)
        return ok
