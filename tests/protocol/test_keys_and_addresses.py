"""Keys come from a 32-byte seed (RFC 8032 ed25519); an address is
SHA-256("ekklesia/address/v1" || pubkey)[0:20]."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import budget

from protocol import crypto

# RFC 8032 §7.1, TEST 1.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBKEY = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_keys_are_rfc8032_ed25519() -> None:
    kp = crypto.Keypair(RFC8032_SEED)
    assert kp.public_key == RFC8032_PUBKEY
    assert kp.seed == RFC8032_SEED
    assert crypto.verify_raw(RFC8032_PUBKEY, b"", RFC8032_SIG_EMPTY)
    assert not crypto.verify_raw(RFC8032_PUBKEY, b"\x00", RFC8032_SIG_EMPTY)


@budget(50)
@given(st.binary(min_size=32, max_size=32))
def test_address_is_the_documented_hash(pubkey: bytes) -> None:
    expected = hashlib.sha256(b"ekklesia/address/v1" + pubkey).digest()[:20]
    assert crypto.address(pubkey) == expected
    assert crypto.address_hex(pubkey) == expected.hex()


def test_address_of_a_known_key() -> None:
    kp = crypto.Keypair(bytes(range(32)))
    assert kp.address == crypto.address(kp.public_key)
    assert re.fullmatch("[0-9a-f]{40}", crypto.address_hex(kp.public_key))
    # Not the undomained hash of the key: addresses cannot collide with other key hashes.
    assert kp.address != hashlib.sha256(kp.public_key).digest()[:20]


@pytest.mark.parametrize("n", [0, 20, 31, 33, 64])
def test_address_needs_a_32_byte_key(n: int) -> None:
    with pytest.raises(ValueError):
        crypto.address(bytes(n))


@pytest.mark.parametrize("n", [0, 31, 33, 64])
def test_keypair_needs_a_32_byte_seed(n: int) -> None:
    with pytest.raises(ValueError):
        crypto.Keypair(bytes(n))


def test_keypair_repr_never_shows_the_seed() -> None:
    seed = bytes(range(32))
    text = repr(crypto.Keypair(seed))
    assert seed.hex() not in text
    assert crypto.Keypair(seed).public_key.hex() in text


def test_address_cache_gives_the_same_answer_for_every_kind_of_bytes() -> None:
    key = bytes(range(32))
    expected = hashlib.sha256(b"ekklesia/address/v1" + key).digest()[:20]
    assert crypto.address(key) == expected  # computed
    assert crypto.address(key) == expected  # remembered
    assert crypto.address(bytearray(key)) == expected  # unhashable: computed, not looked up
    assert crypto.address(memoryview(key)) == expected


def test_address_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "_ADDRESS_CACHE_MAX", 8)
    monkeypatch.setattr(crypto, "_addresses", {})
    keys = [i.to_bytes(32, "big") for i in range(50)]
    for k in keys:
        assert crypto.address(k) == hashlib.sha256(b"ekklesia/address/v1" + k).digest()[:20]
        assert len(crypto._addresses) <= 8
