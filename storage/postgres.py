"""The PostgreSQL backend: the same `Db`/`Session` API as db.py, on an asyncpg pool.

How a write stays exactly-once across processes. Every repository was written against SQLite's
BEGIN IMMEDIATE: a write transaction runs alone, so its reads (a balance, the active-task count, a group's
cap, a payment's state, the settings JSON) are still true when it writes. Here each write transaction takes
one transaction-scoped advisory lock per database schema (`pg_advisory_xact_lock`) in the same round trip as
its BEGIN, and PostgreSQL releases it at COMMIT or ROLLBACK, so the same holds across every process and
host. We chose this over the two usual alternatives on purpose:
- row locks (`SELECT ... FOR UPDATE` on the user's quota row) would have to be added at every read-then-write
  in seven modules (quota reservation, grants, refunds of payments, referral claims, settings, the zone pin,
  group caps that span users), in SQL that SQLite rejects, and one forgotten lock is a silent lost update;
- SERIALIZABLE needs the whole transaction re-run on a serialization failure, and the body of an
  `async with db.transaction()` block cannot be re-run: every write method would have to become a callback.
The cost is the one SQLite has always had: writes are serialised (reads are not: they use other pool
connections and see the last committed state). A write is a few statements of well under a millisecond
each, and the bot makes a handful per generation at ~5 upstream QPS; `benchmarks/bench_storage.py` measures
it. Waiting for the lock is bounded by `lock_timeout` (= busy_timeout_ms), like SQLite's busy_timeout, and
then raises LockNotAvailableError, which is in storage.UNAVAILABLE.

Reads run on any pooled connection in autocommit (each statement sees the latest commit); `snapshot=True`
runs them in one REPEATABLE READ READ ONLY transaction. `read_only=True` opens the pool with
`default_transaction_read_only=on`: the server itself refuses any write, and transaction() refuses first.

Task claims need no SKIP LOCKED here: `tasks.claim` is one guarded UPDATE inside a serialised transaction,
so two workers racing for a task are ordered by the lock and the second sees the first one's lease.

The database schema is the first one of the search path (`?search_path=name` in the URL picks another one);
the advisory lock keys include it, so two bots in two schemas of one database never wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from .awaiting import run_to_completion
from .db import DML, Db, Params, Row, Session
from .dialect import Backend
from .errors import ReadOnlyStore, SchemaMismatch, StorageError
from .migrate import latest_version, pending, unknown_versions

#: High 32 bits of the write lock's key: "our" advisory locks, apart from any other user of the database.
WRITE_LOCK_CLASS = 0x706F7274  # "port"
POOL_SIZE = 4

_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)
"""
_CLOSE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


class PgSession(Session):
    """Statements on one pooled connection, translated from SQLite's spelling (storage/dialect.py)."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def all(self, sql: str, params: Params = ()) -> list[Row]:
        from .dialect import to_postgres

        return list(await self._conn.fetch(to_postgres(sql), *params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT/UPDATE/DELETE and return how many rows it changed (from the command tag)."""
        from .dialect import to_postgres

        if not DML.match(sql):
            raise ValueError("execute() is for INSERT, UPDATE and DELETE; use all()/one() for the rest")
        status = await self._conn.execute(to_postgres(sql), *params)
        return int(status.rsplit(" ", 1)[-1])


class PgDatabase(Db):
    """A pool of connections to one schema of one PostgreSQL database."""

    backend: Backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool[Any], schema: str, lock_key: int, *, read_only: bool) -> None:
        self._pool = pool
        self.schema = schema
        self.read_only = read_only
        self._begin = f"BEGIN; SELECT pg_advisory_xact_lock({lock_key})"
        # In-process writers queue here rather than each holding a pooled connection while they wait.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, url: str, *, busy_timeout_ms: int = 5000, read_only: bool = False, pool_size: int = POOL_SIZE
    ) -> PgDatabase:
        settings = {"lock_timeout": str(int(busy_timeout_ms))}
        if read_only:
            settings["default_transaction_read_only"] = "on"
        pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, server_settings=settings)
        try:
            row = await pool.fetchrow("SELECT current_schema() AS schema, hashtext(current_schema()) AS h")
            if row is None or row["schema"] is None:
                raise StorageError("none of the schemas in the search path exists: create it first")
            key = (WRITE_LOCK_CLASS << 32) | (int(row["h"]) & 0xFFFFFFFF)
            key -= 1 << 64 if key >= 1 << 63 else 0  # a signed bigint
        except BaseException:
            await pool.close()
            raise
        return cls(pool, str(row["schema"]), key, read_only=read_only)

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Session]:
        """BEGIN + the schema's advisory lock (one round trip) ... COMMIT; any exception rolls back.

        As on SQLite, the statements that open and close the transaction run to completion even when the
        caller is cancelled meanwhile, so a pooled connection never goes back half inside a transaction.
        `durable=False` commits without waiting for the WAL flush (`synchronous_commit = off`).
        """
        if self.read_only:
            raise ReadOnlyStore("this database was opened read-only")
        async with self._write_lock, self._pool.acquire() as conn:
            try:
                await run_to_completion(conn.execute(self._begin))
                if not durable:
                    await conn.execute("SET LOCAL synchronous_commit = off")
                yield PgSession(conn)
                await run_to_completion(conn.execute("COMMIT"))
            except BaseException:
                await _rollback(conn)
                raise
            self.commits += 1
            self.durable_commits += int(durable)

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[Session]:
        async with self._pool.acquire() as conn:
            if not snapshot:
                yield PgSession(conn)
                return
            try:
                await run_to_completion(conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
                yield PgSession(conn)
            finally:
                await _rollback(conn)

    async def migrate(self, *, now: float, target: int | None = None) -> int:
        """Each pending migration in one transaction under the write lock, as migrate.py does on SQLite:
        the applied versions are read after the lock is held, so processes opening a new database together
        apply each migration once."""
        async with self._write_lock, self._pool.acquire() as conn:
            while True:
                try:
                    await run_to_completion(conn.execute(self._begin))
                    await conn.execute(_SCHEMA_VERSION)
                    applied = await _applied(conn)
                    newer = unknown_versions(applied, "postgresql")
                    if newer:
                        raise SchemaMismatch(
                            behind=[], unknown=sorted(newer), expected=latest_version("postgresql")
                        )
                    todo = pending(applied, target, "postgresql")
                    if todo:
                        await conn.execute(todo[0].sql)  # the whole file at once: function bodies have ';'
                        await conn.execute(
                            "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                            todo[0].version, todo[0].name, float(now),
                        )  # fmt: skip
                    await run_to_completion(conn.execute("COMMIT"))
                except BaseException:
                    await _rollback(conn)
                    raise
                if not todo:
                    return max(applied, default=0)

    async def applied_versions(self) -> set[int]:
        async with self._pool.acquire() as conn:
            return await _applied(conn)

    async def close(self) -> None:
        async with self._write_lock:
            await self._pool.close()


async def _applied(conn: Conn) -> set[int]:
    if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
        return set()
    return {int(row[0]) for row in await conn.fetch("SELECT version FROM schema_version")}


async def _rollback(conn: Conn) -> None:
    """Roll back if a transaction is open; a connection that cannot is dropped by the pool on release."""
    if conn.is_in_transaction():
        with contextlib.suppress(*_CLOSE_ERRORS):
            await run_to_completion(conn.execute("ROLLBACK"))
