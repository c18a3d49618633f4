"""Decoding a transaction submitted to `POST /v1/txs`.

Two encodings (docs/api.md, "Submitting a transaction"):

* ``Content-Type: application/msgpack`` — the body is the canonical ``Tx.encode()``.
* ``Content-Type: application/json`` — an object, either ``{"tx": "<base64 of
  Tx.encode()>"}`` or the envelope with base64 byte fields::

      {"chain_id": str, "sender": b64(32), "nonce": int, "kind": str,
       "body": b64, "cosignatures": [{"signer": b64(32), "signature": b64(64)}],
       "signature": b64(64)}

  (``cosignatures`` may be omitted when empty). Base64 is RFC 4648 standard
  alphabet with padding. Unknown keys, floats and wrong types are refused.

Either way the result is checked exactly as the wire decoder checks it (bounds,
canonical co-signature order, size), so a tx admitted here encodes back to one
canonical byte string and has one hash.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from protocol.errors import DecodeError
from protocol.limits import MAX_TX_BYTES
from protocol.types import Tx

from .errors import ApiError, bad_request

MSGPACK_TYPES = frozenset({"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"})
JSON_TYPES = frozenset({"application/json"})
ENVELOPE_REQUIRED = frozenset({"chain_id", "sender", "nonce", "kind", "body", "signature"})
ENVELOPE_OPTIONAL = frozenset({"cosignatures"})


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_tx(content_type: str | None, body: bytes) -> Tx:
    kind = media_type(content_type)
    if kind in MSGPACK_TYPES:
        return _from_msgpack(body, "body")
    if kind in JSON_TYPES:
        return _from_json(body)
    raise ApiError(
        415,
        f"Content-Type must be application/msgpack or application/json, got {kind or 'none'!r}",
    )


def _from_msgpack(raw: bytes, what: str) -> Tx:
    if not raw:
        raise bad_request(f"{what} is empty: expected a canonical msgpack transaction")
    try:
        return Tx.decode(raw)
    except DecodeError as exc:
        raise ApiError(400, f"{what} is not a valid transaction: {exc.reason}", "bad_tx") from None


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not allowed")


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_float=_reject_constant, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad_request("the JSON body is not UTF-8") from None
    except RecursionError:
        raise bad_request("the JSON body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, floats, over-long integers
        raise bad_request(f"the body is not valid JSON: {str(exc)[:200]}") from None


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise bad_request(f"{name} is not valid base64 (standard alphabet, padded)") from None


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{name} is not valid UTF-8 text") from None
    return value


def _from_json(body: bytes) -> Tx:
    if not body:
        raise bad_request("the body is empty: expected a JSON object")
    doc = _load_json(body)
    if not isinstance(doc, dict):
        raise bad_request("the JSON body must be an object")
    keys = set(doc)
    if keys == {"tx"}:
        return _from_msgpack(_b64(doc["tx"], "tx"), "tx")
    unknown = sorted(keys - ENVELOPE_REQUIRED - ENVELOPE_OPTIONAL)
    missing = sorted(ENVELOPE_REQUIRED - keys)
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown key(s) {', '.join(k[:40] for k in unknown[:10])}")
        if missing:
            parts.append(f"missing key(s) {', '.join(missing)}")
        raise bad_request(f"the JSON transaction has {' and '.join(parts)} (expected {{\"tx\": ...}} or the envelope)")
    nonce = doc["nonce"]
    if type(nonce) is not int:
        raise bad_request("nonce must be an integer")
    cosigs = doc.get("cosignatures", [])
    if not isinstance(cosigs, list):
        raise bad_request("cosignatures must be a list")
    wire_cosigs = []
    for i, c in enumerate(cosigs):
        if not isinstance(c, dict) or set(c) != {"signer", "signature"}:
            raise bad_request(f"cosignatures[{i}] must be an object with exactly signer and signature")
        wire_cosigs.append([_b64(c["signer"], f"cosignatures[{i}].signer"),
                            _b64(c["signature"], f"cosignatures[{i}].signature")])
    wire = [
        _text(doc["chain_id"], "chain_id"),
        _b64(doc["sender"], "sender"),
        nonce,
        _text(doc["kind"], "kind"),
        _b64(doc["body"], "body"),
        wire_cosigs,
        _b64(doc["signature"], "signature"),
    ]
    try:
        tx = Tx.from_wire(wire)
        size = len(tx.encode())
    except DecodeError as exc:
        raise ApiError(400, f"not a valid transaction: {exc.reason}", "bad_tx") from None
    if size > MAX_TX_BYTES:
        raise ApiError(400, f"the transaction encodes to {size} bytes, over the limit of {MAX_TX_BYTES}", "bad_tx")
    return tx


def tx_to_json_envelope(tx: Tx) -> dict[str, Any]:
    """The JSON envelope form of `tx` (what a client would POST); the inverse of
    the envelope branch of `parse_tx`."""

    def b(x: bytes) -> str:
        return base64.b64encode(x).decode("ascii")

    return {
        "chain_id": tx.chain_id,
        "sender": b(tx.sender),
        "nonce": tx.nonce,
        "kind": tx.kind,
        "body": b(tx.body),
        "cosignatures": [{"signer": b(c.signer), "signature": b(c.signature)} for c in tx.cosignatures],
        "signature": b(tx.signature),
    }
