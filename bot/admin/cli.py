"""`portrait-bot admin ...`: quota and user management for operators, on the database file.

Why a CLI next to the chat commands: an operator on the server should not need Telegram (or raw SQL) to fix a
balance at 3 a.m. It opens the same SQLite file the running bot uses; WAL mode lets both work at once, and
every change is one short `BEGIN IMMEDIATE` transaction that the bot's next read sees.

Reports (users, user, stats, tasks, ledger check, audit, export) open the file read-only: they never
migrate, write or checkpoint it. Commands that change something open it as the bot does, with the bot's
quota settings, and are refused (one line) when the file counts quota days in another zone. The upkeep
commands (health, backup, purge, set-timezone) live in data_cli.py.

Audit: actions are recorded with actor 0 (no Telegram user has that id) and `via cli:<os user>` appended to
the reason, so the audit log says which operator account did it.

Exit codes: 0 done, 1 `ledger check`/`health`/`backup` found problems, 2 bad arguments or a refused action
(the message says which rule), 3 no database at the configured path.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.admin import data_cli
from bot.admin.args import MAX_AMOUNT, AdminError, parse_amount
from bot.admin.ops import CLI_ACTOR, AdminOps
from bot.admin.refund_cli import PAYMENT_COLUMNS, cli_refunder
from bot.admin.refunds import payments_of, refund
from bot.admin.tables import as_row, fields_block, rows_of, table, to_json
from bot.config import ConfigError, Settings
from bot.replies import t
from storage import TaskState
from storage.dialect import is_postgres_url, sqlite_path

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_NO_DB = 0, 1, 2, 3
USER_COLUMNS = ("id", "username", "first_name", "role", "banned", "language", "last_seen")
TASK_COLUMNS = ("id", "user_id", "chat_id", "state", "error_code", "attempts", "created_at", "finished_at")
LEDGER_COLUMNS = ("id", "user_id", "task_id", "kind", "free", "credits", "actor", "reason", "at")
PAGE = 500
#: Commands that only read: the file is opened read-only (mode=ro), so they cannot change it.
READ_ONLY = frozenset({"users", "user", "stats", "tasks", "ledger", "audit", "export"})


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so run_admin() returns a code instead of SystemExit."""

    def error(self, message: str) -> Any:
        raise AdminError("admin.cli.usage", message=f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="portrait-bot admin", description="Manage users and quotas in the bot's database.")
    parser.add_argument(
        "--db", help="SQLite file or postgresql:// URL (default: DATABASE_URL, else PORTRAIT_BOT_DB)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = command("users", "list users, most recent first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    command("user", "one user: profile, balance, ledger tail, recent tasks").add_argument("user")
    p = command("grant", f"add credits (negative takes back; at most {MAX_AMOUNT})")
    p.add_argument("user")
    p.add_argument("amount")
    p.add_argument("--reason", default="")
    p = command("set-daily", "daily free allowance of one user, or 'default' for everyone")
    p.add_argument("user")
    p.add_argument("amount")
    p.add_argument("--reason", default="")
    p = command("ban", "ban a user and cancel (refund) their running tasks")
    p.add_argument("user")
    p.add_argument("--reason", default="")
    p = command("unban", "lift a ban")
    p.add_argument("user")
    p.add_argument("--reason", default="")
    command("stats", "usage today and over 7 days")
    p = command("tasks", "recent tasks in one state")
    p.add_argument("--state", required=True, choices=[s.value for s in TaskState])
    p.add_argument("--limit", type=int, default=50)
    p = command("ledger", "ledger tools")
    p.add_argument("action", choices=["check"])
    p = command("audit", "latest admin actions")
    p.add_argument("--limit", type=int, default=20)
    p = command("payments", "one user's Stars payments, newest first (charge ids for refund)")
    p.add_argument("user")
    p = command("refund", "refund a Stars payment through Telegram and take its credits back")
    p.add_argument("charge_id", help="telegram_payment_charge_id (see `payments`)")
    p.add_argument("--reason", default="")
    p = sub.add_parser("export", help="users and ledger as CSV or JSON")
    p.add_argument("--format", choices=["csv", "json"], default="json")
    p.add_argument("--table", choices=["users", "ledger"], help="only one table (CSV on stdout needs it)")
    p.add_argument("--out", help="file to write; CSV of both tables puts the ledger in <stem>.ledger<ext>")
    data_cli.add_commands(command)
    return parser


def run_admin(argv: Sequence[str], *, stdout: TextIO | None = None, env: dict[str, str] | None = None) -> int:
    """Entry point used by bot/cli.py for `portrait-bot admin ...`; returns the process exit code."""
    out = stdout or sys.stdout
    try:
        args = build_parser().parse_args(list(argv))
        settings = _settings(env)
    except AdminError as exc:
        print(t(exc.key, "en", **exc.values), file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    db: data_cli.Target = settings.database
    if args.db:
        db = args.db if is_postgres_url(args.db) else Path(sqlite_path(args.db))
    if isinstance(db, Path) and not db.exists() and args.command != "migrate-db":  # it names its own
        print(f"no database at {db} (set DATABASE_URL or PORTRAIT_BOT_DB, or pass --db)", file=sys.stderr)
        return EXIT_NO_DB
    try:
        return asyncio.run(_run(args, settings, db, out))
    except AdminError as exc:
        print(t(exc.key, "en", **exc.values), file=sys.stderr)
        return EXIT_USAGE


def _settings(env: dict[str, str] | None) -> Settings:
    try:
        return Settings.from_env(env, require_telegram=False, require_volc=False)
    except ConfigError as exc:
        raise AdminError("admin.cli.usage", message=str(exc)) from None


async def _run(args: argparse.Namespace, settings: Settings, db_path: data_cli.Target, out: TextIO) -> int:
    """Open the store with the bot's quota settings, so balances read exactly as the bot computes them."""
    via = f"cli:{_os_user()}"
    upkeep = data_cli.COMMANDS.get(args.command)
    if upkeep is not None:
        return await upkeep(args, settings, db_path, out, _emit, via)
    store = await data_cli.open_store(settings, db_path, read_only=args.command in READ_ONLY)
    try:
        ops = AdminOps(store, actor=CLI_ACTOR, via=via)
        args.settings = settings  # a refund reaches Telegram with the bot's token, URL and proxy
        handler = _COMMANDS[args.command]
        return await handler(ops, args, out)
    finally:
        await store.close()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


async def _user_id(ops: AdminOps, ref: str) -> int:
    """A numeric id or an @username the bot has seen."""
    text = ref.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    user = await ops.store.users.find(text)
    if user is None:
        raise AdminError("admin.error.unknown_user", user=text)
    return int(user.id)


def _emit(out: TextIO, args: argparse.Namespace, data: Any, text: str) -> None:
    print(to_json(data) if getattr(args, "json", False) else text, file=out)


async def _users(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    if not (1 <= args.limit <= 10_000) or args.offset < 0:
        raise AdminError("admin.cli.usage", message="--limit must be 1..10000 and --offset >= 0")
    rows = rows_of(await ops.store.users.list(limit=args.limit, offset=args.offset))
    _emit(out, args, rows, table(rows, USER_COLUMNS))
    return EXIT_OK


async def _user(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    view = await ops.quota(await _user_id(ops, args.user))
    tasks = rows_of(await ops.store.tasks.recent_for_user(view.user.id, limit=10))
    user, balance, ledger = as_row(view.user), as_row(view.balance), rows_of(view.ledger)
    data = {"user": user, "balance": balance, "ledger": ledger, "tasks": tasks}
    text = "\n\n".join([fields_block(user), fields_block(balance),
                        "ledger:\n" + table(ledger, LEDGER_COLUMNS), "tasks:\n" + table(tasks, TASK_COLUMNS)])
    _emit(out, args, data, text)
    return EXIT_OK


async def _grant(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    amount = parse_amount(args.amount, allow_negative=True, allow_zero=False)
    user_id = await _user_id(ops, args.user)
    balance = as_row(await ops.grant(user_id, amount, args.reason))
    _emit(out, args, {"user_id": user_id, "balance": balance}, f"user {user_id}\n" + fields_block(balance))
    return EXIT_OK


async def _set_daily(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    allowance = parse_amount(args.amount, allow_negative=False, allow_zero=True)
    user_id = None if args.user.strip().lower() == "default" else await _user_id(ops, args.user)
    balance = await ops.set_daily(user_id, allowance, args.reason)
    if balance is None:
        _emit(out, args, {"default_daily": allowance}, f"default daily allowance: {allowance}")
    else:
        row = as_row(balance)
        _emit(out, args, {"user_id": user_id, "balance": row}, f"user {user_id}\n" + fields_block(row))
    return EXIT_OK


async def _ban(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    result = await ops.ban(await _user_id(ops, args.user), args.reason)
    row = as_row(result.user)
    text = fields_block(row) + f"\ncancelled tasks: {', '.join(map(str, result.cancelled)) or '-'}"
    _emit(out, args, {"user": row, "cancelled_tasks": result.cancelled}, text)
    return EXIT_OK


async def _unban(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    row = as_row(await ops.unban(await _user_id(ops, args.user), args.reason))
    _emit(out, args, {"user": row}, fields_block(row))
    return EXIT_OK


async def _stats(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    row = as_row(await ops.stats())
    _emit(out, args, row, fields_block(row))
    return EXIT_OK


async def _tasks(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    if not 1 <= args.limit <= 10_000:
        raise AdminError("admin.cli.usage", message="--limit must be 1..10000")
    state = TaskState(args.state)
    found = [row for row in rows_of(await _all_recent_tasks(ops, args.limit)) if row["state"] == state.value]
    found.sort(key=lambda r: r["created_at"], reverse=True)
    rows = found[: args.limit]
    _emit(out, args, rows, table(rows, TASK_COLUMNS))
    return EXIT_OK


async def _all_recent_tasks(ops: AdminOps, per_user: int) -> list[Any]:
    """Recent tasks of every user: the store has no cross-user task listing, and an operator tool can
    afford one query per user."""
    tasks: list[Any] = []
    for user in await _all(ops.store.users.list):
        tasks.extend(await ops.store.tasks.recent_for_user(user.id, limit=per_user))
    return tasks


async def _all(list_page: Any) -> list[Any]:
    records: list[Any] = []
    while True:
        page = await list_page(limit=PAGE, offset=len(records))
        records.extend(page)
        if len(page) < PAGE:
            return records


async def _ledger(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    check = await ops.store.quotas.check()
    text = "ledger OK" if check.ok else "ledger problems:\n" + "\n".join(f"- {p}" for p in check.problems)
    _emit(out, args, as_row(check), text)
    return EXIT_OK if check.ok else EXIT_CHECK_FAILED


async def _audit(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    rows = rows_of(await ops.audit_log(limit=max(1, min(args.limit, 10_000))))
    _emit(out, args, rows, table(rows))
    return EXIT_OK


async def _export(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    users = rows_of(await _all(ops.store.users.list))
    tables: dict[str, list[dict[str, Any]]] = {}
    if args.table in (None, "users"):
        tables["users"] = users
    if args.table in (None, "ledger"):
        tables["ledger"] = [
            row
            for user in users
            for row in rows_of(await ops.store.quotas.ledger(user["id"], limit=1_000_000))
        ]
    if args.format == "json":
        _write(args.out, out, to_json(tables))
        return EXIT_OK
    if len(tables) > 1 and not args.out:
        raise AdminError("admin.cli.usage", message="CSV of both tables needs --out FILE (or --table)")
    for name, rows in tables.items():
        target = args.out
        if target and name == "ledger" and len(tables) > 1:
            path = Path(target)
            target = str(path.with_name(f"{path.stem}.ledger{path.suffix}"))
        _write(target, out, _csv(rows, USER_COLUMNS if name == "users" else LEDGER_COLUMNS))
    return EXIT_OK


def _csv(rows: list[dict[str, Any]], default_columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    columns = list(rows[0].keys()) if rows else list(default_columns)
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _write(path: str | None, out: TextIO, text: str) -> None:
    if path:
        Path(path).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        print(f"wrote {path}", file=out)
    else:
        print(text, file=out, end="" if text.endswith("\n") else "\n")


async def _payments(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    rows = rows_of(await payments_of(ops, await _user_id(ops, args.user)))
    _emit(out, args, rows, table(rows, PAYMENT_COLUMNS))
    return EXIT_OK


async def _refund(ops: AdminOps, args: argparse.Namespace, out: TextIO) -> int:
    """Needs TELEGRAM_BOT_TOKEN (and TELEGRAM_API_URL / TELEGRAM_PROXY as the bot uses them)."""
    done = await refund(ops, cli_refunder(args.settings), args.charge_id, args.reason)
    row = as_row(done.result.payment) | {"credits_now": done.result.credits}
    _emit(out, args, row, fields_block(row))
    return EXIT_OK


_COMMANDS = {
    "payments": _payments,
    "refund": _refund,
    "users": _users, "user": _user, "grant": _grant, "set-daily": _set_daily, "ban": _ban, "unban": _unban,
    "stats": _stats, "tasks": _tasks, "ledger": _ledger, "audit": _audit, "export": _export,
}


if __name__ == "__main__":  # `python -m bot.admin.cli ...`, the same as `portrait-bot admin ...`
    sys.exit(run_admin(sys.argv[1:]))
