"""One running process per WORKER_ID and database.

Why: task leases are held under the worker id, which stays the same across restarts so that a bot killed
with `kill -9` takes its tasks back at once (bot/runner.py). The price is that two live processes with the
same id would both treat those leases as their own and drive the same tasks (two deliveries of one
portrait). An exclusive `flock` on a file beside the database makes the second one refuse to start. The
kernel drops the lock when its process dies, however it dies, so a crash never leaves a stale lock behind.
(Processes on other hosts have other host names, hence other worker ids; a shared network volume where
several hosts set one WORKER_ID is a misconfiguration this cannot see.)
"""

from __future__ import annotations

import asyncio
import fcntl
import glob
import os
import re
import time
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import Final

from storage.dialect import is_postgres_url
from storage.pg_worker_lock import PgWorkerLock, live_worker_ids, running_workers

#: The worker ids whose lock this process holds (a `WorkerLock` or a `PgWorkerLock`).
_held: set[str] = set()
#: How often, and how far apart, a start tries the lock before it refuses: a live holder keeps it all
#: along, another process's `_locked` probe holds it for microseconds.
ACQUIRE_TRIES: Final = 10
ACQUIRE_PAUSE_SECONDS: Final = 0.05
_pause = time.sleep


class WorkerLockHeld(Exception):
    """Another live process runs with this worker id on this database."""


class WorkerLock:
    """`with WorkerLock(db_path, worker_id):` holds the lock for the life of the process's bot."""

    def __init__(self, db_path: Path, worker_id: str) -> None:
        self.path = lock_path(db_path, worker_id)
        self.worker_id = worker_id
        self._fd: int | None = None

    def acquire(self) -> None:
        """Refuses (WorkerLockHeld) only when the lock stays taken through every try: `_locked` (another
        process asking whether this id runs) holds it shared for an instant, and a start that met such
        an instant once would otherwise refuse as if a live process had the id."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        for attempt in range(ACQUIRE_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt + 1 < ACQUIRE_TRIES:
                    _pause(ACQUIRE_PAUSE_SECONDS)
        else:
            os.close(fd)
            raise WorkerLockHeld(
                f"another portrait-bot with WORKER_ID={self.worker_id} is running on this database "
                f"(lock {self.path}); stop it, or give this one another WORKER_ID"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        _held.add(self.worker_id)

    def release(self) -> None:
        if self._fd is not None:
            _held.discard(self.worker_id)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WorkerLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lock_path(db_path: Path, worker_id: str) -> Path:
    """The lock file of `worker_id` beside the SQLite file `db_path`."""
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", worker_id)
    return db_path.with_name(f"{db_path.name}.{safe_id}.lock")


def held_here(worker_id: str) -> bool:
    """True when this process holds `worker_id`'s lock: then no other live process runs with that id, so
    whatever an earlier process of this id left half done is a dead process's."""
    return worker_id in _held or worker_id in PgWorkerLock.held


async def running_ids(db: Path | str, worker_ids: Collection[str]) -> set[str]:
    """Those of `worker_ids` that a live process holds the lock of, on this database (a crashed process's
    lock is gone with it: the kernel, or the PostgreSQL server, dropped it)."""
    if not worker_ids:
        return set()
    if isinstance(db, str) and is_postgres_url(db):
        return await live_worker_ids(db, worker_ids)
    path = Path(db)
    return await asyncio.to_thread(lambda: {w for w in worker_ids if _locked(lock_path(path, w))})


def _locked(path: Path) -> bool:
    """A live process holds the flock on `path` (a shared lock taken for an instant does not disturb it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


async def running_bot(db: Path | str) -> bool:
    """True when a live `portrait-bot run` holds a worker lock on this database: beside the SQLite file
    (bot/jobs/worker_lock.py), or on the PostgreSQL server (storage/pg_worker_lock.py).

    A shared lock taken for an instant does not disturb the bot holding its exclusive one; a lock file
    left by a process that died is free again, since the kernel drops the lock with its process.
    """
    if isinstance(db, str) and is_postgres_url(db):
        return await running_workers(db) > 0
    return any(_locked(Path(name)) for name in glob.glob(os.path.join(glob.escape(str(db)) + ".*.lock")))
