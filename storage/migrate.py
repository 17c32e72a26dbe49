"""Schema migrations: numbered `migrations/NNNN_name.sql` files, each applied once, in number order.

Each file runs inside one BEGIN IMMEDIATE together with its `schema_version` row, so a crash mid-migration
leaves the previous version intact and the next start simply applies it again.

Several processes may open one file at the same moment (the bot, a second worker, an admin command): the
set of applied versions is therefore read *inside* that BEGIN IMMEDIATE, under SQLite's write lock, and a
migration another process applied meanwhile is skipped instead of run twice ("table already exists").

PostgreSQL has its own files, `migrations/postgresql/NNNN_name.sql`, one per SQLite file with the same
number and the same effect in PostgreSQL's types (storage/postgres.py applies them under an advisory
lock, with the same rules); `available("postgresql")` lists them.

Numbers are reserved per change while changes are developed side by side, so a build may ship 1, 2 and 5
without 3 and 4: a migration is pending when its number is not recorded in `schema_version`, not merely
when it is above the highest recorded one. A recorded number this code does not ship means the file was
written by a newer version, and it is refused.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import aiosqlite

from .dialect import Backend
from .errors import SchemaMismatch

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


def available(backend: Backend = "sqlite") -> list[Migration]:
    """Every migration shipped with the package, in version order; a duplicate number is a packaging bug."""
    found: list[Migration] = []
    folder = resources.files("storage.migrations")
    if backend == "postgresql":
        folder = folder.joinpath("postgresql")
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if not versions or versions[0] != 1 or len(set(versions)) != len(versions):
        raise RuntimeError(f"migrations must start at 1 and be numbered uniquely: {versions}")
    return found


def latest_version(backend: Backend = "sqlite") -> int:
    return available(backend)[-1].version


def statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration file, one at a time (sqlite3 executes one per call).

    `sqlite3.complete_statement` decides where a statement ends, so a `;` inside a comment, a string or a
    trigger body does not split it.
    """
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_sql(pending):
                yield pending.strip()
            pending = ""
    if _has_sql(pending.removesuffix(";")):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending.strip()[:80]!r}")


def _has_sql(text: str) -> bool:
    lines = (line.split("--", 1)[0].strip() for line in text.splitlines())
    return any(line and line != ";" for line in lines)


async def applied_versions(conn: aiosqlite.Connection) -> set[int]:
    """Versions recorded in the file; reads only (a file without the table is at nothing)."""
    exists = list(
        await conn.execute_fetchall(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
    )
    if not exists:
        return set()
    return {int(row[0]) for row in await conn.execute_fetchall("SELECT version FROM schema_version")}


async def current_version(conn: aiosqlite.Connection) -> int:
    """The highest recorded version (0 for a new file); reads only."""
    return max(await applied_versions(conn), default=0)


def unknown_versions(applied: set[int], backend: Backend = "sqlite") -> set[int]:
    """Recorded versions this code does not ship: the file was written by a newer version."""
    return applied - {m.version for m in available(backend)}


def pending(applied: set[int], target: int | None = None, backend: Backend = "sqlite") -> list[Migration]:
    """Shipped migrations not yet recorded (up to `target`), in the order they must run."""
    return [
        m for m in available(backend) if m.version not in applied and (target is None or m.version <= target)
    ]


async def migrate(conn: aiosqlite.Connection, *, now: float, target: int | None = None) -> int:
    """Bring the database up to `target` (default: the newest); returns the highest version afterwards.

    `conn` must be in autocommit mode (isolation_level=None): each step is an explicit BEGIN IMMEDIATE that
    re-reads the applied versions under the write lock, applies the first pending migration and commits.
    """
    while True:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(_SCHEMA_VERSION)
            applied = await applied_versions(conn)
            newer = unknown_versions(applied)
            if newer:
                raise SchemaMismatch(behind=[], unknown=sorted(newer), expected=latest_version())
            todo = pending(applied, target)
            if todo:
                step = todo[0]
                for statement in statements(step.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.name, float(now)),
                )
            await conn.commit()
        except BaseException:
            if conn.in_transaction:
                await conn.rollback()
            raise
        if not todo:
            return max(applied, default=0)
