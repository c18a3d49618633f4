"""Storage faults on a real LevelDB: a process killed mid-commit, a torn last write,
damaged log and table files, a held lock, foreign directories, and the reset remedy.

Damage is done to files on disk, the way a bad disk or a crash would do it; the
store must then either recover to a block boundary or refuse with `CorruptStore`,
and never return wrong data or rewrite what it found.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_storage import (
    CHAIN_ID,
    GENESIS_HASH,
    Step,
    build,
    commit_next,
    expected_state,
    init,
    state_root,
)

from node.storage import (
    CorruptStore,
    LevelDBBackend,
    NodeStore,
    StorageError,
    StoreLocked,
    unsafe_reset,
)
from node.storage import layout as L

TESTS_DIR = Path(__file__).parent


def open_store(path: Path, **kw: object) -> NodeStore:
    return NodeStore.open_leveldb(path, chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, **kw)  # type: ignore[arg-type]


def data_files(path: Path) -> dict[str, bytes]:
    """Digest of every file LevelDB keeps data in (not its LOG/LOCK bookkeeping)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).digest()
        for p in sorted(path.iterdir())
        if p.suffix in (".log", ".ldb") or p.name.startswith(("MANIFEST", "CURRENT"))
    }


def flip_byte(file: Path, offset: int) -> None:
    with file.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x20]))


def assert_chain_intact(store: NodeStore, steps: list[Step]) -> None:
    assert store.last_height == len(steps)
    for h, step in enumerate(steps, start=1):
        assert store.block(h) == step.block
        assert store.commit(h) == step.commit
        for tx in step.block.txs:
            loc = store.tx_location(tx.hash)
            assert loc is not None and loc.height == h
    assert list(store.state_view().scan(b"")) == expected_state(len(steps))


# ---------------------------------------------------------------- crashes


CHILD = textwrap.dedent(
    """
    import logging, sys
    import structlog
    sys.path.insert(0, sys.argv[2])
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    from test_storage import CHAIN_ID, GENESIS_HASH, commit_next, init
    from node.storage import NodeStore
    store = NodeStore.open_leveldb(sys.argv[1], chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH)
    if not store.initialized:
        init(store)
    while True:
        # What a validator does per height: sign-state first, then the block.
        store.save_sign_state(b"height %d" % (store.last_height + 1))
        store.wal_append(store.last_height + 1, b"vote")
        commit_next(store, txs=3)
        print(store.last_height, flush=True)
    """
)


def test_killed_during_commits_restarts_at_an_acknowledged_block_boundary(tmp_path: Path) -> None:
    """SIGKILL a process that commits blocks as fast as it can, three times over.
    Every height it reported as committed is there after the restart, and the store
    is exactly at some block boundary: chain, state and app hash agree."""
    path = tmp_path / "data"
    acknowledged = 0
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(TESTS_DIR)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        target = acknowledged + 15
        for line in child.stdout:
            acknowledged = int(line)
            if acknowledged >= target:
                break
        child.send_signal(signal.SIGKILL)
        child.communicate()
        assert acknowledged >= target, "the child stopped before committing enough blocks"

        store = open_store(path, verify_state=state_root, deep=True)
        h = store.last_height
        assert h >= acknowledged
        assert list(store.state_view().scan(b"")) == expected_state(h)
        assert store.sign_state() in (b"height %d" % h, b"height %d" % (h + 1))
        assert store.wal_records(h) == []  # finished with the block that ended the height
        store.close()


@pytest.mark.parametrize("cut", [1, 64, 400])
def test_torn_last_write_recovers_the_previous_block(tmp_path: Path, cut: int) -> None:
    """A kill in the middle of writing the last batch leaves a torn record at the
    end of LevelDB's log; it is dropped as a whole, so block 5 is simply not there."""
    path = tmp_path / "data"
    store = open_store(path)
    steps = build(store, 5)
    store.close()
    (log,) = path.glob("*.log")
    with log.open("r+b") as f:
        f.truncate(log.stat().st_size - cut)
    store = open_store(path, verify_state=state_root, deep=True)
    assert_chain_intact(store, steps[:4])
    assert store.block(5) is None
    commit_next(store)  # and block 5 can be committed again
    assert store.last_height == 5
    store.close()


# ---------------------------------------------------------------- damage


