"""node.keys: the validator key file and the client keystore."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

from node.errors import (
    CorruptKeyFile,
    InsecureKeyFile,
    InvalidKeyName,
    KeyExists,
    KeyNotFound,
    KeystoreError,
    NodeError,
    PassphraseRequired,
    WrongPassphrase,
)
from node.keys import (
    FAST_INSECURE_KDF,
    INTERACTIVE_KDF,
    Keystore,
    check_key_name,
    create_validator_key,
    load_validator_key,
    parse_seed_hex,
)
from protocol.crypto import Keypair, address_hex

SEED = bytes(range(32))


def mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


@pytest.fixture
def ks(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys", kdf=FAST_INSECURE_KDF)


# ----------------------------------------------------------------------------- validator key


def test_validator_key_created_0600_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "config" / "validator_key.json"
    key = create_validator_key(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    doc = json.loads(path.read_text())
    assert set(doc) == {"version", "type", "address", "pubkey", "seed"}
    assert doc["pubkey"] == key.pubkey_hex
    assert doc["address"] == address_hex(key.pubkey) == key.address_hex
    loaded = load_validator_key(path)
    assert loaded.keypair.seed == key.keypair.seed
    assert [p.name for p in path.parent.iterdir()] == ["validator_key.json"]  # no temp file left


def test_validator_key_from_seed_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "validator_key.json"
    key = create_validator_key(path, seed=SEED)
    assert key.pubkey == Keypair(SEED).public_key
    with pytest.raises(KeyExists, match="refusing to overwrite"):
        create_validator_key(path)
    assert load_validator_key(path).pubkey == Keypair(SEED).public_key


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o644, 0o660, 0o610])
def test_group_or_world_accessible_validator_key_is_refused(tmp_path: Path, bad_mode: int) -> None:
    path = tmp_path / "validator_key.json"
    create_validator_key(path)
    path.chmod(bad_mode)
    with pytest.raises(InsecureKeyFile) as info:
        load_validator_key(path)
    message = str(info.value)
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert f"{bad_mode:04o}" in message
    assert isinstance(info.value, NodeError)


def test_missing_and_corrupt_validator_key(tmp_path: Path) -> None:
    path = tmp_path / "validator_key.json"
    with pytest.raises(KeyNotFound):
        load_validator_key(path)
    create_validator_key(path, seed=SEED)
    doc = json.loads(path.read_text())
    doc["pubkey"] = Keypair(bytes(32)).public_key.hex()
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptKeyFile, match="does not match the seed"):
        load_validator_key(path)
    path.write_text("{not json")
    with pytest.raises(CorruptKeyFile, match="not valid JSON"):
        load_validator_key(path)
    path.write_text(json.dumps({**doc, "version": 9}))
    with pytest.raises(CorruptKeyFile, match="version"):
        load_validator_key(path)


# ----------------------------------------------------------------------------- keystore, unencrypted


def test_add_list_show_export_unencrypted(ks: Keystore) -> None:
    info = ks.add("alice", seed=SEED)
    assert info.address == address_hex(Keypair(SEED).public_key)
    assert info.pubkey == Keypair(SEED).public_key.hex()
    assert not info.encrypted
    assert mode(ks.directory) == 0o700
    assert mode(info.path) == 0o600
    assert info.path == ks.directory / "alice.json"
    fresh = ks.add("bob")
    assert fresh.address != info.address
    assert [i.name for i in ks.list_keys()] == ["alice", "bob"]
    assert ks.show("alice") == info
    assert ks.seed("alice") == SEED
    assert ks.keypair("alice").public_key == Keypair(SEED).public_key
    assert json.loads(info.path.read_text())["seed"] == SEED.hex()


def test_list_of_missing_or_empty_keystore(ks: Keystore) -> None:
    assert ks.list_keys() == []
    ks.directory.mkdir(mode=0o700)
    (ks.directory / ".alice.json.123.tmp").write_text("junk")
    (ks.directory / "notes.txt").write_text("junk")
    assert ks.list_keys() == []


def test_duplicate_name_refused(ks: Keystore) -> None:
    ks.add("alice", seed=SEED)
    with pytest.raises(KeyExists):
        ks.add("alice")
    assert ks.seed("alice") == SEED


def test_delete(ks: Keystore) -> None:
    ks.add("alice")
    assert ks.delete("alice").name == "alice"
    assert ks.list_keys() == []
    with pytest.raises(KeyNotFound, match="no key named 'alice'"):
        ks.delete("alice")
    with pytest.raises(KeyNotFound):
        ks.show("alice")


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "../evil", "a/b", "/abs", ".hidden", "-flag", "_x", "a" * 65, "a b", "é", "a\x00", "a\\b"],
)
def test_bad_names_are_refused_and_touch_nothing(ks: Keystore, tmp_path: Path, name: str) -> None:
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(InvalidKeyName, match="invalid key name"):
        ks.add(name)
    with pytest.raises(InvalidKeyName):
        ks.show(name)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("name", ["a", "alice", "Bob-2", "k.1_x", "9" * 64])
def test_good_names(name: str) -> None:
    assert check_key_name(name) == name


def test_insecure_key_file_and_directory_refused(ks: Keystore) -> None:
    info = ks.add("alice")
    info.path.chmod(0o644)
    for call in (lambda: ks.show("alice"), ks.list_keys, lambda: ks.seed("alice")):
        with pytest.raises(InsecureKeyFile, match=r"chmod 600"):
            call()
    info.path.chmod(0o600)
    ks.directory.chmod(0o770)
    with pytest.raises(InsecureKeyFile, match="chmod 700"):
        ks.list_keys()
    with pytest.raises(InsecureKeyFile):
        ks.add("bob")
    ks.directory.chmod(0o755)  # readable by others lists only names: allowed
    assert [i.name for i in ks.list_keys()] == ["alice"]


def test_file_claiming_another_name_is_corrupt(ks: Keystore) -> None:
    info = ks.add("alice")
    os.rename(info.path, ks.directory / "mallory.json")
    with pytest.raises(CorruptKeyFile, match="names the key 'alice'"):
        ks.show("mallory")


# ----------------------------------------------------------------------------- keystore, encrypted


def test_encrypted_key_round_trip(ks: Keystore) -> None:
    info = ks.add("alice", seed=SEED, passphrase="correct horse")
    assert info.encrypted
    raw = info.path.read_text()
    assert SEED.hex() not in raw
    doc = json.loads(raw)
    assert set(doc) == {"version", "name", "type", "address", "pubkey", "encrypted", "kdf", "cipher"}
    assert doc["kdf"]["name"] == "argon2id"
    assert (doc["kdf"]["opslimit"], doc["kdf"]["memlimit"]) == (FAST_INSECURE_KDF.opslimit, FAST_INSECURE_KDF.memlimit)
    assert len(bytes.fromhex(doc["kdf"]["salt"])) == 16
    assert doc["cipher"]["name"] == "xsalsa20poly1305"
    assert len(bytes.fromhex(doc["cipher"]["nonce"])) == 24
    assert len(bytes.fromhex(doc["cipher"]["ciphertext"])) == 48
    # public facts need no passphrase
    assert ks.show("alice").address == address_hex(Keypair(SEED).public_key)
    assert ks.list_keys()[0].encrypted
    with pytest.raises(PassphraseRequired):
        ks.seed("alice")
    assert ks.seed("alice", "correct horse") == SEED


def test_wrong_passphrase_is_a_clear_error(ks: Keystore) -> None:
    ks.add("alice", passphrase="right")
    with pytest.raises(WrongPassphrase) as info:
        ks.seed("alice", "wrong")
    assert str(info.value) == "wrong passphrase for key 'alice'"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(info.value, KeystoreError)


def test_empty_passphrase_refused(ks: Keystore) -> None:
    with pytest.raises(KeystoreError, match="empty"):
        ks.add("alice", passphrase="")
    assert ks.list_keys() == []


def test_passphrase_is_unicode_normalised(ks: Keystore) -> None:
    composed = unicodedata.normalize("NFC", "pässwörd")
    decomposed = unicodedata.normalize("NFD", "pässwörd")
    assert composed != decomposed
    ks.add("alice", seed=SEED, passphrase=composed)
    assert ks.seed("alice", decomposed) == SEED


def test_tampered_clear_fields_are_detected(ks: Keystore) -> None:
    info = ks.add("alice", seed=SEED, passphrase="pw")
    doc = json.loads(info.path.read_text())
    other = Keypair(bytes(32)).public_key
    doc["pubkey"], doc["address"] = other.hex(), address_hex(other)
    info.path.write_text(json.dumps(doc))
    assert ks.show("alice").pubkey == other.hex()  # show trusts the clear fields...
    with pytest.raises(CorruptKeyFile, match="does not match"):
        ks.seed("alice", "pw")  # ...but decrypting checks them


@pytest.mark.parametrize(
    ("field", "value"),
    [("memlimit", 1 << 40), ("opslimit", 10**9), ("opslimit", 0), ("memlimit", "64"), ("name", "scrypt")],
)
def test_unreasonable_kdf_parameters_are_refused(ks: Keystore, field: str, value: object) -> None:
    info = ks.add("alice", passphrase="pw")
    doc = json.loads(info.path.read_text())
    doc["kdf"][field] = value
    info.path.write_text(json.dumps(doc))
    with pytest.raises(CorruptKeyFile):
        ks.seed("alice", "pw")


def test_default_kdf_is_interactive(tmp_path: Path) -> None:
    ks = Keystore(tmp_path)
    assert ks.kdf == INTERACTIVE_KDF
    info = ks.add("alice", seed=SEED, passphrase="pw")
    doc = json.loads(info.path.read_text())
    assert doc["kdf"]["opslimit"] == INTERACTIVE_KDF.opslimit
    assert doc["kdf"]["memlimit"] == INTERACTIVE_KDF.memlimit
    assert ks.seed("alice", "pw") == SEED


# ----------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("text", [SEED.hex(), "  " + SEED.hex() + "\n", "0x" + SEED.hex(), SEED.hex().upper()])
def test_parse_seed_hex(text: str) -> None:
    assert parse_seed_hex(text) == SEED


@pytest.mark.parametrize("text", ["", "00" * 31, "00" * 33, "zz" * 32, SEED.hex()[:-1] + "g"])
def test_parse_seed_hex_rejects(text: str) -> None:
    with pytest.raises(KeystoreError, match="64 hexadecimal digits"):
        parse_seed_hex(text)
