"""`portrait-bot admin health | backup | purge | set-timezone`: the database's upkeep.

Why apart from cli.py: these commands are about the file rather than about users, and three of them open
it in their own way. `health` (the container's health check) and `backup` open it read-only: they must
never migrate, write or checkpoint a database the bot is using, and `health` reports a file it cannot
use instead of failing to open it. `set-timezone` opens it whatever zone it holds, since changing that
zone is its job, and refuses while a bot runs on the file: the bot would keep counting in the old zone.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.admin import migrate_cli
from bot.admin.args import AdminError, clean_reason
from bot.admin.ops import CLI_ACTOR
from bot.admin.preflight import OPEN_ERRORS, refusal_line
from bot.config import Settings
from bot.jobs.prepared import PreparedCache, user_image_ids
from bot.jobs.worker_lock import running_bot
from storage import (
    BackupError,
    HasActiveTasks,
    SchemaMismatch,
    Store,
    backup_database,
)
from storage.zone import check_zone

#: The database an admin command works on: a SQLite file, or a PostgreSQL URL (DATABASE_URL).
Target = Path | str

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
MAX_DAYS = 36_500
Emit = Callable[[TextIO, argparse.Namespace, Any, str], None]
#: (arguments, settings, database, output, how to print, "cli:<os user>" for the audit log)
Command = Callable[[argparse.Namespace, Settings, "Target", TextIO, Emit, str], Awaitable[int]]


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register the sub-commands on cli.py's parser (`command` adds one with --json)."""
    command("health", "read-only check for monitoring: schema, quota time zone, ledger (exit 1: unhealthy)")
    p = command("backup", "consistent copy of the live database into a new file (SQLite online backup)")
    p.add_argument("path", help="the new file to write (never overwritten)")
    p = command("purge", "delete finished tasks (file ids, prompts) older than DAYS; unfinished ones stay")
    p.add_argument("--older-than", dest="days", required=True, metavar="DAYS")
    p.add_argument("--reason", default="")
    p = command("forget", "delete one user's images, prompt, settings and history, as /forgetme does")
    p.add_argument("user", help="numeric id or @username")
    p.add_argument("--reason", default="")
    p = command("set-timezone", "move the quota time zone stored in the database (stop the bot first)")
    p.add_argument("zone", help="IANA time zone, e.g. Asia/Shanghai")
    p.add_argument("--reason", default="")
    migrate_cli.add_command(command)


async def health(
    args: argparse.Namespace, settings: Settings, db: Target, out: TextIO, emit: Emit, via: str
) -> int:
    """Healthy: this code's schema, the configured quota zone, and a ledger that adds up."""
    try:
        store = await Store.open(
            db, daily_free_quota=settings.daily_free_quota, quota_timezone=settings.quota_timezone,
            read_only=True,
        )  # fmt: skip
    except OPEN_ERRORS as exc:
        line = refusal_line(exc)
        emit(out, args, {"ok": False, "schema": None, "problems": [line]}, f"unhealthy: {line}")
        return EXIT_PROBLEM
    try:
        check = await store.quotas.check()
        data = {"ok": check.ok, "schema": store.schema_version, "problems": check.problems}
        if check.ok:
            zone = store.quota_timezone
            text = f"healthy: schema {store.schema_version}, quota time zone {zone}, ledger OK"
        else:
            text = "unhealthy: ledger problems:\n" + "\n".join(f"- {p}" for p in check.problems)
        emit(out, args, data, text)
        return EXIT_OK if check.ok else EXIT_PROBLEM
    finally:
        await store.close()


async def backup(
    args: argparse.Namespace, settings: Settings, db: Target, out: TextIO, emit: Emit, via: str
) -> int:
    """Copy, then check the copy: its integrity, and its ledger when its schema is this code's."""
    try:
        result = await backup_database(db, args.path)
    except BackupError as exc:
        raise AdminError("admin.cli.usage", message=str(exc)) from None
    data: dict[str, Any] = {"path": str(result.path), "bytes": result.bytes, "integrity": result.integrity}
    try:
        async with await Store.open(result.path, read_only=True) as copy:
            check = await copy.quotas.check()
            data.update(schema=copy.schema_version, ledger_ok=check.ok, problems=check.problems)
            ledger = "ledger OK" if check.ok else f"ledger problems: {'; '.join(check.problems)}"
    except SchemaMismatch as exc:
        data.update(schema=None, ledger_ok=None, problems=[])
        ledger = f"ledger not checked ({exc})"
    ok = result.integrity == "ok" and data["ledger_ok"] is not False
    text = f"wrote {result.path} ({result.bytes} bytes): integrity {result.integrity}, {ledger}"
    emit(out, args, data, text)
    return EXIT_OK if ok else EXIT_PROBLEM


