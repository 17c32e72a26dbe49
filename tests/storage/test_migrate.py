"""Migrations: from an empty file and from every earlier version, atomic, never downgrading."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from storage import Store, TaskState
from storage import migrate as migrate_module
from storage.errors import SchemaMismatch
from storage.migrate import Migration, available, current_version, latest_version, migrate, statements

from .conftest import FakeClock

# Rows a database at each version could hold: a user with a held reservation and a credit grant.
SEED_V1 = """
INSERT INTO users (id, username, first_name, first_seen, last_seen) VALUES (1, 'old', 'Old', 1, 1);
INSERT INTO quota_accounts (user_id, credits, free_day, free_used) VALUES (1, 4, '2026-11-26', 1);
INSERT INTO tasks (id, user_id, chat_id, origin_key, face_file_id, state, quota_day, quota_unit, created_at,
                   updated_at) VALUES (1, 1, 1, 'k', 'f', 'polling', '2026-11-26', 'free', 1, 1);
INSERT INTO ledger (user_id, kind, credits, at) VALUES (1, 'grant', 4, 1);
INSERT INTO ledger (user_id, task_id, kind, free, day, at) VALUES (1, 1, 'reserve', 1, '2026-11-26', 1);
"""


async def _schema(path: Path) -> list[tuple[str, str]]:
    async with aiosqlite.connect(path) as conn:
        rows = await conn.execute_fetchall(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    return [(name, sql) for name, sql in rows]


async def _at_version(path: Path, version: int) -> None:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, now=1.0, target=version) == version
        if version >= 1:
            await conn.executescript(SEED_V1)


SHIPPED = [m.version for m in available()]


def test_migrations_are_numbered_uniquely_from_one() -> None:
    # Numbers are reserved per change in flight, so a build may skip some (see migrate.py).
    assert SHIPPED[0] == 1 and sorted(set(SHIPPED)) == SHIPPED and len(SHIPPED) >= 2


async def test_from_empty(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        assert store.schema_version == latest_version()
    async with aiosqlite.connect(db_path) as conn:
        rows = list(
            await conn.execute_fetchall("SELECT version, applied_at FROM schema_version ORDER BY version")
        )
    assert rows == [(v, clock.t) for v in SHIPPED]


@pytest.mark.parametrize("start", [0, *SHIPPED[:-1]])
async def test_from_every_earlier_version(tmp_path: Path, clock: FakeClock, start: int) -> None:
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    await (await Store.open(fresh, clock=clock)).close()
    await _at_version(old, start)
    async with await Store.open(old, clock=clock, quota_timezone="Asia/Shanghai") as store:
        assert store.schema_version == latest_version()
        assert (await store.quotas.check()).ok
        if start >= 1:  # the old rows survive and work with the new code (leases come from 0002)
            task = await store.tasks.get(1)
            assert task is not None and (task.state, task.lease_owner) == (TaskState.POLLING, None)
            assert await store.tasks.claim(1, "w", 30)
            assert (await store.quotas.balance(1)).credits == 4
            assert (await store.tasks.transition(1, TaskState.FAILED)).reservation == "refunded"
            assert (await store.quotas.check()).ok
    assert await _schema(old) == await _schema(fresh)


async def test_reopening_applies_nothing(db_path: Path, clock: FakeClock) -> None:
    await (await Store.open(db_path, clock=clock)).close()
    clock.advance(100)
    await (await Store.open(db_path, clock=clock)).close()
    async with aiosqlite.connect(db_path) as conn:
        rows = list(await conn.execute_fetchall("SELECT DISTINCT applied_at FROM schema_version"))
    assert rows == [(clock.t - 100,)]


async def test_a_database_newer_than_the_code_is_refused(db_path: Path) -> None:
    await (await Store.open(db_path)).close()
    async with aiosqlite.connect(db_path) as conn:
        await conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
        await conn.commit()
    with pytest.raises(SchemaMismatch, match="newer"):
        await Store.open(db_path)


async def test_a_failing_migration_leaves_the_previous_version_intact(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await Store.open(db_path)).close()
    broken = Migration(
        latest_version() + 1, "broken", "CREATE TABLE half_done (x INTEGER);\nSELECT * FROM nope;"
    )
    shipped = available()
    monkeypatch.setattr(migrate_module, "available", lambda backend="sqlite": [*shipped, broken])
    with pytest.raises(aiosqlite.OperationalError):
        await Store.open(db_path)
    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        assert await current_version(conn) == shipped[-1].version
        tables = [r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master")]
    assert "half_done" not in tables


async def test_a_migration_numbered_below_the_newest_applied_one_still_runs(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers are reserved ahead: a file may have 1, 2, 5 applied when a build that also has 3 opens it."""
    shipped = available()
    later = Migration(latest_version() + 2, "later", "CREATE TABLE later_t (x INTEGER);")
    between = Migration(latest_version() + 1, "between", "CREATE TABLE between_t (x INTEGER); -- a; comment")
    monkeypatch.setattr(migrate_module, "available", lambda backend="sqlite": [*shipped, later])
    await (await Store.open(db_path)).close()
    monkeypatch.setattr(migrate_module, "available", lambda backend="sqlite": [*shipped, between, later])
    async with await Store.open(db_path) as store:
        assert store.schema_version == later.version
    async with aiosqlite.connect(db_path) as conn:
        versions = [r[0] for r in await conn.execute_fetchall("SELECT version FROM schema_version")]
        tables = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master")}
    assert sorted(versions) == [*SHIPPED, between.version, later.version]
    assert {"between_t", "later_t"} <= tables


def test_statements_split_on_semicolons_outside_comments_strings_and_triggers() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT ';');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'y'; END;
    -- trailing comment
    """
    assert [" ".join(s.split()) for s in statements(script)] == [
        "-- a comment; with a semicolon CREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'y'; END;",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        list(statements("CREATE TABLE b (x TEXT DEFAULT 'unterminated);"))
