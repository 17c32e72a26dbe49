"""Schema migrations: numbered `migrations/NNNN_name.sql` files applied in order, once each.

Each file runs inside one BEGIN IMMEDIATE together with its `schema_version` row, so a crash mid-migration
leaves the previous version intact and the next start simply applies it again.

Numbers are handed out per feature before the features are written, so a branch may ship 0006 while 0003
lands later: numbers must be unique, not contiguous, and every shipped migration not yet recorded in
`schema_version` is applied (in number order), not only those above the highest one recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import aiosqlite

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with the package, in version order; gaps or duplicates are a packaging bug."""
    found: list[Migration] = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or not versions or versions[0] < 1:
        raise RuntimeError(f"migrations must have unique numbers from 1 up: {versions}")
    return found


def latest_version() -> int:
    return available()[-1].version


async def current_version(conn: aiosqlite.Connection) -> int:
    await conn.execute(_SCHEMA_VERSION)
    rows = list(await conn.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
    return int(rows[0][0])


async def applied_versions(conn: aiosqlite.Connection) -> set[int]:
    await conn.execute(_SCHEMA_VERSION)
    return {int(row[0]) for row in await conn.execute_fetchall("SELECT version FROM schema_version")}


async def migrate(conn: aiosqlite.Connection, *, now: float, target: int | None = None) -> int:
    """Bring the database up to `target` (default: the newest); returns the version it is at afterwards."""
    version = await current_version(conn)
    if version > latest_version():
        raise RuntimeError(f"database schema {version} is newer than this code ({latest_version()})")
    applied = await applied_versions(conn)
    for migration in available():
        if migration.version in applied or (target is not None and migration.version > target):
            continue
        # executescript runs the whole file; the explicit BEGIN/COMMIT make it one atomic step.
        script = (
            f"BEGIN IMMEDIATE;\n{migration.sql}\n;"
            f"INSERT INTO schema_version (version, name, applied_at) "
            f"VALUES ({migration.version}, '{migration.name}', {float(now)!r});\nCOMMIT;"
        )
        try:
            await conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                await conn.rollback()
            raise
        version = max(version, migration.version)
    return version
