"""Cache of verified signed peer records for py-libp2p 0.8.1 pubsub (opt-out).

Every pubsub RPC carries the sender's signed peer record, and the receiver verifies its
signature and rewrites the peer's addresses in the peerstore each time (twice for RPCs
with control messages) — the largest per-message CPU cost measured (py-libp2p issues
#791/#889). The record only changes when the sender's addresses do, so this remembers,
per receiving host, the exact record bytes it has already accepted from a peer and skips
the repeat work for ``TTL`` seconds. A record that differs in any byte is verified as
before; a rejected record is never cached. After ``TTL`` the record is verified and
stored again, which also refreshes its address TTL in the peerstore.

The patch replaces the name ``maybe_consume_signed_record`` in the two py-libp2p pubsub
modules that import it (process-wide, idempotent); ``uninstall()`` restores them.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from typing import Any

import libp2p.pubsub.gossipsub as _gossipsub_mod
import libp2p.pubsub.pubsub as _pubsub_mod
from libp2p.pubsub.utils import maybe_consume_signed_record as _original

TTL = 600.0
MAX_PER_HOST = 1024
_PATCHED_MODULES = (_pubsub_mod, _gossipsub_mod)

_caches: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[bytes, bytes], float]] = weakref.WeakKeyDictionary()
_hits = 0
_misses = 0


def cached_maybe_consume_signed_record(msg: Any, host: Any, peer_id: Any) -> bool:
    global _hits, _misses
    if not msg.HasField("senderRecord"):
        return True
    key = (peer_id.to_bytes(), msg.senderRecord)
    try:
        cache = _caches[host]
    except KeyError:
        cache = _caches.setdefault(host, OrderedDict())
    now = time.monotonic()
    expiry = cache.get(key)
    if expiry is not None and now < expiry:
        cache.move_to_end(key)
        _hits += 1
        return True
    _misses += 1
    ok = _original(msg, host, peer_id)
    if ok:
        cache[key] = now + TTL
        cache.move_to_end(key)
        while len(cache) > MAX_PER_HOST:
            cache.popitem(last=False)
    else:
        cache.pop(key, None)
    return ok


def install() -> None:
    for mod in _PATCHED_MODULES:
        mod.maybe_consume_signed_record = cached_maybe_consume_signed_record  # type: ignore[attr-defined]


def uninstall() -> None:
    for mod in _PATCHED_MODULES:
        mod.maybe_consume_signed_record = _original  # type: ignore[attr-defined]


def installed() -> bool:
    return all(
        getattr(m, "maybe_consume_signed_record", None) is cached_maybe_consume_signed_record for m in _PATCHED_MODULES
    )


def counts() -> tuple[int, int]:
    """(hits, misses) since the process started, over all hosts."""
    return _hits, _misses
