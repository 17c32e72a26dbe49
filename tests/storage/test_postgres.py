"""What only the PostgreSQL backend has: the SQL translation, its own migrations, its locks, and many
processes sharing one database (the storage suite itself runs on both backends through `store`)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import asyncpg
import pytest

from storage import BackupError, ReadOnlyStore, SchemaMismatch, StorageError, Store, backup_database
from storage.dialect import sqlite_path, to_postgres
from storage.migrate import available
from tests.pg import SERVER_URL, postgres_or_skip, schema_url, temporary_schema

from .conftest import ZONE, FakeClock, add_user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg() -> None:
    postgres_or_skip()


def test_placeholders_are_numbered_outside_strings_and_nocase_becomes_lower() -> None:
    sql = "SELECT '?', x FROM t WHERE a = ? AND name = ? COLLATE NOCASE AND (? IS NULL OR o = ?) -- ?"
    assert to_postgres(sql) == (
        "SELECT '?', x FROM t WHERE a = $1 AND lower(name) = lower($2) AND ($3::text IS NULL OR o = $4) -- ?"
    )
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING a") == (
        "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING a"
    )
    assert to_postgres("SELECT 1") is to_postgres("SELECT 1")  # cached per statement text


def test_sqlite_urls_name_files() -> None:
    assert sqlite_path("sqlite:///data/bot.db") == "data/bot.db"
    assert sqlite_path("sqlite:////var/lib/bot.db") == "/var/lib/bot.db"
    assert sqlite_path("data/bot.db") == "data/bot.db"


def test_each_sqlite_migration_has_its_postgresql_counterpart() -> None:
    """Same numbers and names: the schema_version rules (pending = not recorded) mean the same thing."""
    assert [(m.version, m.name) for m in available("postgresql")] == [
        (m.version, m.name) for m in available()
    ]


async def test_both_schemas_have_the_same_tables_and_columns(pg: None, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        lite = {
            (t, r[1])
            for t in tables
            if not t.startswith("sqlite_")
            for r in conn.execute(f"PRAGMA table_info({t})")
        }
    async with temporary_schema() as url:
        await (await Store.open(url)).close()
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        finally:
            await conn.close()
    postgres = {(r["table_name"], r["column_name"]) for r in rows} - {("payments", "rowid")}
    assert postgres == lite


async def test_a_missing_schema_is_named(pg: None) -> None:
    with pytest.raises(StorageError, match="search path"):
        await Store.open(schema_url("t_never_created"))


async def test_read_only_refuses_writes_and_an_unmigrated_schema(pg: None, clock: FakeClock) -> None:
    async with temporary_schema() as url:
        with pytest.raises(SchemaMismatch):
            await Store.open(url, read_only=True)
        async with await Store.open(url, clock=clock, quota_timezone=ZONE) as bot:
            await add_user(bot)
            async with await Store.open(url, read_only=True) as ro:
                assert ro.read_only and ro.backend == "postgresql"
                assert ro.quota_timezone == ZONE
                assert (await ro.users.get(1)) is not None
                assert (await ro.quotas.check()).ok
                with pytest.raises(ReadOnlyStore):
                    await ro.users.set_language(1, "zh")
                async with ro._ctx.db.read() as r:  # the server refuses too, not only the store
                    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                        await r.execute("UPDATE users SET language = 'zh'")


async def test_backup_of_postgresql_points_at_pg_dump(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        await backup_database(SERVER_URL, tmp_path / "copy.db")


async def test_a_cancelled_write_rolls_back_and_leaves_the_pool_usable(pg: None, clock: FakeClock) -> None:
    async with temporary_schema() as url, await Store.open(url, clock=clock) as store:
        await add_user(store)

        async def slow_write() -> None:
            async with store._ctx.db.transaction() as tx:
                await tx.execute("UPDATE users SET language = 'zh' WHERE id = 1")
                await asyncio.sleep(10)

        task = asyncio.create_task(slow_write())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await store.quotas.grant(1, 2, actor=9, reason="")).credits == 2
        async with store._ctx.db.read() as r:
            assert await r.value("SELECT language FROM users WHERE id = 1") == "en"


# Several processes at once: each opens the same (new) schema, which migrates it under the advisory lock,
# then races the others for one user's units and for the same tasks.
WORKER = """
import asyncio, sys
from storage import QuotaExhausted, Store, NewTask

async def main(url, name, n):
    store = await Store.open(url, quota_timezone="Asia/Shanghai", daily_free_quota=2)
    try:
        await store.users.upsert_seen(1, username="u", first_name="U", language_code="en")
        made = 0
        for i in range(n):
            new = NewTask(1, 1, f"{name}-{i}", None, "face", None, max_active_per_user=1000)
            try:
                await store.tasks.create(new)
                made += 1
            except QuotaExhausted:
                pass
        claimed = [t.id for t in await store.tasks.unfinished() if await store.tasks.claim(t.id, name, 600)]
        print(made, ",".join(map(str, claimed)))
    finally:
        await store.close()

asyncio.run(main(*sys.argv[1:3], int(sys.argv[3])))
"""


async def _run_workers(url: str, count: int, tries: int) -> list[str]:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            url,
            f"w{n}",
            str(tries),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode().strip())
    return outputs


@pytest.mark.slow
async def test_processes_share_one_database_exactly_once(pg: None) -> None:
    """4 processes open a new schema together (each migrates it under the advisory lock: all start), then
    4 processes each try 15 reservations for one user who has 2 free units and 20 credits: exactly 22
    succeed, each task is claimed by one worker, and the ledger adds up."""
    async with temporary_schema() as url:
        assert await _run_workers(url, count=4, tries=0) == ["0"] * 4
        async with await Store.open(url, quota_timezone=ZONE) as setup:
            await setup.quotas.grant(1, 20, actor=9, reason="race")
        outputs = await _run_workers(url, count=4, tries=15)
        made = sum(int(line.split(" ")[0]) for line in outputs)
        claims = [int(i) for line in outputs for i in [*line.split(" "), ""][1].split(",") if i]
        assert made == 22
        assert sorted(claims) == sorted(set(claims))  # no task claimed twice
        async with await Store.open(url, read_only=True) as store:
            tasks = await store.tasks.unfinished()
            assert len(tasks) == 22 and sorted(t.id for t in tasks) == sorted(claims)
            assert (await store.quotas.balance(1)).credits == 0
            assert (await store.quotas.check()).ok
            assert store.schema_version == available("postgresql")[-1].version
