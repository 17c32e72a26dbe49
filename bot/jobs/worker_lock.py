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

import fcntl
import glob
import os
import re
from pathlib import Path
from types import TracebackType

from storage.dialect import is_postgres_url
from storage.pg_worker_lock import running_workers


class WorkerLockHeld(Exception):
    """Another live process runs with this worker id on this database."""


class WorkerLock:
    """`with WorkerLock(db_path, worker_id):` holds the lock for the life of the process's bot."""

    def __init__(self, db_path: Path, worker_id: str) -> None:
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", worker_id)
        self.path = db_path.with_name(f"{db_path.name}.{safe_id}.lock")
        self.worker_id = worker_id
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WorkerLockHeld(
                f"another portrait-bot with WORKER_ID={self.worker_id} is running on this database "
                f"(lock {self.path}); stop it, or give this one another WORKER_ID"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
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


async def running_bot(db: Path | str) -> bool:
    """True when a live `portrait-bot run` holds a worker lock on this database: beside the SQLite file
    (bot/jobs/worker_lock.py), or on the PostgreSQL server (storage/pg_worker_lock.py).

    A shared lock taken for an instant does not disturb the bot holding its exclusive one; a lock file
    left by a process that died is free again, since the kernel drops the lock with its process.
    """
    if isinstance(db, str) and is_postgres_url(db):
        return await running_workers(db) > 0
    for name in glob.glob(os.path.join(glob.escape(str(db)) + ".*.lock")):
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return False
