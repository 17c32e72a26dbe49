"""One running bot per WORKER_ID on a PostgreSQL database: a session advisory lock, held for the process.

Why a lock at all when task writes are fenced by leases (tasks.py): the lease names the worker id, and two
live processes with the same id would both take that lease for their own and drive the same tasks (two
deliveries of one portrait). On SQLite a flock beside the file refuses the second one
(bot/jobs/worker_lock.py); a PostgreSQL database has no file beside it, and its clients may be on several
hosts, so the server keeps the lock instead: `pg_try_advisory_lock(<schema key>, <worker id key>)` on a
connection of its own. PostgreSQL drops a session lock when its connection ends, however the process dies,
so a crash never leaves a stale lock behind.

The bot's event loop belongs to python-telegram-bot (run_polling makes it), so the lock's connection lives
on a small thread with its own loop, from `acquire()` until `release()`. If the server restarts, the
connection and the lock are gone; the fenced leases still keep two processes from both acting on a task.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection
from types import TracebackType
from typing import Any, ClassVar

import asyncpg

from .errors import StorageError

_KEY = "hashtext(current_schema()), hashtext($1)"
#: Live holders of any worker lock in this schema (the two-key form: classid = first key, objsubid = 2).
_HOLDERS = """
SELECT COUNT(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 2
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = (hashtext(current_schema())::bigint & 4294967295)::oid
"""
#: Which of the worker ids $1 a live process holds the lock of in this schema (objid = the second key).
_LIVE = f"""
SELECT id FROM unnest($1::text[]) AS id WHERE EXISTS ({_HOLDERS.replace("COUNT(*)", "1")}
  AND objid = (hashtext(id)::bigint & 4294967295)::oid)
"""


class WorkerIdInUse(StorageError):
    """Another live process holds this worker id's lock on this database."""


class PgWorkerLock:
    """`with PgWorkerLock(url, worker_id):` holds the lock for the life of the process's bot."""

    #: The worker ids whose lock this process holds.
    held: ClassVar[set[str]] = set()

    def __init__(self, url: str, worker_id: str) -> None:
        self.url = url
        self.worker_id = worker_id
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def acquire(self) -> None:
        self._thread = threading.Thread(target=asyncio.run, args=(self._hold(),), daemon=True, name="db-lock")
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    async def _hold(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            conn = await asyncpg.connect(self.url)
        except BaseException as exc:  # reported to acquire(), which raises it in the caller's thread
            self._error = exc
            self._ready.set()
            return
        try:
            if not await conn.fetchval(f"SELECT pg_try_advisory_lock({_KEY})", self.worker_id):
                self._error = WorkerIdInUse(
                    f"another portrait-bot with WORKER_ID={self.worker_id} is running on this database; "
                    "stop it, or give this one another WORKER_ID"
                )
                return
            PgWorkerLock.held.add(self.worker_id)
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                PgWorkerLock.held.discard(self.worker_id)
        finally:
            self._ready.set()
            await conn.close()  # ends the session: the server drops the lock

    def release(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and self._error is None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> PgWorkerLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


async def running_workers(url: str) -> int:
    """How many live processes hold a worker lock on this database's schema (0: no bot is running)."""
    conn: Any = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(_HOLDERS))
    finally:
        await conn.close()


async def live_worker_ids(url: str, worker_ids: Collection[str]) -> set[str]:
    """Those of `worker_ids` whose lock a live process holds on this database's schema."""
    conn: Any = await asyncpg.connect(url)
    try:
        return {str(row[0]) for row in await conn.fetch(_LIVE, list(worker_ids))}
    finally:
        await conn.close()
