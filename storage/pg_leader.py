"""Who leads among processes on one PostgreSQL schema: a session advisory lock tried, never waited for.

`PgLeaderLock(url, name)` holds `pg_try_advisory_lock(key)` on a connection of its own, the key made from
the schema and `name` (the one-bigint form with its own high 32 bits, so it is no worker lock and no write
lock: pg_worker_lock.py counts only two-key locks). PostgreSQL drops the lock when the session ends, however
the holder dies, so another process gets it at its next try. The holder learns that it lost the lock
(its connection ended, or the server stopped answering) from `lost` and `check()`, and must stop acting as
the leader at once: by then another process may hold the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

#: High 32 bits of a leader lock's key ("poll"), apart from the write lock's ("port").
LEADER_LOCK_CLASS = 0x706F6C6C
_TRY = f"SELECT pg_try_advisory_lock(({LEADER_LOCK_CLASS}::bigint << 32) | " \
    "(hashtext(current_schema() || '/' || $1)::bigint & 4294967295))"  # fmt: skip
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PgLeaderLock:
    """`await lock.try_acquire()` (True: this process leads), `await lock.check()`, `await lock.release()`."""

    def __init__(self, url: str, name: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.name = name
        self.timeout = timeout
        #: Set when the lock's connection ends (this process no longer leads).
        self.lost = asyncio.Event()
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self.lost.is_set()

    async def try_acquire(self) -> bool:
        """Take the lock if no one holds it; False (never an exception) when taken or unreachable."""
        if self.held:
            return True
        await self.release()
        try:
            conn: Any = await asyncpg.connect(self.url, timeout=self.timeout)
        except _ERRORS as exc:
            log.warning("leader lock %r: cannot connect (%s)", self.name, type(exc).__name__)
            return False
        try:
            got = bool(await conn.fetchval(_TRY, self.name, timeout=self.timeout))
        except _ERRORS:
            got = False
        if not got:
            with contextlib.suppress(*_ERRORS):
                await conn.close(timeout=self.timeout)
            return False
        self.lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: self.lost.set())
        self._conn = conn
        return True

    async def check(self) -> bool:
        """Is the lock still ours? A round trip within `timeout`; on failure the lock counts as lost."""
        if not self.held:
            return False
        try:
            await self._conn.fetchval("SELECT 1", timeout=self.timeout)
        except _ERRORS:
            self.lost.set()
            return False
        return True

    async def release(self) -> None:
        """Give the lock up (end the session); the next try_acquire starts afresh."""
        conn, self._conn = self._conn, None
        self.lost.set()
        if conn is not None:
            try:
                await conn.close(timeout=self.timeout)
            except _ERRORS:
                conn.terminate()