def test_damaged_log_is_refused_and_left_as_found(tmp_path: Path) -> None:
    """Without paranoid checks LevelDB would drop the damaged part of the log and
    carry on with a shorter chain; the store refuses instead and rewrites nothing."""
    path = tmp_path / "data"
    store = open_store(path)
    build(store, 5)
    store.close()
    (log,) = path.glob("*.log")
    flip_byte(log, log.stat().st_size // 2)
    before = data_files(path)
    with pytest.raises(CorruptStore, match="corrupt") as exc:
        open_store(path)
    assert "unsafe-reset" in str(exc.value)
    assert data_files(path) == before


def test_damaged_table_is_refused_or_harmless_never_silent(tmp_path: Path) -> None:
    """Flip one byte at a time across the compacted table file(s), then open the
    store and read everything back: each flip is refused (`CorruptStore`, at open or
    at the read that meets it) or hit nothing that is read. A scan never comes back
    shortened; flips in the last data block are the case plyvel alone gets wrong
    (see LevelDBBackend), hence the dense sampling of the file's tail."""
    clean = tmp_path / "clean"
    store = open_store(clean)
    steps = build(store, 30, txs=3)
    store.compact_range()  # move everything from the log into sorted tables
    everything = list(store.backend.iterate(b""))
    store.close()
    tables = sorted(clean.glob("*.ldb"))
    assert tables
    refused = 0
    for table in tables:
        size = table.stat().st_size
        offsets = sorted({*range(0, size, max(1, size // 25)), *range(size * 7 // 10, size, 211)})
        for offset in offsets:
            work = tmp_path / "work"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(clean, work)
            flip_byte(work / table.name, offset)
            try:
                damaged = open_store(work)
            except CorruptStore:
                refused += 1
                continue
            try:
                assert list(damaged.backend.iterate(b"")) == everything
                assert_chain_intact(damaged, steps)
            except CorruptStore:
                refused += 1
            finally:
                damaged.close()
    assert refused > 0, "the sweep never hit data"


def test_a_directory_without_current_but_with_data_files_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.mkdir()
    (path / "000007.ldb").write_bytes(b"precious")
    with pytest.raises(CorruptStore, match="no CURRENT"):
        open_store(path)
    assert sorted(p.name for p in path.iterdir()) == ["000007.ldb"]
    assert (path / "000007.ldb").read_bytes() == b"precious"


def test_a_file_in_place_of_the_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"not a directory")
    with pytest.raises(StorageError, match="not a directory"):
        open_store(path)


def test_a_second_process_is_locked_out_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "data"
    first = open_store(path)
    init(first)
    with pytest.raises(StoreLocked, match="locked") as exc:
        open_store(path)
    assert exc.value.remedy and "--home" in exc.value.remedy
    first.close()
    again = open_store(path)  # the refused open left nothing behind
    assert again.last_height == 0 and again.initialized
    again.close()


# ---------------------------------------------------------------- reset


def test_unsafe_reset_sets_the_store_aside_and_keeps_the_sign_state(tmp_path: Path) -> None:
    path = tmp_path / "data"
    store = open_store(path)
    build(store, 3)
    store.save_sign_state(b"signed height 4")
    store.close()
    backend = LevelDBBackend(path)
    backend.write([(L.block_key(3), b"\x93garbage")], sync=True)
    backend.close()
    with pytest.raises(CorruptStore):
        open_store(path)

    result = unsafe_reset(path)
    assert result.sign_state_kept and result.moved_to is not None
    assert result.moved_to.parent == path.parent and result.moved_to.name.startswith("data.reset-")
    old = LevelDBBackend(result.moved_to)  # the old store is all there, damage included
    assert old.get(L.block_key(3)) == b"\x93garbage" and old.get(L.block_key(2)) is not None
    old.close()
    fresh = open_store(path)
    assert not fresh.initialized and fresh.sign_state() == b"signed height 4"
    init(fresh)  # ready to re-sync
    fresh.close()


def test_unsafe_reset_of_an_unreadable_store_drops_the_sign_state_but_nothing_else(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data"
    store = open_store(path)
    build(store, 3)
    store.save_sign_state(b"signed height 4")
    store.close()
    (log,) = path.glob("*.log")
    flip_byte(log, log.stat().st_size // 2)
    before = data_files(path)
    result = unsafe_reset(path)
    # A sign-state read past damage could be stale: a validator trusting it could
    # sign twice. None is the safe answer, and the operator is told so.
    assert not result.sign_state_kept
    assert result.moved_to is not None and data_files(result.moved_to) == before
    fresh = open_store(path)
    assert fresh.sign_state() is None and not fresh.initialized
    fresh.close()


def test_unsafe_reset_refuses_while_a_node_runs_and_handles_a_missing_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data"
    assert unsafe_reset(path).moved_to is None
    running = open_store(path)
    with pytest.raises(StoreLocked):
        unsafe_reset(path)
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
    running.close()


# ---------------------------------------------------------------- pruning


def test_pruning_with_compaction_keeps_disk_use_flat(tmp_path: Path) -> None:
    """300 blocks of ~16 KiB incompressible transactions, keeping the last 20 and
    pruning every 25: disk use stays at a small multiple of the retained blocks
    instead of growing with the chain (without pruning it ends near 5 MB)."""
    path = tmp_path / "data"
    store = NodeStore.open_leveldb(path, backend_options={"write_buffer_size": 256 * 1024})
    init(store)
    written, sizes = 0, []
    for h in range(1, 301):
        step = commit_next(store, txs=4, payload=lambda height, i: os.urandom(4096))
        written += len(step.block.encode())
        if h % 25 == 0:
            store.prune(20)
        if h % 50 == 0:
            sizes.append(sum(p.stat().st_size for p in path.iterdir()))
    store.close()
    assert written > 4_000_000
    assert max(sizes) < written / 5, sizes
    assert sizes[-1] - sizes[1] < written / 20, sizes  # flat, not growing with the chain
    store = NodeStore.open_leveldb(path, deep=True)
    assert (store.base_height, store.last_height) == (281, 300)
    store.close()


def test_tables_are_written_uncompressed_unless_asked(tmp_path: Path) -> None:
    """2 MB of zeros: snappy would make it a few KB; the default keeps it as it is
    (the node's data — signatures, keys, hashes — barely compresses, see backend.py)."""
    sizes = {}
    for compression in (None, "snappy"):
        path = tmp_path / str(compression)
        backend = LevelDBBackend(path) if compression is None else LevelDBBackend(path, compression=compression)
        backend.write([(b"s/%04d" % i, bytes(10_000)) for i in range(200)], sync=True)
        backend.compact_range()
        assert backend.get(b"s/0199") == bytes(10_000)
        backend.close()
        sizes[compression] = sum(p.stat().st_size for p in path.glob("*.ldb"))
    assert sizes[None] > 2_000_000 and sizes["snappy"] < 200_000, sizes


def test_the_memtable_becomes_a_table_before_it_holds_9_mib(tmp_path: Path) -> None:
    """The write buffer bounds two things at once (see backend.py): the memory of the
    memtable (and of the one being flushed), and the size of the level-0 tables, four
    of which a compaction later reads through memory-mapped files."""
    path = tmp_path / "db"
    backend = LevelDBBackend(path)
    for chunk in range(9):  # 9 MiB of distinct keys, 1 MiB per batch
        backend.write([(b"t/%02d%05d" % (chunk, i), os.urandom(1024)) for i in range(1024)], sync=False)
    deadline = time.monotonic() + 20  # the flush runs on LevelDB's own thread
    while not list(path.glob("*.ldb")):
        assert time.monotonic() < deadline, "9 MiB written and still no table: the write buffer is larger"
        time.sleep(0.01)
    assert backend.get(b"t/0801023") is not None
    backend.close()


def _last_data_block_end(table: Path) -> int:
    """Offset just past the last data block's contents in an SST written without a
    filter block: the footer's metaindex handle points right after that block's
    5-byte trailer."""
    footer = table.read_bytes()[-48:]
    value, shift, i = 0, 0, 0
    while True:  # the metaindex offset is the footer's first varint
        value |= (footer[i] & 0x7F) << shift
        shift += 7
        if footer[i] < 0x80:
            return value - 5
        i += 1


def test_damage_appearing_while_open_is_reported_by_the_scan_that_meets_it(tmp_path: Path) -> None:
    """Bit rot in the last table block while the node runs. plyvel ends such a scan
    early without an error; the end-of-store marker turns that into CorruptStore."""
    path = tmp_path / "data"
    options = {"backend_options": {"bloom_filter_bits": 0}}
    store = open_store(path, **options)
    build(store, 30, txs=3)
    store.compact_range()
    store.close()
    store = open_store(path, **options)
    (table,) = path.glob("*.ldb")
    flip_byte(table, _last_data_block_end(table) - 1)
    assert store.block(1) is not None  # reads elsewhere are unaffected
    with pytest.raises(CorruptStore, match=r"end-of-store marker|corrupt"):
        list(store.backend.iterate(L.TX))
    store.close()
