"""Raw ordered key-value backends: LevelDB for nodes, memory for tests and simulations.

The store above needs five things: point reads, ordered prefix scans, atomic write
batches with an optional sync, range compaction and close. Backends translate
their own failures into `StorageError`s so the store never sees a plyvel type.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import plyvel
import structlog

from node.storage.errors import REMEDY_IO, CorruptStore, StorageError, StoreLocked
from node.storage.layout import RESERVED
from protocol.kv import MemoryKV

log = structlog.get_logger(__name__)

# (key, value) puts and (key, None) deletes, applied in order.
Ops = Sequence[tuple[bytes, bytes | None]]

# See LevelDBBackend: sorts after every key the store writes.
END_MARKER = RESERVED + b"\xffend"


class Backend(Protocol):
    """What `NodeStore` needs from a key-value engine. Thread-safe: a pruning worker
    thread may write while the node's thread reads and writes other keys."""

    @property
    def closed(self) -> bool: ...

    def get(self, key: bytes) -> bytes | None: ...

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with `prefix`, in ascending key order."""
        ...

    def write(self, ops: Ops, *, sync: bool) -> None:
        """Apply all ops or none. With `sync`, durable on disk before returning."""
        ...

    def compact_range(self, start: bytes | None = None, stop: bytes | None = None) -> None: ...

    def close(self) -> None: ...


def _check_ops(ops: Ops) -> None:
    # Validate the whole batch before touching anything, so bad input writes nothing.
    for key, value in ops:
        if type(key) is not bytes or not (value is None or type(value) is bytes):
            raise TypeError("write ops must be (bytes, bytes | None) pairs")
        if key >= RESERVED:
            raise ValueError(f"key {key!r} is in the backend's reserved range")


# ---------------------------------------------------------------- memory


class MemoryBackend:
    """An in-memory backend. `reopen()` after `close()` simulates a restart: the new
    backend sees everything written before (memory writes are always "synced")."""

    def __init__(self) -> None:
        self._kv = MemoryKV()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def reopen(self) -> MemoryBackend:
        if not self._closed:
            raise StorageError("reopen needs the previous memory backend closed first")
        other = MemoryBackend()
        other._kv, other._lock = self._kv, self._lock
        return other

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        with self._lock:
            return self._kv.get(key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        with self._lock:
            # A copy: the caller may write (or another thread may prune) while iterating.
            items = list(self._kv.scan(prefix))
        yield from items

    def write(self, ops: Ops, *, sync: bool) -> None:
        self._check_open()
        _check_ops(ops)
        with self._lock:
            self._kv.apply(list(ops))

    def compact_range(self, start: bytes | None = None, stop: bytes | None = None) -> None:
        self._check_open()

    def close(self) -> None:
        self._closed = True


# ---------------------------------------------------------------- LevelDB

# File names LevelDB writes data into; their presence without CURRENT means a damaged
# store, and opening it with create_if_missing would start over and delete them.
_DATA_SUFFIXES = (".ldb", ".sst", ".log")


def _translate(exc: Exception, path: Path, doing: str) -> StorageError:
    msg = exc.args[0] if exc.args else exc
    text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
    if isinstance(exc, plyvel.CorruptionError):
        return CorruptStore(f"LevelDB store {path} is corrupt ({doing}): {text}")
    if isinstance(exc, plyvel.IOError) and "/LOCK" in text:
        return StoreLocked(f"LevelDB store {path} is locked by another process: {text}")
    if isinstance(exc, RuntimeError):  # plyvel's "database is closed"
        return StorageError(f"LevelDB store {path} is closed ({doing})")
    return StorageError(f"LevelDB store {path} failed ({doing}): {text}", REMEDY_IO)


class LevelDBBackend:
    """LevelDB through plyvel.

    - `paranoid_checks`: a damaged log or table makes `open` fail. Without it LevelDB
      silently drops the damaged records on recovery and rewrites the store, losing
      committed blocks. (A torn *last* record, from a kill during a write, is not
      damage: LevelDB drops just that record, which is exactly the batch atomicity.)
    - every read verifies block checksums.
    - an end-of-store marker: plyvel ends a forward scan silently, without reporting
      the error, when the last table block it reads is damaged. The marker key sorts
      after all data, so every scan is followed by a readable key (when plyvel does
      report the saved error) or misses the marker (and this backend reports it).
    - no compression by default: what the node stores is mostly signatures, keys and
      hashes, which snappy shrinks by ~13 % (31 vs 36 MB for a chain of 180,000 txs)
      for 3.7× the CPU of writing and compacting them plain (1.19 vs 0.32 s). All
      validators flush and compact the same blocks at the same moments, so that CPU
      came in bursts on every node at once and stalled the height in progress.
      Tables written compressed by an earlier version stay readable (LevelDB marks
      compression per block).
    - an 8 MiB write buffer. It bounds the memtable and the one being flushed beside
      it, and the size of the level-0 tables: LevelDB merges four of them at a time,
      reading them (and the level-1 tables they overlap: all of them, as tx-index and
      state keys are random) through memory-mapped files, whose pages count in the
      node's RSS until the inputs are deleted. With 16 MiB the level-0 tables were
      ~14.5 MB and a node's file-backed RSS jumped by up to 55 MB for a second;
      with 8 MiB the peak RSS under 2x overload fell by 35–45 MB at equal latency
      and CPU (docs/performance.md, session 8).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        write_buffer_size: int = 8 * 1024 * 1024,
        cache_size: int = 32 * 1024 * 1024,
        max_open_files: int = 512,
        bloom_filter_bits: int = 10,
        compression: str | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StorageError(f"{self.path} is not a directory", REMEDY_IO)
        fresh = not self.path.exists() or not any(self.path.iterdir())
        if not fresh and not (self.path / "CURRENT").exists():
            data = sorted(p.name for p in self.path.iterdir() if p.suffix in _DATA_SUFFIXES)
            if data:
                raise CorruptStore(
                    f"{self.path} has LevelDB data files ({', '.join(data[:3])}...) but no CURRENT "
                    "file, so LevelDB cannot tell which are live; opening it would discard them"
                )
        try:
            self._db = plyvel.DB(
                str(self.path),
                create_if_missing=True,
                paranoid_checks=True,
                write_buffer_size=write_buffer_size,
                lru_cache_size=cache_size,
                max_open_files=max_open_files,
                # Point lookups by hash (h/, t/) are random; a filter saves most disk reads.
                bloom_filter_bits=bloom_filter_bits,
                compression=compression,  # None or "snappy"
            )
        except (plyvel.Error, OSError) as exc:
            raise _translate(exc, self.path, "opening") from None
        try:
            self._ensure_marker()
        except BaseException:
            self._db.close()
            raise

    def _ensure_marker(self) -> None:
        # fill_cache=False: the check must not leave the last table block cached, or
        # damage to it that appears later would be hidden from scans until eviction.
        try:
            marker = self._db.get(END_MARKER, verify_checksums=True, fill_cache=False)
        except (plyvel.Error, RuntimeError) as exc:
            raise _translate(exc, self.path, "reading the end-of-store marker") from None
        if marker is not None:
            return
        scan = self._raw_iter(b"")
        try:
            first = next(scan, None)
        except plyvel.Error as exc:
            raise _translate(exc, self.path, "looking for data") from None
        finally:
            scan.close()  # releases the LevelDB iterator now, not at garbage collection
        if first is not None:
            raise CorruptStore(
                f"LevelDB store {self.path} holds data but its end-of-store marker is missing "
                "or unreadable"
            )
        # A new (or never written) store: nothing to lose by adding the marker.
        self._write([(END_MARKER, b"")], sync=True)

    @property
    def closed(self) -> bool:
        return bool(self._db.closed)

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key, verify_checksums=True)
        except (plyvel.Error, RuntimeError) as exc:
            raise _translate(exc, self.path, f"reading {key[:40]!r}") from None
        return value

    def _raw_iter(self, prefix: bytes) -> Generator[tuple[bytes, bytes]]:
        with self._db.iterator(start=prefix, verify_checksums=True) as it:
            yield from it

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        if prefix >= RESERVED:
            raise ValueError("cannot scan the reserved key range")
        try:
            # No stop key on purpose: the scan must run on to a key past the prefix
            # (at worst the marker) for plyvel to surface a damaged block (see class doc).
            for key, value in self._raw_iter(prefix):
                if key >= RESERVED or not key.startswith(prefix):
                    return
                yield key, value
        except (plyvel.Error, RuntimeError) as exc:
            raise _translate(exc, self.path, f"scanning {prefix!r}") from None
        raise CorruptStore(
            f"LevelDB store {self.path}: a scan of {prefix!r} ended before the end-of-store "
            "marker, so a table block could not be read"
        )

    def _write(self, ops: Ops, *, sync: bool) -> None:
        try:
            # transaction=True: if anything raises while filling the batch, nothing is written.
            with self._db.write_batch(transaction=True, sync=sync) as batch:
                for key, value in ops:
                    if value is None:
                        batch.delete(key)
                    else:
                        batch.put(key, value)
        except (plyvel.Error, RuntimeError) as exc:
            raise _translate(exc, self.path, "writing") from None

    def write(self, ops: Ops, *, sync: bool) -> None:
        _check_ops(ops)
        self._write(ops, sync=sync)

    def compact_range(self, start: bytes | None = None, stop: bytes | None = None) -> None:
        try:
            self._db.compact_range(start=start, stop=stop)
        except (plyvel.Error, RuntimeError) as exc:
            raise _translate(exc, self.path, "compacting") from None

    def close(self) -> None:
        self._db.close()
