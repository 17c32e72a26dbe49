"""Migration 0003 is reserved for a change developed alongside: until its file ships, an empty stand-in
keeps the numbers contiguous, and the real file still runs when it arrives (after 0004).

Only for a build without that change: once its 0003 file is in, the stand-in is never made."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from storage import Store
from storage import migrate as migrate_module
from storage.migrate import PLACEHOLDER, Migration, available, latest_version

from .conftest import FakeClock


async def test_a_missing_reserved_number_is_an_empty_stand_in(db_path: Path, clock: FakeClock) -> None:
    shipped = {m.version: m.name for m in available()}
    missing = {v for v in migrate_module.RESERVED if v < latest_version() and shipped.get(v) == PLACEHOLDER}
    async with await Store.open(db_path, clock=clock):
        pass
    async with aiosqlite.connect(db_path) as conn:
        rows = await conn.execute_fetchall("SELECT version, name FROM schema_version")
        names: dict[int, str] = {version: name for version, name in rows}
        tables = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master")}
    assert {v for v, name in names.items() if name == PLACEHOLDER} == missing
    assert "generation_timings" in tables


async def test_the_real_reserved_migration_still_runs_when_it_arrives_later(
    db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that recorded the stand-in applies the real file once the code ships it, although later
    numbers are already in; a second start applies nothing."""
    monkeypatch.setattr(migrate_module, "RESERVED", frozenset({3}))
    without = [m for m in available() if m.version != 3]
    stand_in = [*without, Migration(3, PLACEHOLDER, "")]
    real = [*without, Migration(3, "arrived_later", "CREATE TABLE arrived (x INTEGER);")]
    monkeypatch.setattr(migrate_module, "available", lambda: sorted(stand_in, key=lambda m: m.version))
    await (await Store.open(db_path, clock=clock)).close()
    monkeypatch.setattr(migrate_module, "available", lambda: sorted(real, key=lambda m: m.version))
    clock.advance(10)
    for _ in range(2):
        async with await Store.open(db_path, clock=clock) as store:
            assert store.schema_version == latest_version()
    async with aiosqlite.connect(db_path) as conn:
        rows = list(await conn.execute_fetchall("SELECT version, name, applied_at FROM schema_version"))
        tables = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master")}
    assert (3, "arrived_later", clock.t) in rows and len(rows) == latest_version()
    assert "arrived" in tables
