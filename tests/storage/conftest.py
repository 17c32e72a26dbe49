"""Fixtures for the storage tests: a fake clock, and a store on either backend.

Every test that takes `store` (or `empty_db` / `migrated_db`) runs twice: on a SQLite file and on a fresh
PostgreSQL schema (tests/pg.py), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storage import NewTask, Store
from tests.pg import postgres_or_skip, temporary_schema

# 2026-11-26 10:00 in Shanghai (UTC+8), i.e. 02:00 UTC: midnight is local, not UTC's.
ZONE = "Asia/Shanghai"
START = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo(ZONE)).timestamp()


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = START) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated file, made once: copying it is much cheaper than migrating for every test."""
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def make() -> None:  # the zone the `store` fixture uses: the file remembers it (storage/zone.py)
        await (await Store.open(path, quota_timezone=ZONE)).close()

    asyncio.run(make())
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.db"


@pytest.fixture
def migrated_path(db_path: Path, migrated_template: Path) -> Path:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_template, db_path)
    return db_path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which backend the test runs on; PostgreSQL cases skip (or fail in CI) when it is unreachable."""
    if request.param == "postgresql":
        postgres_or_skip()
    yield request.param


@pytest.fixture
async def empty_db(backend: str, db_path: Path) -> AsyncIterator[str]:
    """Where a new, empty database is: a file path, or the URL of a fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield str(db_path)
        return
    async with temporary_schema() as url:
        yield url


@pytest.fixture
async def migrated_db(backend: str, db_path: Path, migrated_template: Path) -> AsyncIterator[str]:
    """A database at the newest schema with the test zone pinned (PostgreSQL: migrated on first open)."""
    if backend == "sqlite":
        db_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_template, db_path)
        yield str(db_path)
        return
    async with temporary_schema() as url:
        yield url


@pytest.fixture
async def store(migrated_db: str, clock: FakeClock) -> AsyncIterator[Store]:
    s = await Store.open(
        migrated_db, clock=clock, daily_free_quota=2, quota_timezone=ZONE, synchronous="NORMAL"
    )
    try:
        yield s
    finally:
        await s.close()


async def add_user(store: Store, user_id: int = 1, username: str | None = "alice") -> None:
    await store.users.upsert_seen(user_id, username=username, first_name=f"U{user_id}", language_code="en")


def new_task(user_id: int = 1, key: str = "k1", **kw: object) -> NewTask:
    fields: dict[str, object] = {
        "user_id": user_id,
        "chat_id": user_id,
        "origin_key": key,
        "request_message_id": 10,
        "face_file_id": "face-file",
        "style_file_id": None,
        "params": {"seed": 7, "prompt": "p"},
    }
    fields.update(kw)
    return NewTask(**fields)  # type: ignore[arg-type]
