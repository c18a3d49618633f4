"""Strict parsing of path and query parameters: anything malformed is a 400 that
says which parameter and why, never an exception further down."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from .errors import bad_request

U64_MAX = 2**64 - 1
_DIGITS = re.compile(r"[0-9]{1,20}")
_HEX = re.compile(r"[0-9a-fA-F]*")
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]{1,128}")


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def hex_bytes(value: str, name: str, sizes: tuple[int, ...]) -> bytes:
    """`value` as bytes of one of `sizes`, written as hex (either case, optional 0x)."""
    text = value[2:] if value[:2] in ("0x", "0X") else value
    if not _HEX.fullmatch(text) or len(text) % 2 or len(text) // 2 not in sizes:
        want = " or ".join(f"{2 * s} hex digits" for s in sizes)
        raise bad_request(f"{name} must be {want}, got {_show(value)}")
    return bytes.fromhex(text)


def uint(value: str, name: str, lo: int = 0, hi: int = U64_MAX) -> int:
    if not _DIGITS.fullmatch(value):
        raise bad_request(f"{name} must be a decimal integer, got {_show(value)}")
    n = int(value)
    if not lo <= n <= hi:
        raise bad_request(f"{name} must be in [{lo}, {hi}], got {n}")
    return n


def query_uint(query: Mapping[str, str], name: str, default: int, lo: int = 0, hi: int = U64_MAX) -> int:
    raw = query.get(name)
    return default if raw is None else uint(raw, name, lo, hi)


def seconds(value: str, name: str, lo_exclusive: float, hi: float) -> float:
    """A positive decimal number of seconds, at most `hi` (e.g. "2.5")."""
    if not _SECONDS.fullmatch(value):
        raise bad_request(f"{name} must be a number of seconds like 10 or 2.5, got {_show(value)}")
    t = float(value)
    if not math.isfinite(t) or not lo_exclusive < t <= hi:
        raise bad_request(f"{name} must be more than {lo_exclusive:g} and at most {hi:g} seconds, got {value}")
    return t


def peer_id(value: str) -> str:
    if not _BASE58.fullmatch(value):
        raise bad_request(f"peer_id must be a base58 libp2p peer id, got {_show(value)}")
    return value


def choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    if raw not in allowed:
        raise bad_request(f"{name} must be one of {', '.join(allowed)}, got {_show(raw)}")
    return raw


def choices(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> set[str]:
    """A comma-separated subset of `allowed` (all of them when absent)."""
    raw = query.get(name)
    if raw is None:
        return set(allowed)
    picked = {p.strip() for p in raw.split(",") if p.strip()}
    unknown = sorted(picked - set(allowed))
    if unknown or not picked:
        raise bad_request(f"{name} must be a comma-separated subset of {', '.join(allowed)}, got {_show(raw)}")
    return picked
