"""Read-only opens change nothing on disk; the quota time zone is the file's, moved only on purpose."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from storage import QuotaTimezoneMismatch, ReadOnlyStore, SchemaMismatch, Store, TaskState
from storage.migrate import latest_version, migrate

from .conftest import FakeClock, add_user, new_task
from .helpers import drive

# 25 hours apart: whatever the real time, these two zones are on different dates.
EAST, WEST = "Pacific/Kiritimati", "Pacific/Pago_Pago"


def _fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


async def test_read_only_reads_current_data_and_writes_nothing(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await add_user(store)
        await store.quotas.grant(1, 3, actor=9, reason="")
    before = _fingerprint(db_path)
    async with await Store.open(db_path, clock=clock, read_only=True) as ro:
        assert ro.read_only and ro.schema_version == latest_version()
        assert (await ro.quotas.balance(1)).credits == 3
        assert (await ro.quotas.check()).ok
        with pytest.raises(ReadOnlyStore):
            await ro.quotas.grant(1, 1, actor=9, reason="")
    assert _fingerprint(db_path) == before  # not even a checkpoint on close


async def test_read_only_sees_what_a_running_writer_committed(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as bot:
        await add_user(bot)
        async with await Store.open(db_path, clock=clock, read_only=True) as ro:
            await bot.quotas.grant(1, 2, actor=9, reason="")  # still in the -wal file
            assert (await ro.quotas.balance(1)).credits == 2


async def test_read_only_connection_is_opened_with_mode_ro(db_path: Path) -> None:
    await (await Store.open(db_path)).close()
    async with await Store.open(db_path, read_only=True) as ro:
        conn = ro._ctx.db.writer
        await conn.execute("PRAGMA query_only=OFF")  # the URI's mode=ro still refuses
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await conn.execute("INSERT INTO config (key, value) VALUES ('x', 'y')")


async def test_read_only_refuses_an_old_schema_and_migrates_nothing(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        await migrate(conn, now=1.0, target=2)
    before = _fingerprint(db_path)
    with pytest.raises(SchemaMismatch, match="behind") as refused:
        await Store.open(db_path, read_only=True)
    assert refused.value.behind and min(refused.value.behind) > 2
    assert _fingerprint(db_path) == before


async def test_read_only_never_creates_a_file(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        await Store.open(db_path, read_only=True)
    assert db_path.name not in os.listdir(db_path.parent)


async def test_the_first_open_pins_the_zone_and_a_different_one_is_refused(
    db_path: Path, clock: FakeClock
) -> None:
    async with await Store.open(db_path, clock=clock, quota_timezone=EAST) as store:
        await add_user(store)
        task, _ = await store.tasks.create(new_task())
        await drive(store, task, TaskState.DONE)
        used = await store.quotas.balance(1)
    assert used.free_used_today == 1
    for read_only in (False, True):
        with pytest.raises(QuotaTimezoneMismatch) as refused:
            await Store.open(db_path, clock=clock, quota_timezone=WEST, read_only=read_only)
        assert (refused.value.stored, refused.value.requested) == (EAST, WEST)
        assert str(refused.value) == f"the database counts quota days in {EAST}, not {WEST}"
    async with await Store.open(db_path, clock=clock) as any_zone:  # None: whatever the file says
        assert any_zone.quota_timezone == EAST
        assert await any_zone.quotas.balance(1) == used
        assert [e.kind for e in await any_zone.quotas.ledger(1)] == ["commit", "reserve"]  # no 'reset'


async def test_changing_the_zone_is_deliberate_and_audited(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock, quota_timezone=EAST) as store:
        assert await store.zone.change(EAST, actor=0, reason="no-op") == EAST
        assert await store.admin.audit_log() == []
        assert await store.zone.change(WEST, actor=0, reason="moved") == EAST
        (entry,) = await store.admin.audit_log()
        assert (entry.action, entry.details) == ("set_timezone", f"{EAST} -> {WEST}: moved")
        with pytest.raises(ValueError, match="unknown time zone"):
            await store.zone.change("Mars/Base", actor=0, reason="")
    async with await Store.open(db_path, clock=clock, quota_timezone=WEST) as moved:
        assert moved.quota_timezone == WEST == await moved.zone.get()
    with pytest.raises(QuotaTimezoneMismatch):
        await Store.open(db_path, clock=clock, quota_timezone=EAST)


async def test_an_unknown_zone_is_refused_before_anything_is_opened(db_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        await Store.open(db_path, quota_timezone="Mars/Base")
    assert os.listdir(tmp_path) == []
