"""The SQLite connections: one writer for every change, one reader for everything else.

Why this shape:
- SQLite allows one writer at a time anyway. Funnelling every change through one connection guarded by an
  `asyncio.Lock` means two coroutines can never interleave statements of their transactions (an aiosqlite
  connection is shared by every coroutine that holds it, so without the lock coroutine B's statements would
  land inside coroutine A's open transaction).
- `BEGIN IMMEDIATE` takes SQLite's write lock at the start, so a transaction never fails half-way with
  SQLITE_BUSY after it has read a balance; another *process* holding the lock makes us wait up to
  `busy_timeout` instead of failing at once.
- WAL lets the reader connection see the last committed state while a write transaction is open, so reads
  never observe half an update and never wait for a writer.
- `synchronous=FULL` (the default here): in WAL mode a commit is fsynced before `transaction()` returns, so a
  reservation or a commit the bot has acted on survives power loss, not only a process crash (NORMAL survives
  a crash but may lose the last commits on power loss). The bot does a few transactions per generation and the
  upstream API allows ~5 QPS, so the fsync costs nothing that matters; the benchmark shows both.
- `read_only=True` opens one connection with the `mode=ro` URI (and `query_only`): health checks and reports
  must not migrate, switch the journal mode, write or checkpoint a file the bot is using. Such a database
  refuses `transaction()` with ReadOnlyStore.
- `transaction(durable=False)` commits without the fsync (SQLite: on a second writer connection set to
  `synchronous=NORMAL`, taken under the same lock, so the setting is never switched back and forth). For
  writes whose loss on *power* loss is harmless: lease renewals, display-only fields, and DONE after the
  photo is out (lost, the task is found delivering+sending and ends done but unconfirmed, with a "Send it
  again" button: never a second send or charge). In WAL mode a process crash loses none of them, and the
  next durable commit (any task's) fsyncs the WAL with them in it. On PostgreSQL the same is
  `SET LOCAL synchronous_commit = off` inside the transaction. `commits` / `durable_commits` count them
  (durable: fsynced under FULL; tests hold the runner to its budget of fsyncs per generation).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, KeysView, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

import aiosqlite

from .awaiting import to_the_end
from .dialect import Backend
from .errors import ReadOnlyStore

Synchronous = Literal["NORMAL", "FULL"]
Params = Sequence[Any]
DML = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


class Row(Protocol):
    """A result row as both backends hand it out (sqlite3.Row, asyncpg.Record): by name or by position."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str] | KeysView[str]: ...


