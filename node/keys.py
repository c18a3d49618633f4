"""Key files: the validator's consensus key and the client keystore.

All keys are ed25519, built from a 32-byte seed (`protocol.crypto.Keypair`); fresh
seeds come from ``os.urandom(32)``.

Validator key — ``<home>/config/validator_key.json``, mode 0600::

    {"version": 1, "type": "ed25519", "address": "<40 hex>", "pubkey": "<64 hex>", "seed": "<64 hex>"}

Client keystore — ``<home>/keys/<name>.json``, one file per key, mode 0600, in a
directory created 0700. A name is 1-64 characters of ``A-Z a-z 0-9 . _ -`` not
starting with ``.``, ``_`` or ``-`` (so it is always a plain file name). Unencrypted::

    {"version": 1, "name": "alice", "type": "ed25519", "address": "<40 hex>",
     "pubkey": "<64 hex>", "encrypted": false, "seed": "<64 hex>"}

Encrypted with a passphrase (the seed is the only secret; address and pubkey stay
readable so that `keys list`/`show` need no passphrase)::

    {"version": 1, "name": "alice", "type": "ed25519", "address": "<40 hex>",
     "pubkey": "<64 hex>", "encrypted": true,
     "kdf": {"name": "argon2id", "opslimit": 2, "memlimit": 67108864, "salt": "<32 hex>"},
     "cipher": {"name": "xsalsa20poly1305", "nonce": "<48 hex>", "ciphertext": "<96 hex>"}}

key = argon2id(passphrase as NFC-normalised UTF-8, salt, opslimit, memlimit) (32 bytes,
libsodium's ``crypto_pwhash`` with ALG_ARGON2ID13); ciphertext = XSalsa20-Poly1305
(``crypto_secretbox``, i.e. PyNaCl's ``SecretBox``) of the 32-byte seed under that key
and nonce: 16 bytes of MAC followed by 32 of encrypted seed. After decrypting, the
pubkey derived from the seed must equal the stored one, so tampering with the clear
fields is detected. KDF parameters above libsodium's "sensitive" limits are refused
when reading, so a crafted file cannot make the node allocate gigabytes.

Every key file is refused, before it is parsed, when it is accessible by group or
others (as ssh does), with the ``chmod 600`` remedy in the message; the keystore
directory is refused when group or others can write to it (they could replace keys).
"""

from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.utils

from node.errors import (
    CorruptKeyFile,
    InsecureKeyFile,
    InvalidKeyName,
    KeyExists,
    KeyNotFound,
    KeystoreError,
    PassphraseRequired,
    WrongPassphrase,
)
from node.home import ensure_private_dir
from protocol.crypto import SEED_LEN, Keypair, address_hex

__all__ = [
    "FAST_INSECURE_KDF",
    "INTERACTIVE_KDF",
    "KdfParams",
    "KeyInfo",
    "Keystore",
    "KeystoreError",
    "ValidatorKey",
    "check_key_name",
    "create_validator_key",
    "load_validator_key",
    "new_seed",
    "parse_seed_hex",
]

FILE_VERSION = 1
KEY_TYPE = "ed25519"
KDF_NAME = "argon2id"
CIPHER_NAME = "xsalsa20poly1305"
FILE_MODE = 0o600
MAX_KEY_FILE_BYTES = 64 * 1024

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class KdfParams:
    """argon2id cost parameters (libsodium's opslimit and memlimit in bytes)."""

    opslimit: int
    memlimit: int


