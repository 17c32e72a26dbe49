"""Schema migrations: numbered `migrations/NNNN_name.sql` files applied in order, once each.

Each file runs inside one BEGIN IMMEDIATE together with its `schema_version` row, so a crash mid-migration
leaves the previous version intact and the next start simply applies it again.

A number in `RESERVED` belongs to a change that is being made alongside and may not be in this code yet.
While its file is missing it stands in as an empty migration named `reserved` (so the numbers stay
1..n and every version is recorded); when the real file arrives, a database that recorded the stand-in
applies it then, even though later numbers are already in. Only independent changes may share the
numbers this way: the reserved one may run after those that follow it.
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


#: Numbers taken by changes made alongside this one (see the module docstring).
RESERVED: frozenset[int] = frozenset({3})
PLACEHOLDER = "reserved"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with the package, in version order; gaps or duplicates are a packaging bug
    (a reserved number below the newest one is filled by an empty stand-in)."""
    found: list[Migration] = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    shipped = {m.version for m in found}
    newest = max(shipped, default=0)
    found += [Migration(v, PLACEHOLDER, "") for v in RESERVED if v not in shipped and v < newest]
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {[m.version for m in found]}")
    return found


def latest_version() -> int:
    return available()[-1].version


async def current_version(conn: aiosqlite.Connection) -> int:
    await conn.execute(_SCHEMA_VERSION)
    rows = list(await conn.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
    return int(rows[0][0])


async def migrate(conn: aiosqlite.Connection, *, now: float, target: int | None = None) -> int:
    """Bring the database up to `target` (default: the newest); returns the version it is at afterwards."""
    version = await current_version(conn)
    if version > latest_version():
        raise RuntimeError(f"database schema {version} is newer than this code ({latest_version()})")
    rows = await conn.execute_fetchall("SELECT version, name FROM schema_version")
    recorded = {int(v): str(name) for v, name in rows}
    for migration in available():
        stand_in_replaced = recorded.get(migration.version) == PLACEHOLDER != migration.name
        if (migration.version in recorded and not stand_in_replaced) or (
            target is not None and migration.version > target
        ):
            continue
        # executescript runs the whole file; the explicit BEGIN/COMMIT make it one atomic step.
        script = (
            f"BEGIN IMMEDIATE;\n{migration.sql}\n;"
            f"INSERT OR REPLACE INTO schema_version (version, name, applied_at) "
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