class Session(ABC):
    """What every repository runs its SQL through, on either backend.

    The SQL is written once, in SQLite's spelling with `?` placeholders; the PostgreSQL session translates it
    (storage/dialect.py), so a repository never knows which database it talks to.
    """

    @abstractmethod
    async def all(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def value(self, sql: str, params: Params = ()) -> Any:
        row = await self.one(sql, params)
        return None if row is None else row[0]

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT/UPDATE/DELETE and return how many rows it changed."""


class Db(ABC):
    """One open database of either backend: write transactions, reads, migrations, close."""

    backend: Backend
    read_only: bool
    #: Commits since open, and how many of them asked to be durable.
    commits: int = 0
    durable_commits: int = 0

    @abstractmethod
    def transaction(self, *, durable: bool = True) -> AbstractAsyncContextManager[Session]:
        """One write transaction that runs alone, as SQLite's BEGIN IMMEDIATE does (see each backend).
        `durable=False`: the commit may skip the flush to disk (a write whose loss is harmless)."""

    async def write_one(self, sql: str, params: Params = (), *, durable: bool = True) -> list[Row]:
        """One statement that is a whole write by itself (an UPDATE ... RETURNING, say), with its rows.

        A transaction of that one statement, as `transaction()` runs it; SQLite runs it on its own instead
        (one statement is atomic there), one hop to its thread where BEGIN, statement and COMMIT were three.
        """
        async with self.transaction(durable=durable) as tx:
            return await tx.all(sql, params)

    @abstractmethod
    def read(self, *, snapshot: bool = False) -> AbstractAsyncContextManager[Session]:
        """Reads of committed data; snapshot=True: every statement in the block sees one committed state."""

    @abstractmethod
    async def migrate(self, *, now: float) -> int:
        """Apply the pending migrations (safe while other processes open the same database)."""

    @abstractmethod
    async def applied_versions(self) -> set[int]:
        """The migration versions recorded in the database; reads only."""

    @abstractmethod
    async def close(self) -> None: ...


class SqliteSession(Session):
    """Statements on one SQLite connection; handed out only while its lock is held.

    Each aiosqlite call is a hop to the connection's thread and back, and hops dominate the cost of a small
    transaction, so every method here is exactly one hop (row counts come from RETURNING, not a cursor).
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def all(self, sql: str, params: Params = ()) -> list[Row]:
        rows: Iterable[sqlite3.Row] = await self._conn.execute_fetchall(sql, params)
        return list(rows)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT/UPDATE/DELETE and return how many rows it changed."""
        if not DML.match(sql):
            raise ValueError("execute() is for INSERT, UPDATE and DELETE; use all()/one() for the rest")
        return len(await self.all(f"{sql} RETURNING 1", params))

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT and return the new rowid."""
        row = await self._conn.execute_insert(sql, params)
        if row is None:  # pragma: no cover - sqlite always has a last rowid after an INSERT
            raise RuntimeError("INSERT did not produce a rowid")
        return int(row[0])


class Database(Db):
    """The writer and reader connections of one SQLite file.

    Two writers when commits are fsynced (`synchronous=FULL`): the durable one and a relaxed one set to
    NORMAL, both behind one lock, so only one of them writes at a time and each keeps its setting. The bot
    alternates durable and relaxed commits nearly one for one, and on one connection each alternation was a
    `PRAGMA synchronous` of its own (folded into a BEGIN's hop, but a hop of its own before a one-statement
    write). In WAL mode both see every commit, and a durable commit's fsync takes the relaxed commits'
    frames written before it to disk too.
    """

    backend: Backend = "sqlite"

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection | None,
        *,
        read_only: bool = False,
        relaxed: aiosqlite.Connection | None = None,
    ) -> None:
        self._writer = writer
        self._reader = reader
        #: Where `durable=False` writes go: the writer itself when its setting is NORMAL anyway.
        self._relaxed = relaxed if relaxed is not None else writer
        self.read_only = read_only
        self._write_lock = asyncio.Lock()
        self.synchronous: Synchronous = "FULL"
        #: Commits since open, and how many of them asked to be durable (fsynced when synchronous is FULL).
        self.commits = 0
        self.durable_commits = 0
        # ":memory:" has no second connection: reads then share the writer and its lock.
        self._read_lock = asyncio.Lock() if reader is not None else self._write_lock

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
        read_only: bool = False,
    ) -> Database:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        memory = str(path) == ":memory:"
        if read_only:
            if memory:
                raise ValueError("an in-memory database cannot be opened read-only")
            # Checked up front: a failed aiosqlite connect leaves its worker thread behind.
            if not await asyncio.to_thread(Path(path).is_file):
                raise FileNotFoundError(f"no database at {path}")
            conn = await _connect(read_only_uri(path), busy_timeout_ms, uri=True)
            try:
                await conn.execute("PRAGMA query_only=ON")
            except BaseException:
                await conn.close()
                raise
            return cls(conn, None, read_only=True)
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        opened: list[aiosqlite.Connection] = []
        try:
            writer = await _connect(path, busy_timeout_ms)
            opened.append(writer)
            if not memory:
                mode = await _journal_mode_wal(writer, busy_timeout_ms)
                if str(mode).lower() != "wal":
                    raise RuntimeError(f"could not switch {path} to WAL (got {mode})")
            await writer.execute(f"PRAGMA synchronous={synchronous}")
            relaxed = None
            if not memory and synchronous != "NORMAL":
                relaxed = await _connect(path, busy_timeout_ms)
                opened.append(relaxed)
                await relaxed.execute("PRAGMA synchronous=NORMAL")
            reader = None if memory else await _connect(path, busy_timeout_ms)
        except BaseException:
            for conn in opened:
                await conn.close()
            raise
        database = cls(writer, reader, relaxed=relaxed)
        database.synchronous = synchronous
        return database

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Session]:
        """One BEGIN IMMEDIATE ... COMMIT; any exception (or cancellation) rolls the whole thing back.

        `durable=False`: commit without fsync (see the module docstring for which writes may).

        Every statement that opens or closes the transaction runs to completion even when the caller is
        cancelled meanwhile: aiosqlite runs it on its own thread, so a cancelled `await` does not stop it, and
        a BEGIN that finished after its awaiter was cancelled would otherwise leave the shared connection
        inside a transaction ("cannot start a transaction within a transaction" for every later write).
        """
        if self.read_only:
            raise ReadOnlyStore("this database was opened read-only")
        conn = self._writer if durable else self._relaxed
        async with self._write_lock:
            await self._open(conn, "BEGIN IMMEDIATE")
            try:
                yield SqliteSession(conn)
            except BaseException:
                await self._rollback(conn)
                raise
            try:
                await to_the_end(conn, conn.commit())
            except BaseException:
                await self._rollback(conn)
                raise
            self.commits += 1
            self.durable_commits += int(durable)

    async def write_one(self, sql: str, params: Params = (), *, durable: bool = True) -> list[Row]:
        """The statement in SQLite's autocommit mode: atomic on its own, it takes the write lock when it
        starts (waiting `busy_timeout` for another process, as BEGIN IMMEDIATE does) and commits when it
        ends, on the writer whose setting `durable` asks for. A cancelled caller leaves it to run to its
        end: it is then written or not at all, as with a cancel that lands during a COMMIT."""
        if self.read_only:
            raise ReadOnlyStore("this database was opened read-only")
        if not DML.match(sql):
            raise ValueError("write_one() is for INSERT, UPDATE and DELETE")
        conn = self._writer if durable else self._relaxed
        async with self._write_lock:
            rows: Iterable[sqlite3.Row] = await to_the_end(conn, conn.execute_fetchall(sql, params))
            self.commits += 1
            self.durable_commits += int(durable)
            return list(rows)

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[Session]:
        """Reads of committed data. Each statement is consistent on its own; with snapshot=True every
        statement in the block sees the same committed state (for reports such as the ledger check)."""
        async with self._read_lock:
            conn = self._reader or self._writer
            if not snapshot:
                yield SqliteSession(conn)
                return
            await self._open(conn, "BEGIN")
            try:
                yield SqliteSession(conn)
            finally:
                await self._rollback(conn)

    async def migrate(self, *, now: float) -> int:
        from .migrate import migrate

        return await migrate(self._writer, now=now)  # its commits run under the configured setting

    async def applied_versions(self) -> set[int]:
        from .migrate import applied_versions

        return await applied_versions(self._writer)

    async def _open(self, conn: aiosqlite.Connection, begin: str) -> None:
        try:
            await to_the_end(conn, conn.execute(begin))
        except BaseException:
            await self._rollback(conn)
            raise

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        if conn.in_transaction:
            await to_the_end(conn, conn.rollback())

    async def backup(self, target: sqlite3.Connection) -> None:
        """Copy the whole database into `target` with SQLite's online backup API.

        All pages are copied in one step, inside one read transaction of the reader connection: the copy is
        the state of one commit, and in WAL mode the bot's writers carry on meanwhile. `target` must allow
        use from another thread (`check_same_thread=False`): aiosqlite runs the copy on its own thread.
        """
        async with self._read_lock:
            await (self._reader or self._writer).backup(target)

    async def close(self) -> None:
        async with self._write_lock:
            if self._relaxed is not self._writer:
                await self._relaxed.close()
            if self._reader is not None:
                await self._reader.close()
            if self.read_only:
                await self._writer.close()
                return
            # Fold the WAL back so the file on disk is complete on its own after a clean shutdown.
            try:
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                await self._writer.close()

    @property
    def writer(self) -> aiosqlite.Connection:
        """The raw writer, for migrations only (they manage their own transactions)."""
        return self._writer


