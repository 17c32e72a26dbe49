"""`portrait-bot admin migrate-db --from sqlite:///... --to postgresql://...`: move a bot to PostgreSQL.

The copy itself is storage/transfer.py (one snapshot of the source, one transaction on the target, ids and
sequences kept, counts and the ledger check compared). This module only reads the two URLs, refuses to
copy from under a running bot, and prints the outcome for an operator (exit 0: both ledgers clean).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.admin.args import AdminError
from bot.admin.preflight import OPEN_ERRORS, refusal_line
from bot.config import Settings
from bot.jobs.worker_lock import running_bot
from storage.dialect import is_postgres_url, sqlite_path
from storage.transfer import TransferError, copy_database

EXIT_OK, EXIT_PROBLEM = 0, 1


def add_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = command("migrate-db", "copy the SQLite database into a new, empty PostgreSQL one (bot stopped)")
    p.add_argument("--from", dest="source", required=True, help="sqlite:///path/to/portrait-bot.db or a path")
    p.add_argument("--to", dest="target", required=True, help="postgresql://user@host:port/database")


async def migrate_db(
    args: argparse.Namespace,
    settings: Settings,
    db: Path | str,
    out: TextIO,
    emit: Callable[[TextIO, argparse.Namespace, object, str], None],
    via: str,
) -> int:
    """Copy, then report the rows per table and both ledger checks."""

    source = Path(sqlite_path(args.source))
    if is_postgres_url(args.source) or not is_postgres_url(args.target):
        raise AdminError("admin.cli.usage", message="use --from sqlite:///path --to postgresql://...")
    if not await asyncio.to_thread(source.is_file):
        raise AdminError("admin.cli.usage", message=f"no database at {source}")
    if await running_bot(source):
        raise AdminError("admin.cli.usage", message="a portrait-bot runs on the database: stop it first")
    try:
        result = await copy_database(source, args.target)
    except TransferError as exc:
        raise AdminError("admin.cli.usage", message=str(exc)) from None
    except OPEN_ERRORS as exc:
        raise AdminError("admin.cli.usage", message=refusal_line(exc)) from None
    ok = not result.source_problems and not result.target_problems
    copied = ", ".join(f"{table} {n}" for table, n in result.rows.items())
    ledgers = "ledger check clean on both sides" if ok else (
        f"ledger problems: source {result.source_problems}, target {result.target_problems}"
    )
    data = {"ok": ok, "rows": result.rows, "source_problems": result.source_problems,
            "target_problems": result.target_problems}  # fmt: skip
    emit(out, args, data, f"copied {copied}; {ledgers}. Now set DATABASE_URL to the new database.")
    return EXIT_OK if ok else EXIT_PROBLEM
