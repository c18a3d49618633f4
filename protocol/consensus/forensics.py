"""Accountability after a fork: who signed both sides.

Two commits for different blocks at one height and round can only exist if more
than 1/3 of the power precommitted both; every such validator's pair of
precommits is duplicate-vote evidence. (Commits of different rounds need the
prevotes in between to assign blame, the "amnesia" case; that is out of scope.)
"""

from __future__ import annotations

from protocol.types import Commit, DuplicateVoteEvidence


def conflicting_commit_evidence(a: Commit, b: Commit) -> list[DuplicateVoteEvidence]:
    """Evidence against every validator that signed both commits, sorted by validator.
    Empty unless the commits share height and round and differ in block."""
    if (a.height, a.round) != (b.height, b.round) or a.block_hash == b.block_hash:
        return []
    theirs = {v.validator: v for v in b.votes()}
    return [DuplicateVoteEvidence.of(v, theirs[v.validator]) for v in a.votes() if v.validator in theirs]
