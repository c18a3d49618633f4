"""ed25519 keys, domain-separated signatures, addresses and a verification cache.

Signed bytes
------------
Nothing is ever signed raw. The bytes handed to ed25519 are the canonical msgpack
encoding of the array ::

    ["ekklesia/sig/v1", chain_id, kind, payload]

where ``kind`` names the message type ("tx", "vote", "proposal") and ``payload``
is the canonical encoding of the message without its signature(s). A vote
signature therefore never verifies as a transaction, and nothing signed for one
chain verifies on another.

Addresses
---------
``address(pubkey) = SHA-256("ekklesia/address/v1" || pubkey)[0:20]``, written as
40 lowercase hex digits. The prefix keeps addresses from colliding with any other
hash of a public key that ekklesia computes.

Randomness is not taken here: keys come from a 32-byte seed the caller supplies
(the node draws it from the OS).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import nacl.exceptions
import nacl.signing

from protocol import codec

SIG_DOMAIN = "ekklesia/sig/v1"
ADDRESS_DOMAIN = b"ekklesia/address/v1"
PUBKEY_LEN = 32
SIGNATURE_LEN = 64
SEED_LEN = 32
ADDRESS_LEN = 20

KIND_TX = "tx"
KIND_VOTE = "vote"
KIND_PROPOSAL = "proposal"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sign_bytes(chain_id: str, kind: str, payload: bytes) -> bytes:
    """The exact bytes that an ed25519 signature of ekklesia covers."""
    return codec.pack_tree([SIG_DOMAIN, chain_id, kind, payload])


# A tx's sender address is needed at admission, in the mempool's nonce lookups and in
# execution (five hashes per tx); the active senders fit here. Cleared when full.
_ADDRESS_CACHE_MAX = 16_384
_addresses: dict[bytes, bytes] = {}


def address(pubkey: bytes) -> bytes:
    if type(pubkey) is bytes:
        cached = _addresses.get(pubkey)
        if cached is not None:
            return cached
    if len(pubkey) != PUBKEY_LEN:
        raise ValueError("an ed25519 public key has 32 bytes")
    pubkey = bytes(pubkey)
    addr = sha256(ADDRESS_DOMAIN + pubkey)[:ADDRESS_LEN]
    if len(_addresses) >= _ADDRESS_CACHE_MAX:
        _addresses.clear()
    _addresses[pubkey] = addr
    return addr


def address_hex(pubkey: bytes) -> str:
    return address(pubkey).hex()


class Keypair:
    """An ed25519 signing key. Construct from a seed; `node` supplies fresh entropy."""

    __slots__ = ("_sk", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_LEN:
            raise ValueError("an ed25519 seed has 32 bytes")
        self._sk = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._sk.verify_key)

    @property
    def seed(self) -> bytes:
        return bytes(self._sk)

    @property
    def address(self) -> bytes:
        return address(self.public_key)

    def sign(self, chain_id: str, kind: str, payload: bytes) -> bytes:
        return self._sk.sign(sign_bytes(chain_id, kind, payload)).signature

    def __repr__(self) -> str:  # never print the seed
        return f"Keypair(public_key={self.public_key.hex()})"


class VerifyCache:
    """Remembers successful verifications, keyed by (pubkey, SHA-256(message), signature),
    so a transaction checked on admission is not verified again in a block, and a vote
    seen twice costs one verification. Bounded, least recently used out first. Only
    successes are stored: a failure is cheap to repeat and storing it would let a peer
    fill the cache with garbage."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._ok)

    def lookup(self, key: bytes) -> bool:
        if key in self._ok:
            self._ok.move_to_end(key)
            self.hits += 1
            return True
        self.misses += 1
        return False

    def add(self, key: bytes) -> None:
        self._ok[key] = None
        if len(self._ok) > self.capacity:
            self._ok.popitem(last=False)


def verify_raw(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    if len(pubkey) != PUBKEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    try:
        nacl.signing.VerifyKey(pubkey).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


def cache_key(pubkey: bytes, message: bytes, signature: bytes) -> bytes:
    """The `VerifyCache` entry of one valid signature of `message` (its sign bytes)."""
    # One 32-byte key per entry (a tuple of the three parts took ~380 bytes).
    return hashlib.sha256(pubkey + signature + message).digest()


def verify(
    pubkey: bytes,
    chain_id: str,
    kind: str,
    payload: bytes,
    signature: bytes,
    cache: VerifyCache | None = None,
) -> bool:
    """True iff `signature` is `pubkey`'s signature of (chain_id, kind, payload)."""
    return verify_message(pubkey, sign_bytes(chain_id, kind, payload), signature, cache)


def verify_message(pubkey: bytes, message: bytes, signature: bytes, cache: VerifyCache | None = None) -> bool:
    """`verify` of the sign bytes `message` themselves (built once for several signers)."""
    if cache is None:
        return verify_raw(pubkey, message, signature)
    key = cache_key(pubkey, message, signature)
    if cache.lookup(key):
        return True
    if not verify_raw(pubkey, message, signature):
        return False
    cache.add(key)
    return True
