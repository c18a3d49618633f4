"""RFC 6962 Merkle trees: roots equal the RFC's recursive definition (written out
below, independently of `protocol.merkle`) and the published Certificate
Transparency vectors; inclusion proofs verify for every leaf and fail for a wrong
leaf, index, tree size or root."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import budget

from protocol import merkle
from protocol.merkle import InclusionProof


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def mth(d: list[bytes]) -> bytes:
    """RFC 6962 §2.1, verbatim."""
    n = len(d)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + d[0])
    k = largest_power_of_two_below(n)
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), verbatim."""
    n = len(d)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*rfc_path(m, d[:k]), mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), mth(d[:k])]


# Certificate Transparency reference data (RFC 6962 test vectors, as shipped with the
# CT/Trillian implementations): leaves, then the root of the first n leaves.
CT_LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243",
                                        "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PROOFS = [
    (0, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
         "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
         "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
         "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


@pytest.mark.parametrize("n", range(len(CT_ROOTS)))
def test_roots_match_the_ct_reference_vectors(n: int) -> None:
    assert merkle.root(CT_LEAVES[:n]).hex() == CT_ROOTS[n]


@pytest.mark.parametrize(("index", "path"), CT_PROOFS)
def test_proofs_match_the_ct_reference_vectors(index: int, path: list[str]) -> None:
    proof = merkle.prove(CT_LEAVES, index)
    assert (proof.index, proof.tree_size) == (index, 8)
    assert [p.hex() for p in proof.path] == path
    assert merkle.verify_inclusion(CT_LEAVES[index], proof, bytes.fromhex(CT_ROOTS[8]))


def test_empty_root_and_hash_prefixes() -> None:
    assert merkle.EMPTY_ROOT == merkle.root([]) == sha256(b"")
    assert merkle.leaf_hash(b"ab") == sha256(b"\x00ab")
    assert merkle.node_hash(b"l", b"r") == sha256(b"\x01lr")


leaf_lists = st.lists(st.binary(max_size=40), max_size=70)


@budget(100)
@given(leaf_lists)
def test_root_equals_the_rfc_definition(leaves: list[bytes]) -> None:
    assert merkle.root(leaves) == mth(leaves)


@budget(40)
@given(leaf_lists.filter(bool), st.data())
def test_proof_path_equals_the_rfc_definition_and_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    m = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle.prove(leaves, m)
    assert list(proof.path) == rfc_path(m, leaves)
    assert len(proof.path) == path_length(m, len(leaves))
    assert merkle.verify_inclusion(leaves[m], proof, mth(leaves))


def test_interior_nodes_cannot_pose_as_leaves() -> None:
    """Second-preimage resistance: the 0x00/0x01 prefixes keep a two-leaf tree's root
    from being the root of a one-leaf tree holding the two leaf hashes."""
    a, b = b"a", b"b"
    forged = merkle.leaf_hash(a) + merkle.leaf_hash(b)
    assert merkle.root([a, b]) != merkle.root([forged])
    assert not merkle.verify_inclusion(forged, InclusionProof(0, 1, ()), merkle.root([a, b]))


def path_length(m: int, n: int) -> int:
    """len(PATH(m, D[n])), following the same recursion on sizes alone."""
    if n <= 1:
        return 0
    k = largest_power_of_two_below(n)
    return 1 + (path_length(m, k) if m < k else path_length(m - k, n - k))


def tree(n: int) -> list[bytes]:
    return [f"leaf-{n}-{i}".encode() for i in range(n)]


@pytest.mark.parametrize("n", range(1, 71))
def test_every_leaf_of_every_tree_size_proves_and_nothing_else_does(n: int) -> None:
    leaves = tree(n)
    root, other_root = merkle.root(leaves), merkle.root(tree(n + 1))
    for m in range(n):
        proof = merkle.prove(leaves, m)
        assert merkle.verify_inclusion(leaves[m], proof, root)
        assert InclusionProof.decode(proof.encode()) == proof
        # wrong leaf
        assert not merkle.verify_inclusion(leaves[m] + b"!", proof, root)
        if n > 1:
            assert not merkle.verify_inclusion(leaves[(m + 1) % n], proof, root)
        # wrong root
        assert not merkle.verify_inclusion(leaves[m], proof, other_root)
        # wrong index, in range and beyond it
        for other in {(m + 1) % n, (m - 1) % n, m ^ 1, n, n + 1, 2**64 - 1} - {m}:
            bad = InclusionProof(other, n, proof.path)
            assert not merkle.verify_inclusion(leaves[m], bad, root)
        # wrong tree size: any size whose audit path for m has another length fails;
        # size 0 and sizes that no longer contain the leaf fail too
        for size in range(0, n + 9):
            if size != n and (size <= m or path_length(m, size) != len(proof.path)):
                bad = InclusionProof(m, size, proof.path)
                assert not merkle.verify_inclusion(leaves[m], bad, root)
        # a tampered, shortened or lengthened path
        for i in range(len(proof.path)):
            path = list(proof.path)
            path[i] = bytes([path[i][0] ^ 1]) + path[i][1:]
            assert not merkle.verify_inclusion(leaves[m], InclusionProof(m, n, tuple(path)), root)
        if proof.path:
            assert not merkle.verify_inclusion(
                leaves[m], InclusionProof(m, n, proof.path[:-1]), root
            )
        assert not merkle.verify_inclusion(
            leaves[m], InclusionProof(m, n, (*proof.path, root)), root
        )


def test_tree_size_is_not_bound_by_the_root_alone() -> None:
    """Documented limitation (RFC 9162 verifies against a *signed* (size, root) pair):
    leaf 0's path in a 3-leaf tree is [h1, MTH(D[2:3])], the same shape as its path
    in a 4-leaf tree ([h1, MTH(D[2:4])]), so the same proof also verifies when it
    claims tree size 4. ekklesia headers commit to the tx root only, so a proof says
    where a transaction is *if* the tree has the claimed size — it does not prove the
    number of transactions."""
    leaves = tree(3)
    proof = merkle.prove(leaves, 0)
    assert merkle.verify_inclusion(leaves[0], InclusionProof(0, 4, proof.path), merkle.root(leaves))


def test_prove_refuses_an_index_outside_the_tree() -> None:
    for n, m in [(0, 0), (3, 3), (3, -1)]:
        with pytest.raises(IndexError):
            merkle.prove(tree(n), m)