# libsodium's "interactive" limits: 2 passes over 64 MiB, a fraction of a second.
INTERACTIVE_KDF = KdfParams(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)
# The smallest legal parameters: for tests only (a passphrase is then cheap to brute force).
FAST_INSECURE_KDF = KdfParams(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
# The most a key file may ask for when it is read.
MAX_READ_KDF = KdfParams(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)


def new_seed() -> bytes:
    """32 fresh bytes from the operating system."""
    return os.urandom(SEED_LEN)


def parse_seed_hex(text: str) -> bytes:
    """A seed written as 64 hex digits (surrounding blanks and a 0x prefix allowed)."""
    t = text.strip()
    if t[:2].lower() == "0x":
        t = t[2:]
    if not re.fullmatch(r"[0-9a-fA-F]{64}", t):
        raise KeystoreError("a seed is 64 hexadecimal digits (32 bytes)")
    return bytes.fromhex(t)


def check_key_name(name: str) -> str:
    """`name` if it is a valid key name, else `InvalidKeyName`."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidKeyName(
            f"invalid key name {name!r}: use 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
        )
    return name


# ----------------------------------------------------------------------------- files


def read_private_file(path: Path, what: str) -> bytes:
    """The contents of a key file, refusing one that group or others can access."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyNotFound(f"{what} {path} does not exist") from None
    except PermissionError:
        raise KeystoreError(f"{what} {path} is not readable by this user") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CorruptKeyFile(f"{what} {path} is not a regular file")
        if st.st_mode & 0o077:
            raise InsecureKeyFile(
                f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o})",
                f"restrict it with: chmod 600 {path}",
            )
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise CorruptKeyFile(f"{what} {path} is larger than {MAX_KEY_FILE_BYTES} bytes")
    return data


def write_private_file(path: Path, data: bytes, *, what: str) -> None:
    """Create `path` with mode 0600 holding `data`, atomically; `KeyExists` if it exists.

    The bytes go to a private temporary file, fsynced, then hard-linked into place, so
    a crash never leaves a half-written key and two writers cannot both succeed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise KeyExists(f"{what} {path} already exists; refusing to overwrite it") from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_object(data: bytes, path: Path, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptKeyFile(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CorruptKeyFile(f"{what} {path} does not hold a JSON object")
    return obj


def _hex_field(obj: dict[str, Any], key: str, length: int | None, path: Path, what: str) -> bytes:
    value = obj.get(key)
    if not isinstance(value, str) or not re.fullmatch(r"(?:[0-9a-f]{2})*", value):
        raise CorruptKeyFile(f"{what} {path}: {key!r} is missing or not lowercase hex")
    raw = bytes.fromhex(value)
    if length is not None and len(raw) != length:
        raise CorruptKeyFile(f"{what} {path}: {key!r} must be {length} bytes, got {len(raw)}")
    return raw


def _check_header(obj: dict[str, Any], path: Path, what: str) -> None:
    if obj.get("version") != FILE_VERSION:
        raise CorruptKeyFile(
            f"{what} {path}: unsupported version {obj.get('version')!r} (this ekklesia reads {FILE_VERSION})"
        )
    if obj.get("type") != KEY_TYPE:
        raise CorruptKeyFile(f"{what} {path}: unsupported key type {obj.get('type')!r}")


def _keypair_matching(seed: bytes, obj: dict[str, Any], path: Path, what: str) -> Keypair:
    keypair = Keypair(seed)
    if obj.get("pubkey") != keypair.public_key.hex() or obj.get("address") != address_hex(keypair.public_key):
        raise CorruptKeyFile(f"{what} {path}: the pubkey or address does not match the seed")
    return keypair


# ----------------------------------------------------------------------------- validator key


@dataclass(frozen=True, slots=True)
class ValidatorKey:
    """The consensus signing key of this node."""

    path: Path
    keypair: Keypair

    @property
    def pubkey(self) -> bytes:
        return self.keypair.public_key

    @property
    def pubkey_hex(self) -> str:
        return self.keypair.public_key.hex()

    @property
    def address_hex(self) -> str:
        return address_hex(self.keypair.public_key)


def create_validator_key(path: str | os.PathLike[str], seed: bytes | None = None) -> ValidatorKey:
    """Write a new validator key (fresh unless `seed` is given) to `path`, mode 0600.
    `KeyExists` if the file exists: a validator key is never overwritten."""
    path = Path(path)
    keypair = Keypair(new_seed() if seed is None else seed)
    doc = {
        "version": FILE_VERSION,
        "type": KEY_TYPE,
        "address": address_hex(keypair.public_key),
        "pubkey": keypair.public_key.hex(),
        "seed": keypair.seed.hex(),
    }
    ensure_private_dir(path.parent)
    write_private_file(path, (json.dumps(doc, indent=2) + "\n").encode(), what="validator key")
    return ValidatorKey(path, keypair)


def load_validator_key(path: str | os.PathLike[str]) -> ValidatorKey:
    """Read the validator key; `InsecureKeyFile` if group/world-accessible,
    `KeyNotFound` if absent, `CorruptKeyFile` if unreadable or inconsistent."""
    path = Path(path)
    what = "validator key"
    obj = _json_object(read_private_file(path, what), path, what)
    _check_header(obj, path, what)
    seed = _hex_field(obj, "seed", SEED_LEN, path, what)
    return ValidatorKey(path, _keypair_matching(seed, obj, path, what))


# ----------------------------------------------------------------------------- keystore


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The public facts about a stored key (no secret)."""

    name: str
    address: str  # hex
    pubkey: str  # hex
    encrypted: bool
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "pubkey": self.pubkey,
            "encrypted": self.encrypted,
            "path": str(self.path),
        }