async def purge(
    args: argparse.Namespace, settings: Settings, db: Target, out: TextIO, emit: Emit, via: str
) -> int:
    days = _days(args.days)
    async with await open_store(settings, db) as store:
        result = await store.privacy.purge_finished(days * 86400.0, actor=CLI_ACTOR, reason=_why(args, via))
    before = datetime.fromtimestamp(result.cutoff, UTC).strftime("%Y-%m-%d %H:%M UTC")
    states = ", ".join(f"{state} {n}" for state, n in sorted(result.by_state.items())) or "none"
    text = (
        f"deleted {result.tasks_deleted} finished tasks that ended before {before} ({states}), with their "
        f"file ids and prompts; ledger rows kept; {result.unfinished_kept} unfinished older tasks left alone"
    )
    data = {
        "deleted": result.tasks_deleted, "by_state": dict(result.by_state), "before": result.cutoff,
        "unfinished_kept": result.unfinished_kept,
    }  # fmt: skip
    emit(out, args, data, text)
    return EXIT_OK


async def forget(
    args: argparse.Namespace, settings: Settings, db: Target, out: TextIO, emit: Emit, via: str
) -> int:
    """/forgetme on a user's behalf (a request by mail); refused while a portrait of theirs is running."""
    async with await open_store(settings, db) as store:
        ref = args.user.strip()
        user = await store.users.find(ref)
        if user is None:
            raise AdminError("admin.error.unknown_user", user=ref)
        images = await user_image_ids(store, user.id)  # their prepared photos go too (bot.jobs.prepared)
        try:
            result = await store.privacy.forget_user(user.id, actor=CLI_ACTOR, reason=_why(args, via))
        except HasActiveTasks as exc:
            message = (
                f"user {user.id} has {exc.active} unfinished task(s): cancel them (ban) or wait, then retry"
            )
            raise AdminError("admin.cli.usage", message=message) from None
    PreparedCache.beside(db).forget(images)
    text = (
        f"user {user.id} forgotten: {result.tasks_deleted} tasks deleted, {result.ledger_rows_anonymised} "
        "ledger reasons cleared; balance kept"
    )
    emit(
        out,
        args,
        {
            "user_id": user.id,
            "tasks_deleted": result.tasks_deleted,
            "ledger_rows_anonymised": result.ledger_rows_anonymised,
        },
        text,
    )
    return EXIT_OK


async def open_store(settings: Settings, db: Target, *, read_only: bool = False) -> Store:
    """The store as the bot opens it (its quota zone and default allowance); a refusal is an AdminError."""
    try:
        return await Store.open(
            db, daily_free_quota=settings.daily_free_quota, quota_timezone=settings.quota_timezone,
            read_only=read_only,
        )  # fmt: skip
    except OPEN_ERRORS as exc:
        raise AdminError("admin.cli.usage", message=refusal_line(exc)) from None


def _why(args: argparse.Namespace, via: str) -> str:
    """The operator's reason plus which OS account ran the command, as the other CLI actions record it."""
    reason = clean_reason(args.reason)
    return f"{reason} (via {via})" if reason else f"via {via}"


def _days(text: str) -> int:
    cleaned = text.strip()
    if not cleaned.isdigit() or not 1 <= int(cleaned) <= MAX_DAYS:
        message = f"--older-than must be a whole number of days, 1..{MAX_DAYS}"
        raise AdminError("admin.cli.usage", message=message)
    return int(cleaned)


async def set_timezone(
    args: argparse.Namespace, settings: Settings, db: Target, out: TextIO, emit: Emit, via: str
) -> int:
    try:
        zone = check_zone(args.zone.strip())
    except ValueError as exc:
        raise AdminError("admin.cli.usage", message=str(exc)) from None
    if await running_bot(db):
        raise AdminError(
            "admin.cli.usage",
            message="a portrait-bot is running on this database: stop it first, then set the zone and "
            "QUOTA_TIMEZONE together",
        )
    # No quota_timezone: whatever zone the file holds is the one being replaced.
    async with await Store.open(db, daily_free_quota=settings.daily_free_quota) as store:
        previous = await store.zone.change(zone, actor=CLI_ACTOR, reason=_why(args, via))
    if previous == zone:
        text = f"the quota time zone is {zone} already; nothing changed"
    else:
        text = (
            f"quota time zone: {previous} -> {zone}. Set QUOTA_TIMEZONE={zone} for the bot and admin "
            f"commands; each user's quota day restarts under {zone}'s date at their next request"
        )
    emit(out, args, {"previous": previous, "zone": zone}, text)
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "health": health, "backup": backup, "purge": purge, "forget": forget, "set-timezone": set_timezone,
    "migrate-db": migrate_cli.migrate_db,
}  # fmt: skip
