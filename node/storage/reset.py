"""`unsafe_reset`: set a LevelDB store aside and start empty, keeping the sign-state.

This is the documented remedy for a refused store. It deletes nothing: the old
directory is renamed next to the new one for diagnosis or manual recovery. The
validator sign-state is carried over only when it can be read with every check on;
a possibly stale sign-state is worse than none, because a validator that trusts it
could sign twice at a height it already signed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from node.storage.backend import LevelDBBackend
from node.storage.errors import CorruptStore, StorageError, StoreLocked
from node.storage.layout import SIGN_STATE

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ResetResult:
    moved_to: Path | None  # where the old directory now is (None: there was none)
    sign_state_kept: bool  # False: no sign-state, or it could not be read safely


def unsafe_reset(path: str | Path, *, keep_sign_state: bool = True) -> ResetResult:
    """Rename the store directory `path` to `<path>.reset-<UTC time>` and create an
    empty store at `path` holding only the old sign-state (when readable and wanted).
    Raises `StoreLocked` if a running node holds the store (checked first, whether or
    not the sign-state is wanted: a store in use is never moved)."""
    path = Path(path)
    if not path.exists():
        return ResetResult(None, False)
    check_unlocked(path)
    sign_state = _read_sign_state(path) if keep_sign_state else None
    aside = _aside_name(path)
    path.rename(aside)
    fresh = LevelDBBackend(path)
    try:
        if sign_state is not None:
            fresh.write([(SIGN_STATE, sign_state)], sync=True)
    finally:
        fresh.close()
    log.warning("store reset", moved_to=str(aside), sign_state_kept=sign_state is not None)
    return ResetResult(aside, sign_state is not None)


def check_unlocked(path: str | Path) -> None:
    """Raise `StoreLocked` if a process — this one included — holds the LevelDB lock of
    the store directory `path`. Reads and writes nothing in the store.

    LevelDB locks ``<path>/LOCK`` with a POSIX record lock. Probing it from this process
    would be blind to our own locks, and closing the probe's descriptor would drop them,
    so a forked child tries the lock and reports back in its exit status.
    """
    lock_file = Path(path) / "LOCK"
    if not lock_file.is_file():
        return  # never opened by LevelDB (or not a store): nobody can hold it
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        code = 2
        try:
            fd = os.open(lock_file, os.O_RDWR)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                code = 0
            except OSError as exc:
                code = 1 if exc.errno in (errno.EACCES, errno.EAGAIN) else 2
        except BaseException:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 1:
        raise StoreLocked(f"LevelDB store {path} is locked by a running process ({lock_file} is held)")


def _read_sign_state(path: Path) -> bytes | None:
    try:
        backend = LevelDBBackend(path)
    except CorruptStore as exc:
        log.warning("sign-state unreadable, not carried over", reason=exc.reason)
        return None
    try:
        return backend.get(SIGN_STATE)
    except CorruptStore as exc:
        log.warning("sign-state unreadable, not carried over", reason=exc.reason)
        return None
    finally:
        backend.close()


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        candidate = path.with_name(f"{path.name}.reset-{stamp}" + (f"-{n}" if n else ""))
        if not candidate.exists():
            return candidate
    raise StorageError(f"no free name to move {path} aside")
