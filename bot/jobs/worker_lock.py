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
import os
import re
from pathlib import Path
from types import TracebackType


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
