"""Online backup: a consistent copy taken while the bot keeps writing, never over an existing file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from storage import BackupError, Store, TaskState, backup_database

from .conftest import FakeClock, add_user, new_task
from .helpers import drive


async def _busy_writer(store: Store, stop: asyncio.Event) -> int:
    """Grants and whole task lifecycles until told to stop; returns how many rounds committed."""
    rounds = 0
    while not stop.is_set():
        await store.quotas.grant(1, 1, actor=9, reason=f"round {rounds}")
        task, _ = await store.tasks.create(new_task(key=f"k{rounds}"))
        await drive(store, task, TaskState.DONE if rounds % 2 else TaskState.FAILED)
        rounds += 1
    return rounds


async def test_backup_while_writes_go_on_is_consistent(
    db_path: Path, tmp_path: Path, clock: FakeClock
) -> None:
    async with await Store.open(db_path, clock=clock, synchronous="NORMAL") as bot:
        await add_user(bot)
        stop = asyncio.Event()
        writer = asyncio.create_task(_busy_writer(bot, stop))
        copies = []
        for n in range(3):
            await asyncio.sleep(0)  # let the writer commit between copies (no timing involved)
            copies.append(await backup_database(db_path, tmp_path / f"copy{n}.db"))
        stop.set()
        rounds = await writer
    assert rounds > 0
    grants = []
    for result in copies:
        assert result.integrity == "ok" and result.bytes == result.path.stat().st_size
        assert not result.path.with_name(result.path.name + "-wal").exists()  # one self-contained file
        async with await Store.open(result.path, read_only=True) as copy:
            assert (await copy.quotas.check()).ok  # balances, reservations and tasks agree
            ledger = await copy.quotas.ledger(1, limit=10_000)
        grants.append(sum(1 for e in ledger if e.kind == "grant"))
        with sqlite3.connect(result.path) as raw:
            (tasks,) = raw.execute("SELECT COUNT(*) FROM tasks").fetchone()
        assert tasks == sum(1 for e in ledger if e.kind == "reserve")
    assert grants == sorted(grants) and grants[-1] <= rounds  # each copy is one moment of the writes
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no partial files left


async def test_backup_refuses_to_overwrite_and_leaves_nothing_behind(db_path: Path, tmp_path: Path) -> None:
    await (await Store.open(db_path)).close()
    existing = tmp_path / "taken.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="exists already"):
        await backup_database(db_path, existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(BackupError, match="another file"):
        await backup_database(db_path, db_path)
    with pytest.raises(BackupError, match="does not exist"):
        await backup_database(db_path, tmp_path / "no" / "dir.db")
    with pytest.raises(BackupError, match="no database"):
        await backup_database(tmp_path / "missing.db", tmp_path / "out.db")
    assert sorted(os.listdir(tmp_path)) == ["data", "taken.db"]


async def test_a_backup_of_an_old_schema_file_is_still_a_copy(db_path: Path, tmp_path: Path) -> None:
    """Backing up before an upgrade is the point: the copy does not need this code's schema."""
    from storage.migrate import migrate

    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path, isolation_level=None) as raw:
        raw.execute("PRAGMA journal_mode=WAL")
    import aiosqlite

    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        await migrate(conn, now=1.0, target=1)
    result = await backup_database(db_path, tmp_path / "before-upgrade.db")
    with sqlite3.connect(result.path) as copy:
        assert copy.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
