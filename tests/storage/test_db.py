"""The connection layer: pragmas, atomic transactions, no interleaving, readers see committed data only."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storage import Store
from storage.db import Database


async def _db(path: Path) -> Database:
    db = await Database.open(path, synchronous="FULL")
    async with db.transaction() as tx:
        await tx.all("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        await tx.execute("INSERT INTO counter VALUES (1, 0)")
    return db


async def _n(db: Database) -> int:
    async with db.read() as r:
        return int(await r.value("SELECT n FROM counter WHERE id = 1"))


async def test_pragmas(db_path: Path) -> None:
    db = await Database.open(db_path, synchronous="NORMAL", busy_timeout_ms=1234)
    try:
        async with db.transaction() as tx:
            values = [await tx.value(f"PRAGMA {p}") for p in ("journal_mode", "foreign_keys", "busy_timeout")]
            sync = await tx.value("PRAGMA synchronous")
        assert values == ["wal", 1, 1234] and sync == 1  # NORMAL
    finally:
        await db.close()
    with pytest.raises(ValueError):
        await Database.open(db_path, synchronous="OFF")  # type: ignore[arg-type]


async def test_exception_rolls_back_the_whole_transaction(db_path: Path) -> None:
    db = await _db(db_path)
    try:
        with pytest.raises(KeyError):
            async with db.transaction() as tx:
                await tx.execute("UPDATE counter SET n = 5")
                await tx.execute("INSERT INTO counter VALUES (2, 0)")
                raise KeyError("boom")
        async with db.read() as r:
            assert [tuple(row) for row in await r.all("SELECT id, n FROM counter")] == [(1, 0)]
    finally:
        await db.close()


async def test_concurrent_read_modify_write_never_interleaves(db_path: Path) -> None:
    db = await _db(db_path)

    async def bump() -> None:
        async with db.transaction() as tx:
            n = await tx.value("SELECT n FROM counter")
            await asyncio.sleep(0)  # let every other coroutine try to get in
            await tx.execute("UPDATE counter SET n = ?", (n + 1,))

    try:
        await asyncio.gather(*(bump() for _ in range(200)))
        assert await _n(db) == 200
    finally:
        await db.close()


async def test_readers_see_only_committed_state(db_path: Path) -> None:
    db = await _db(db_path)
    inside, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE counter SET n = 1")
            inside.set()
            await release.wait()

    try:
        task = asyncio.create_task(writer())
        await inside.wait()
        assert await _n(db) == 0  # half-done write invisible
        release.set()
        await task
        assert await _n(db) == 1
    finally:
        await db.close()


async def test_cancellation_mid_transaction_rolls_back_and_leaves_the_connection_usable(
    db_path: Path,
) -> None:
    db = await _db(db_path)
    inside = asyncio.Event()

    async def stuck() -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE counter SET n = 99")
            inside.set()
            await asyncio.Event().wait()

    try:
        task = asyncio.create_task(stuck())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.transaction() as tx:
            await tx.execute("UPDATE counter SET n = n + 1")
        assert await _n(db) == 1
    finally:
        await db.close()


async def test_a_begin_cancelled_while_it_waits_for_the_lock_is_rolled_back_before_the_cancel_returns(
    db_path: Path,
) -> None:
    """The BEGIN IMMEDIATE of a cancelled transaction still runs on aiosqlite's thread after the cancel
    (here: once another process lets go of the write lock). Left open, it would hold SQLite's write lock
    until this process's next write, and every other process's write would fail meanwhile."""
    db = await _db(db_path)
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=0.5)
    try:
        other.execute("BEGIN IMMEDIATE")
        waiting = asyncio.create_task(_increment(db))
        await asyncio.sleep(0.1)  # its BEGIN is now in busy_timeout on the connection's thread
        waiting.cancel()
        asyncio.get_running_loop().call_later(0.1, other.execute, "COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.2)
        other.execute("BEGIN IMMEDIATE")  # "database is locked" if the cancelled BEGIN was left open
        other.execute("UPDATE counter SET n = n + 10")
        other.execute("COMMIT")
        await _increment(db)
        assert await _n(db) == 11
    finally:
        other.close()
        await db.close()


async def _increment(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("UPDATE counter SET n = n + 1")


async def test_waits_for_another_process_holding_the_write_lock(db_path: Path) -> None:
    db = await _db(db_path)
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE counter SET n = 10")
        asyncio.get_running_loop().call_later(0.05, other.execute, "COMMIT")
        async with db.transaction() as tx:  # blocks in busy_timeout, then proceeds
            await tx.execute("UPDATE counter SET n = n + 1")
        assert await _n(db) == 11
    finally:
        other.close()
        await db.close()


async def test_in_memory_store_works_without_a_reader_connection() -> None:
    async with await Store.open(":memory:") as store:
        await store.users.upsert_seen(1, username="a", first_name="A", language_code=None)
        assert (await store.users.get(1)) is not None
        assert (await store.quotas.check()).ok


async def test_clock_may_be_a_plain_callable(db_path: Path) -> None:
    async with await Store.open(db_path, clock=lambda: 1234.5) as store:
        user = await store.users.upsert_seen(1, username=None, first_name="", language_code=None)
    assert user.first_seen == 1234.5


async def test_open_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bot.db"
    await (await Store.open(path)).close()
    assert path.exists()


async def test_execute_counts_changed_rows_and_refuses_other_statements(db_path: Path) -> None:
    db = await _db(db_path)
    try:
        async with db.transaction() as tx:
            assert await tx.execute("UPDATE counter SET n = n + 1 WHERE id = 1") == 1
            assert await tx.execute("UPDATE counter SET n = n + 1 WHERE id = 2") == 0
            with pytest.raises(ValueError):
                await tx.execute("SELECT 1")
    finally:
        await db.close()


async def test_cancelling_a_write_at_any_point_leaves_the_connection_usable(db_path: Path) -> None:
    """Regression: a cancel that landed while BEGIN IMMEDIATE ran on aiosqlite's thread left the shared
    connection inside a transaction, and every later write failed."""
    store = await Store.open(db_path)
    try:
        await store.users.upsert_seen(1, username="a", first_name="A", language_code="en")
        for step in range(60):
            attempt = asyncio.create_task(store.users.set_language(1, "zh"))
            for _ in range(step % 9):
                await asyncio.sleep(0)
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            await store.users.set_language(1, "en")
        user = await store.users.get(1)
        assert user is not None and user.language == "en"
    finally:
        await store.close()


async def test_opening_waits_out_a_file_locked_at_the_journal_mode_switch(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite may refuse `PRAGMA journal_mode=WAL` with "database is locked" at once, without its busy
    handler, while another process holds the file for a moment: opening tries again instead of failing."""
    from storage.db import SqliteSession

    refusals = [2]
    real = SqliteSession.value

    async def sometimes_locked(self: SqliteSession, sql: str, params: object = ()) -> object:
        if sql.startswith("PRAGMA journal_mode") and refusals[0] > 0:
            refusals[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return await real(self, sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteSession, "value", sometimes_locked)
    db = await Database.open(db_path)
    try:
        assert refusals == [0]
        async with db.read() as r:
            assert await r.value("PRAGMA journal_mode") == "wal"
    finally:
        await db.close()