def _normalise_passphrase(passphrase: str) -> bytes:
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


class Keystore:
    """The client keys of one node home: ``<home>/keys/<name>.json``.

    `kdf` is the argon2id cost used when *encrypting* (decrypting uses the parameters
    stored in the file); leave the default outside tests."""

    def __init__(self, directory: str | os.PathLike[str], *, kdf: KdfParams = INTERACTIVE_KDF) -> None:
        self.directory = Path(directory)
        self.kdf = kdf

    def path_of(self, name: str) -> Path:
        return self.directory / f"{check_key_name(name)}.json"

    # -- writing

    def add(self, name: str, *, seed: bytes | None = None, passphrase: str | None = None) -> KeyInfo:
        """Store a key under `name`: a fresh one, or the one with `seed` (recovery).
        With a `passphrase` the seed is encrypted; `KeyExists` if the name is taken."""
        path = self.path_of(name)
        if passphrase is not None and passphrase == "":
            raise KeystoreError("the passphrase is empty; give a non-empty one or none at all")
        keypair = Keypair(new_seed() if seed is None else seed)
        doc: dict[str, Any] = {
            "version": FILE_VERSION,
            "name": name,
            "type": KEY_TYPE,
            "address": address_hex(keypair.public_key),
            "pubkey": keypair.public_key.hex(),
            "encrypted": passphrase is not None,
        }
        if passphrase is None:
            doc["seed"] = keypair.seed.hex()
        else:
            salt = nacl.utils.random(argon2id.SALTBYTES)
            key = argon2id.kdf(
                nacl.secret.SecretBox.KEY_SIZE,
                _normalise_passphrase(passphrase),
                salt,
                opslimit=self.kdf.opslimit,
                memlimit=self.kdf.memlimit,
            )
            nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
            ciphertext = nacl.secret.SecretBox(key).encrypt(keypair.seed, nonce).ciphertext
            doc["kdf"] = {
                "name": KDF_NAME,
                "opslimit": self.kdf.opslimit,
                "memlimit": self.kdf.memlimit,
                "salt": salt.hex(),
            }
            doc["cipher"] = {"name": CIPHER_NAME, "nonce": nonce.hex(), "ciphertext": ciphertext.hex()}
        self._ensure_directory()
        write_private_file(path, (json.dumps(doc, indent=2) + "\n").encode(), what=f"key {name!r}")
        return KeyInfo(name, doc["address"], doc["pubkey"], passphrase is not None, path)

    def delete(self, name: str) -> KeyInfo:
        """Remove the key file of `name` (its facts are returned); `KeyNotFound` if absent."""
        info = self.show(name)
        info.path.unlink()
        fsync_dir(self.directory)
        return info

    # -- reading

    def list_keys(self) -> list[KeyInfo]:
        """Every stored key, sorted by name. A broken or insecure file is an error
        naming it (it is never skipped silently)."""
        if not self.directory.is_dir():
            return []
        self._check_directory()
        names = sorted(
            p.name[: -len(".json")]
            for p in self.directory.iterdir()
            if p.name.endswith(".json") and _NAME_RE.fullmatch(p.name[: -len(".json")])
        )
        return [self.show(n) for n in names]

    def show(self, name: str) -> KeyInfo:
        path, obj = self._read(name)
        return KeyInfo(name, obj["address"], obj["pubkey"], bool(obj["encrypted"]), path)

    def is_encrypted(self, name: str) -> bool:
        return self.show(name).encrypted

    def seed(self, name: str, passphrase: str | None = None) -> bytes:
        """The seed of `name`, decrypting with `passphrase` when the key is encrypted.
        `PassphraseRequired` if it is and none is given, `WrongPassphrase` if it fails."""
        path, obj = self._read(name)
        what = f"key {name!r}"
        if not obj["encrypted"]:
            seed = _hex_field(obj, "seed", SEED_LEN, path, what)
        else:
            if passphrase is None:
                raise PassphraseRequired(f"key {name!r} is encrypted: a passphrase is needed")
            seed = self._decrypt(obj, passphrase, path, what, name)
        _keypair_matching(seed, obj, path, what)
        return seed

    def keypair(self, name: str, passphrase: str | None = None) -> Keypair:
        return Keypair(self.seed(name, passphrase))

    # -- internals

    def _ensure_directory(self) -> None:
        ensure_private_dir(self.directory)
        self._check_directory()

    def _check_directory(self) -> None:
        mode = self.directory.stat().st_mode
        if mode & 0o022:
            raise InsecureKeyFile(
                f"keystore directory {self.directory} is writable by group or others (mode {stat.S_IMODE(mode):04o})",
                f"restrict it with: chmod 700 {self.directory}",
            )

    def _read(self, name: str) -> tuple[Path, dict[str, Any]]:
        path = self.path_of(name)
        what = f"key {name!r}"
        if not path.exists():
            raise KeyNotFound(f"no key named {name!r} in {self.directory}")
        self._check_directory()
        obj = _json_object(read_private_file(path, what), path, what)
        _check_header(obj, path, what)
        if obj.get("name") != name:
            raise CorruptKeyFile(f"{what} {path}: the file names the key {obj.get('name')!r}")
        _hex_field(obj, "pubkey", 32, path, what)
        _hex_field(obj, "address", 20, path, what)
        if not isinstance(obj.get("encrypted"), bool):
            raise CorruptKeyFile(f"{what} {path}: 'encrypted' must be true or false")
        return path, obj

    def _decrypt(self, obj: dict[str, Any], passphrase: str, path: Path, what: str, name: str) -> bytes:
        kdf, cipher = obj.get("kdf"), obj.get("cipher")
        if not isinstance(kdf, dict) or not isinstance(cipher, dict):
            raise CorruptKeyFile(f"{what} {path}: 'kdf' and 'cipher' must be objects")
        if kdf.get("name") != KDF_NAME or cipher.get("name") != CIPHER_NAME:
            raise CorruptKeyFile(f"{what} {path}: unsupported encryption {kdf.get('name')!r}/{cipher.get('name')!r}")
        ops, mem = kdf.get("opslimit"), kdf.get("memlimit")
        if (
            type(ops) is not int
            or type(mem) is not int
            or not FAST_INSECURE_KDF.opslimit <= ops <= MAX_READ_KDF.opslimit
            or not FAST_INSECURE_KDF.memlimit <= mem <= MAX_READ_KDF.memlimit
        ):
            raise CorruptKeyFile(
                f"{what} {path}: argon2id parameters out of range (opslimit {ops!r}, memlimit {mem!r})"
            )
        salt = _hex_field(kdf, "salt", argon2id.SALTBYTES, path, what)
        nonce = _hex_field(cipher, "nonce", nacl.secret.SecretBox.NONCE_SIZE, path, what)
        ciphertext = _hex_field(cipher, "ciphertext", SEED_LEN + nacl.secret.SecretBox.MACBYTES, path, what)
        key = argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, _normalise_passphrase(passphrase), salt, opslimit=ops, memlimit=mem
        )
        try:
            return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase(f"wrong passphrase for key {name!r}") from None