async def _journal_mode_wal(conn: aiosqlite.Connection, busy_timeout_ms: int) -> Any:
    """`PRAGMA journal_mode=WAL`, tried again while the file is locked, for up to `busy_timeout_ms`.

    Why: it is the first statement to read the file, and SQLite can answer it with "database is locked"
    at once, without waiting in its busy handler, while another process holds the file exclusively for
    a moment (seen when processes open and close one new database together: `test_open_race`, about one
    run in ten)."""
    waited = 0.0
    while True:
        try:
            return await SqliteSession(conn).value("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or waited * 1000 >= busy_timeout_ms:
                raise
        await asyncio.sleep(_LOCKED_RETRY_SECONDS)
        waited += _LOCKED_RETRY_SECONDS


#: Between two tries of a statement SQLite refused with "database is locked" without waiting itself.
_LOCKED_RETRY_SECONDS = 0.02


def read_only_uri(path: str | os.PathLike[str]) -> str:
    """`file:///abs/path?mode=ro`: SQLite then refuses every write, including creating a missing file."""
    return Path(path).resolve().as_uri() + "?mode=ro"


async def _connect(
    path: str | os.PathLike[str], busy_timeout_ms: int, *, uri: bool = False
) -> aiosqlite.Connection:
    # isolation_level=None: sqlite3 must not open transactions behind our back; we issue BEGIN ourselves.
    conn = await aiosqlite.connect(str(path), isolation_level=None, uri=uri)
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    await conn.execute("PRAGMA foreign_keys=ON")
    return conn
