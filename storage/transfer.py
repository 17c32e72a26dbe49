"""Moving a bot's data from its SQLite file to PostgreSQL (`portrait-bot admin migrate-db`).

Why a copy through the store rather than a dump: the two schemas differ in types and in how ids are made
(AUTOINCREMENT vs identity columns), and the copy must be provably the same data. So both databases are
opened with Store.open (the source read-only, at this code's schema; the target migrated), every table is
copied row by row with its ids in one snapshot of the source and one transaction on the target, the
target's id sequences are moved past every id the source ever handed out (SQLite's `sqlite_sequence` too:
a purged task's id is still named by its ledger rows and must never be handed out again), and then the
row counts and the ledger check are compared on both sides.

A target that already holds data is refused: merging two bots' histories is not a copy. Stop the bot (or
keep it from writing) while copying: writes after the snapshot would not be in the copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .db import Session
from .dialect import is_postgres_url
from .errors import StorageError
from .store import Store

#: Every table of the schema, parents before the rows that refer to them.
TABLES = (
    "users", "chats", "config", "quota_accounts", "tasks", "ledger", "audit_log", "generation_timings",
    "payments", "referral_codes", "referrals",
)  # fmt: skip
#: Tables whose ids come from a sequence on PostgreSQL: (table, id column).
SEQUENCES = (("tasks", "id"), ("ledger", "id"), ("audit_log", "id"), ("payments", "rowid"))


class TransferError(StorageError):
    """The copy was refused or did not check out; the message says why."""


@dataclass(frozen=True)
class TransferResult:
    rows: dict[str, int]  # rows copied per table
    source_problems: list[str]  # the ledger check of each side afterwards (both empty: all is well)
    target_problems: list[str]


async def copy_database(source: str | os.PathLike[str], target: str) -> TransferResult:
    """Copy every row of the SQLite database `source` into the empty PostgreSQL database `target`."""
    if is_postgres_url(source) or not is_postgres_url(target):
        raise TransferError("migrate-db copies a SQLite database into PostgreSQL: --from sqlite:///...")
    async with (
        await Store.open(source, read_only=True) as src,
        await Store.open(target, quota_timezone=src.quota_timezone) as dst,
    ):
        await _refuse_data(dst)
        rows: dict[str, int] = {}
        async with src._ctx.db.read(snapshot=True) as r, dst._ctx.db.transaction() as tx:
            for table in TABLES:
                select = "SELECT rowid AS rowid, * FROM payments" if table == "payments" else None
                rows[table] = await _copy_table(r, tx, table, select or f"SELECT * FROM {table}")
            for table, column in SEQUENCES:
                await _move_sequence(r, tx, table, column)
        source_check, target_check = await src.quotas.check(), await dst.quotas.check()
        copied = await _counts(dst)
    if copied != rows:
        raise TransferError(f"row counts differ after the copy: source {rows}, target {copied}")
    return TransferResult(rows, source_check.problems, target_check.problems)


async def _refuse_data(store: Store) -> None:
    """Only the zone the open just pinned may be there: anything else is another bot's data."""
    counts = await _counts(store)
    counts["config"] -= 1
    full = {table: n for table, n in counts.items() if n}
    if full:
        raise TransferError(f"the target database is not empty ({full}); copy into a new database or schema")


async def _counts(store: Store) -> dict[str, int]:
    async with store._ctx.db.read(snapshot=True) as r:
        return {table: int(await r.value(f"SELECT COUNT(*) FROM {table}")) for table in TABLES}


async def _copy_table(r: Session, tx: Session, table: str, select: str) -> int:
    rows = await r.all(select)
    if not rows:
        return 0
    columns = list(rows[0].keys())
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        + (" ON CONFLICT (key) DO UPDATE SET value = excluded.value" if table == "config" else "")
    )
    for row in rows:
        await tx.execute(insert, tuple(row[c] for c in columns))
    return len(rows)


async def _move_sequence(r: Session, tx: Session, table: str, column: str) -> None:
    """The target's next id: past the largest the source used, including ids of rows deleted since."""
    highest = int(await r.value(f"SELECT COALESCE(MAX({column}), 0) FROM {table}"))
    if column == "id":
        used = await r.value("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
        highest = max(highest, int(used or 0))
    if table == "tasks":
        highest = max(highest, int(await r.value("SELECT COALESCE(MAX(task_id), 0) FROM ledger")))
    sequence = f"pg_get_serial_sequence('{table}', '{column}')"
    await tx.all(f"SELECT setval({sequence}, ?, ?)", (max(highest, 1), highest > 0))
