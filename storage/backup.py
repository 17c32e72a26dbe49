"""A consistent copy of a live database file, with SQLite's online backup API.

Why not `cp`: the bot keeps recent commits in the `-wal` file and checkpoints them into the main file at
moments of its choosing, so a file copy taken while it runs can mix two states or miss the last commits.
The backup API reads pages through a connection, inside one read transaction, so the copy is exactly the
state of one commit; in WAL mode the bot's writes carry on meanwhile.

The source is opened read-only (nothing is migrated or checkpointed), the copy is written next to the
target under a temporary name, switched to a plain rollback journal (one self-contained file), checked with
`PRAGMA integrity_check`, fsynced, and only then linked into place. An existing target is never replaced.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .db import Database
from .dialect import is_postgres_url, sqlite_path
from .errors import StorageError


class BackupError(StorageError):
    """The copy could not be made; nothing was left at the target path."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    integrity: str  # "ok", or what PRAGMA integrity_check found


async def backup_database(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> BackupResult:
    """Copy `source` to the new file `target` (its directory must exist; the file must not).

    A PostgreSQL database is refused: its own tools make consistent copies of a live database, and a file
    of ours could not be restored into it anyway."""
    if is_postgres_url(source):
        raise BackupError(
            "the database is PostgreSQL: back it up with pg_dump (e.g. `pg_dump --format=custom "
            "--schema=<schema> --file=<file> <database>`), which copies a live database consistently"
        )
    source_path = Path(sqlite_path(source) if isinstance(source, str) else source)
    target_path = Path(target)
    await asyncio.to_thread(_check_paths, source_path, target_path)
    partial = target_path.with_name(f".{target_path.name}.partial-{os.getpid()}")
    copy = await asyncio.to_thread(sqlite3.connect, partial, check_same_thread=False, isolation_level=None)
    try:
        db = await Database.open(source_path, read_only=True)
        try:
            await db.backup(copy)
        finally:
            await db.close()
        integrity = await asyncio.to_thread(_finish, copy)
        size = await asyncio.to_thread(_publish, partial, target_path)
    except BaseException:
        copy.close()
        partial.unlink(missing_ok=True)
        raise
    return BackupResult(target_path, size, integrity)


def _check_paths(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no database at {source}")
    if target.resolve() == source.resolve():
        raise BackupError("the backup must go to another file than the database")
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file name")
    if not target.parent.is_dir():
        raise BackupError(f"directory {target.parent} does not exist")


def _finish(copy: sqlite3.Connection) -> str:
    """One self-contained file (no -wal beside it), checked, then closed."""
    try:
        copy.execute("PRAGMA journal_mode=DELETE")
        rows = copy.execute("PRAGMA integrity_check").fetchall()
    finally:
        copy.close()
    return "; ".join(str(row[0]) for row in rows)


def _publish(partial: Path, target: Path) -> int:
    """fsync the copy, link it into place (never over a file), fsync the directory; returns the size."""
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    try:
        os.link(partial, target)
    except FileExistsError:
        raise BackupError(f"{target} appeared while the backup was written; nothing replaced") from None
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return target.stat().st_size
