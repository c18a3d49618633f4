"""Every struct's field order and field types are exactly those of docs/wire-format.md.

The expected layouts below are transcribed from the specification's tables; a
change to a struct that is not also made to the specification fails here.
"""

from __future__ import annotations

import pytest

from protocol import compact, merkle, types, validators, wire
from protocol.wire import Spec, Struct


def describe(spec: Spec) -> str:
    """A short name of a field's wire type, in the notation of the specification."""
    if isinstance(spec, wire.Int):
        if (spec.lo, spec.hi) == (0, 2**64 - 1):
            return "u64"
        return f"int[{spec.lo}..{spec.hi}]"
    if isinstance(spec, wire.Bool):
        return "bool"
    if isinstance(spec, wire.Bytes):
        return f"bin{spec.size}" if spec.size is not None else f"bin<={spec.max}"
    if isinstance(spec, wire.Str):
        return f"str<={spec.max}"
    if isinstance(spec, wire.Enum):
        return f"enum{sorted(int(m) for m in spec.cls)}"
    if isinstance(spec, wire.Optional):
        return f"nil|{describe(spec.inner)}"
    if isinstance(spec, wire.Seq):
        return f"array<={spec.max}({describe(spec.item)})"
    if isinstance(spec, wire.Nested):
        return spec.cls.__name__
    raise AssertionError(f"unknown spec {spec!r}")


ROUND = "int[0..2147483647]"
LAYOUTS: dict[type[Struct], list[tuple[str, str]]] = {
    types.CoSignature: [("signer", "bin32"), ("signature", "bin64")],
    types.Tx: [
        ("chain_id", "str<=64"),
        ("sender", "bin32"),
        ("nonce", "u64"),
        ("kind", "str<=32"),
        ("body", "bin<=61440"),
        ("cosignatures", "array<=16(CoSignature)"),
        ("signature", "bin64"),
    ],
    types.Vote: [
        ("type", "enum[1, 2]"),
        ("height", "u64"),
        ("round", ROUND),
        ("block_hash", "nil|bin32"),
        ("validator", "bin32"),
        ("timestamp_ms", "u64"),
        ("signature", "bin64"),
    ],
    types.CommitSig: [("validator", "bin32"), ("timestamp_ms", "u64"), ("signature", "bin64")],
    types.Commit: [
        ("height", "u64"),
        ("round", ROUND),
        ("block_hash", "bin32"),
        ("signatures", "array<=256(CommitSig)"),
    ],
    types.DuplicateVoteEvidence: [("vote_a", "Vote"), ("vote_b", "Vote")],
    types.BlockHeader: [
        ("chain_id", "str<=64"),
        ("height", "u64"),
        ("time_ms", "u64"),
        ("prev_hash", "bin32"),
        ("tx_root", "bin32"),
        ("app_hash", "bin32"),
        ("validators_hash", "bin32"),
        ("proposer", "bin32"),
        ("evidence_hash", "bin32"),
        ("last_commit_hash", "bin32"),
    ],
    types.Block: [
        ("header", "BlockHeader"),
        ("txs", "array<=10000(Tx)"),
        ("last_commit", "nil|Commit"),
        ("evidence", "array<=64(DuplicateVoteEvidence)"),
    ],
    types.Proposal: [
        ("height", "u64"),
        ("round", ROUND),
        ("pol_round", "int[-1..2147483647]"),
        ("block", "Block"),
        ("proposer", "bin32"),
        ("timestamp_ms", "u64"),
        ("signature", "bin64"),
    ],
    compact.CompactProposal: [
        ("height", "u64"),
        ("round", ROUND),
        ("pol_round", "int[-1..2147483647]"),
        ("header", "BlockHeader"),
        ("tx_hashes", "array<=10000(bin32)"),
        ("last_commit", "nil|Commit"),
        ("evidence", "array<=64(DuplicateVoteEvidence)"),
        ("proposer", "bin32"),
        ("timestamp_ms", "u64"),
        ("signature", "bin64"),
    ],
    validators.Validator: [("pubkey", "bin32"), ("power", "int[1..1099511627776]")],
    validators.ValidatorSet: [("validators", "array<=256(Validator)")],
    merkle.InclusionProof: [("index", "u64"), ("tree_size", "u64"), ("path", "array<=64(bin32)")],
}

MAX_BYTES = {
    types.Tx: 65536,
    types.Vote: 512,
    types.Block: 8 * 1024 * 1024,
    types.Proposal: 8 * 1024 * 1024 + 1024,
    compact.CompactProposal: 512 * 1024,
}


@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda c: c.__name__)
def test_field_order_and_types_match_the_specification(cls: type[Struct]) -> None:
    actual = [(name, describe(spec)) for name, spec in cls.wire_fields()]
    assert actual == LAYOUTS[cls]


@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda c: c.__name__)
def test_decode_size_limit_matches_the_specification(cls: type[Struct]) -> None:
    assert MAX_BYTES.get(cls, 65536) == cls.MAX_BYTES


def test_vote_types_are_numbered_as_specified() -> None:
    assert (int(types.VoteType.PREVOTE), int(types.VoteType.PRECOMMIT)) == (1, 2)
