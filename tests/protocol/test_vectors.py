"""Fixed test vectors, also published in docs/wire-format.md §9.

The values were generated once from the code and then checked by hand against the
specification (the byte-by-byte breakdown is in the document). Signatures are
deterministic (RFC 8032), so every value is fixed. The last test checks that the
document's copy is identical, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import pathlib
import re

import nacl.signing
import pytest
from msgpack_reference import ref_pack

from protocol import codec, crypto, merkle
from protocol.types import Tx, Vote, VoteType
from protocol.validators import ValidatorSet

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"
CHAIN = "ekklesia-testnet"

VECTORS = {
    "sender.seed": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    "sender.public_key": "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
    "sender.address": "d49fdd63c254ec09611765baaf85da27639f761d",
    "cosigner.seed": "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
    "cosigner.public_key": "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7",
    "cosigner.address": "343bf23b946feade945dbfe0095af9ec261e9f66",
    "tx1.body": "92a568656c6c6f2a",
    "tx1.signing_payload": (
        "96b0656b6b6c657369612d746573746e6574c42003a107bff3ce10be1d70dd18"
        "e74bc09967e4d6309ba50d5f1ddc8664125531b801a76578616d706c65c40892"
        "a568656c6c6f2a90"
    ),
    "tx1.signed_bytes": (
        "94af656b6b6c657369612f7369672f7631b0656b6b6c657369612d746573746e"
        "6574a27478c44896b0656b6b6c657369612d746573746e6574c42003a107bff3"
        "ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b801a7657861"
        "6d706c65c40892a568656c6c6f2a90"
    ),
    "tx1.signature": (
        "01b528f2f2f114d888c2eccedeff10b70787b17148ceb3849bc774ec7228ab0e"
        "774391d6b36186ba777d1b3a4527f8c0ce33d398b8c13f783ce8ab4eb13ffa0a"
    ),
    "tx1.encoding": (
        "97b0656b6b6c657369612d746573746e6574c42003a107bff3ce10be1d70dd18"
        "e74bc09967e4d6309ba50d5f1ddc8664125531b801a76578616d706c65c40892"
        "a568656c6c6f2a90c44001b528f2f2f114d888c2eccedeff10b70787b17148ce"
        "b3849bc774ec7228ab0e774391d6b36186ba777d1b3a4527f8c0ce33d398b8c1"
        "3f783ce8ab4eb13ffa0a"
    ),
    "tx1.hash": "55ca9dd9ae09b90d27eaf09ba0a59facc47bddc8651256a5a3937b48cba87476",
    "tx2.signing_payload": (
        "96b0656b6b6c657369612d746573746e6574c42003a107bff3ce10be1d70dd18"
        "e74bc09967e4d6309ba50d5f1ddc8664125531b802a76578616d706c65c40892"
        "a568656c6c6f2a91c42029acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe"
        "12c89794bc9322966dd7"
    ),
    "tx2.signed_bytes": (
        "94af656b6b6c657369612f7369672f7631b0656b6b6c657369612d746573746e"
        "6574a27478c46a96b0656b6b6c657369612d746573746e6574c42003a107bff3"
        "ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b802a7657861"
        "6d706c65c40892a568656c6c6f2a91c42029acbae141bccaf0b22e1a94d34d0b"
        "c7361e526d0bfe12c89794bc9322966dd7"
    ),
    "tx2.signature": (
        "58f3fff0d62352895417c1bf14f871b2777cc9b9bce3ebf000a5a111135e5d63"
        "1330e486c8137c25e03bf06a8e1dbacca78959bc991e00171b8c89a5d71f9700"
    ),
    "tx2.cosignature": (
        "16fc6207579e5ac90c15701b9226f0bdcfb69b08b4f81acb84460bd420315a4c"
        "acc114357c1a9d8ba0bafdd050d5ca650f54f8b56b26cdfe27f8fad4ad009601"
    ),
    "tx2.encoding": (
        "97b0656b6b6c657369612d746573746e6574c42003a107bff3ce10be1d70dd18"
        "e74bc09967e4d6309ba50d5f1ddc8664125531b802a76578616d706c65c40892"
        "a568656c6c6f2a9192c42029acbae141bccaf0b22e1a94d34d0bc7361e526d0b"
        "fe12c89794bc9322966dd7c44016fc6207579e5ac90c15701b9226f0bdcfb69b"
        "08b4f81acb84460bd420315a4cacc114357c1a9d8ba0bafdd050d5ca650f54f8"
        "b56b26cdfe27f8fad4ad009601c44058f3fff0d62352895417c1bf14f871b277"
        "7cc9b9bce3ebf000a5a111135e5d631330e486c8137c25e03bf06a8e1dbacca7"
        "8959bc991e00171b8c89a5d71f9700"
    ),
    "tx2.hash": "d9d6409b2e064bea34ca68c460c56f95427789bf64f67ce03e4307b15aba096c",
    "tx_root": "41344f0abaaa38c8bdf639bfe7292adfbf568b99023a84b69eea2ac2f54db1ad",
    "vote.signing_payload": (
        "96020700c4201111111111111111111111111111111111111111111111111111"
        "111111111111c42003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f"
        "1ddc8664125531b8cf0000018bcfe56800"
    ),
    "vote.signature": (
        "03c3ac3a3983c0cb0200599b20f3cd02291d26701d548f81277c07e47690fb85"
        "d78dbd185322f9f782a84db99fb0efe5f92dae667b4e82b1802b65035f6d9b05"
    ),
    "vote.encoding": (
        "97020700c4201111111111111111111111111111111111111111111111111111"
        "111111111111c42003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f"
        "1ddc8664125531b8cf0000018bcfe56800c44003c3ac3a3983c0cb0200599b20"
        "f3cd02291d26701d548f81277c07e47690fb85d78dbd185322f9f782a84db99f"
        "b0efe5f92dae667b4e82b1802b65035f6d9b05"
    ),
    "validator_set.encoding": (
        "919292c42003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc86"
        "64125531b80a92c42029acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12"
        "c89794bc9322966dd705"
    ),
    "validator_set.hash": "be64e2bbc1c2bb1a792621dc8ee41d779ef97b2b8939021e835a0667c9ffc857",
}


def computed() -> dict[str, str]:
    sender = crypto.Keypair(bytes(range(32)))
    cosigner = crypto.Keypair(bytes(range(32, 64)))
    body = codec.pack(["hello", 42])
    tx1 = Tx.create(sender, CHAIN, 1, "example", body)
    tx2 = Tx.create(sender, CHAIN, 2, "example", body, (cosigner,))
    vote = Vote.create(sender, CHAIN, VoteType.PRECOMMIT, 7, 0, b"\x11" * 32, 1_700_000_000_000)
    vset = ValidatorSet.of([(sender.public_key, 10), (cosigner.public_key, 5)])
    out = {
        "sender.seed": sender.seed,
        "sender.public_key": sender.public_key,
        "sender.address": sender.address,
        "cosigner.seed": cosigner.seed,
        "cosigner.public_key": cosigner.public_key,
        "cosigner.address": cosigner.address,
        "tx1.body": body,
        "tx_root": merkle.root([tx1.hash, tx2.hash]),
        "vote.signing_payload": vote.signing_payload(),
        "vote.signature": vote.signature,
        "vote.encoding": vote.encode(),
        "validator_set.encoding": vset.encode(),
        "validator_set.hash": vset.hash,
        "tx2.cosignature": tx2.cosignatures[0].signature,
    }
    for name, tx in (("tx1", tx1), ("tx2", tx2)):
        out[f"{name}.signing_payload"] = tx.signing_payload()
        out[f"{name}.signed_bytes"] = crypto.sign_bytes(CHAIN, crypto.KIND_TX, tx.signing_payload())
        out[f"{name}.signature"] = tx.signature
        out[f"{name}.encoding"] = tx.encode()
        out[f"{name}.hash"] = tx.hash
    return {k: v.hex() for k, v in out.items()}


def v(name: str) -> bytes:
    return bytes.fromhex(VECTORS[name])


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_code_reproduces_the_vector(name: str) -> None:
    assert computed()[name] == VECTORS[name]


def test_vectors_are_consistent_with_the_specification() -> None:
    """Rebuild every vector from the spec alone: the reference encoder, hashlib, and
    plain ed25519 from PyNaCl (not `protocol`)."""
    sender, cosigner = v("sender.public_key"), v("cosigner.public_key")
    assert nacl.signing.SigningKey(v("sender.seed")).verify_key.encode() == sender
    assert nacl.signing.SigningKey(v("cosigner.seed")).verify_key.encode() == cosigner
    for who in ("sender", "cosigner"):
        pk = v(f"{who}.public_key")
        assert v(f"{who}.address") == hashlib.sha256(b"ekklesia/address/v1" + pk).digest()[:20]
    assert v("tx1.body") == ref_pack(["hello", 42])

    for name, nonce, signers in (("tx1", 1, []), ("tx2", 2, [cosigner])):
        payload = ref_pack([CHAIN, sender, nonce, "example", v("tx1.body"), signers])
        assert v(f"{name}.signing_payload") == payload
        signed = ref_pack(["ekklesia/sig/v1", CHAIN, "tx", payload])
        assert v(f"{name}.signed_bytes") == signed
        nacl.signing.VerifyKey(sender).verify(signed, v(f"{name}.signature"))
        cosigs = [[cosigner, v("tx2.cosignature")]] if signers else []
        if signers:
            nacl.signing.VerifyKey(cosigner).verify(signed, v("tx2.cosignature"))
        encoding = ref_pack(
            [CHAIN, sender, nonce, "example", v("tx1.body"), cosigs, v(f"{name}.signature")]
        )
        assert v(f"{name}.encoding") == encoding
        assert v(f"{name}.hash") == hashlib.sha256(encoding).digest()

    leaf = [hashlib.sha256(b"\x00" + v(f"tx{i}.hash")).digest() for i in (1, 2)]
    assert v("tx_root") == hashlib.sha256(b"\x01" + leaf[0] + leaf[1]).digest()

    vote_payload = ref_pack([2, 7, 0, b"\x11" * 32, sender, 1_700_000_000_000])
    assert v("vote.signing_payload") == vote_payload
    nacl.signing.VerifyKey(sender).verify(
        ref_pack(["ekklesia/sig/v1", CHAIN, "vote", vote_payload]), v("vote.signature")
    )
    assert v("vote.encoding") == ref_pack(
        [2, 7, 0, b"\x11" * 32, sender, 1_700_000_000_000, v("vote.signature")]
    )
    vset = ref_pack([[[sender, 10], [cosigner, 5]]])  # 03a1... sorts before 29ac...
    assert v("validator_set.encoding") == vset
    assert v("validator_set.hash") == hashlib.sha256(vset).digest()


def doc_vectors() -> dict[str, str]:
    """`name  hex` lines from the ```vectors blocks; indented lines continue a value."""
    text = DOC.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    name = None
    for block in re.findall(r"^```vectors\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.splitlines():
            if not line.strip():
                continue
            if line[0].isspace():
                assert name is not None
                out[name] += line.strip()
            else:
                name, value = line.split()
                assert name not in out, f"{name} is listed twice"
                out[name] = value
    return out


def test_the_specification_publishes_exactly_these_vectors() -> None:
    assert doc_vectors() == VECTORS
