"""`portrait-bot run [--webhook] [--no-jobs] | worker | generate | admin`: the console script.

Why so little here: configuration errors must end in one line on stderr and exit code 2 (never a
traceback), and logging must be redacting before anything can log a URL holding the token. The roles and
the graceful shutdown are bot/ops/process.py (SIGINT/SIGTERM stop taking updates, let running handlers
finish, then stop the runner and leave unfinished tasks in the database for the next start).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from api_client.loop import install_fast_loop
from bot.admin.preflight import store_problem
from bot.config import ConfigError, Settings
from bot.jobs.worker_lock import WorkerLock, WorkerLockHeld
from bot.log import setup_logging
from storage.pg_worker_lock import PgWorkerLock, WorkerIdInUse

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portrait-bot", description="Selfies to anime portraits.")
    parser.epilog = "`portrait-bot generate --help` and `portrait-bot admin --help` show their options."
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the bot (long polling, or a webhook) until SIGINT/SIGTERM")
    run.add_argument(
        "--webhook", action="store_true",
        help="take updates over HTTP (WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_LISTEN); on by itself when "
        "WEBHOOK_URL is set",
    )  # fmt: skip
    run.add_argument(
        "--no-jobs", action="store_true",
        help="only take updates and create tasks; `portrait-bot worker` processes run them",
    )  # fmt: skip
    commands.add_parser("worker", help="run generations only (no Telegram updates) until SIGINT/SIGTERM")
    commands.add_parser("generate", help="one generation from the command line (no Telegram)")
    commands.add_parser("admin", help="users and quotas in the database (`portrait-bot admin --help`)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `portrait-bot` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["generate"]:
        # Its options belong to api_client.cli; hand them over untouched.
        from api_client.cli import run_generate

        return run_generate(argv[1:])
    if argv[:1] == ["admin"]:
        from bot.admin.cli import run_admin

        return run_admin(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        return run(worker=True)
    return run(webhook=args.webhook, no_jobs=args.no_jobs)


def run(
    env: dict[str, str] | None = None, *, webhook: bool = False, no_jobs: bool = False, worker: bool = False
) -> int:
    """Read the configuration, set up redacting logs, run the role until a stop signal."""
    from bot.ops.process import Role

    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        print(f"portrait-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if worker:
        role = Role.WORKER
    elif webhook or settings.webhook_url:
        role = Role.WEBHOOK
    else:
        role = Role.POLLING
    if role is Role.WEBHOOK and not settings.webhook_url:
        print("portrait-bot: invalid configuration: --webhook needs WEBHOOK_URL and WEBHOOK_SECRET",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    settings = replace(settings, run_jobs=not no_jobs)
    problem = (None if settings.database_url else _database_problem(settings.db_path)) or asyncio.run(
        store_problem(settings)
    )
    if problem:
        print(f"portrait-bot: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(settings.log_level, settings.secret_values(), settings.log_format)
    log.info("starting: %s", settings.describe())
    # uvloop where installed (the `fast` extra): asyncio.run below makes its loop through the policy set here.
    log.info("event loop: %s", "uvloop" if install_fast_loop() else "asyncio")

    if asyncio.run(_token_refused(settings)):
        print("portrait-bot: Telegram refused TELEGRAM_BOT_TOKEN (check it with @BotFather)", file=sys.stderr)
        return EXIT_CONFIG

    from bot.ops.process import serve

    log.info("role: %s%s", role.value, "" if settings.run_jobs else " (--no-jobs: tasks are left to workers)")
    try:
        with _worker_lock(settings):
            asyncio.run(serve(settings, role))
    except (WorkerLockHeld, WorkerIdInUse) as exc:
        print(f"portrait-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE and exc.errno != errno.EADDRNOTAVAIL:
            raise
        listen = settings.webhook_listen if role is Role.WEBHOOK else f"0.0.0.0:{settings.metrics_port}"
        what = "WEBHOOK_LISTEN" if role is Role.WEBHOOK else "METRICS_PORT"
        print(f"portrait-bot: {what}: cannot listen on {listen} ({exc.strerror})", file=sys.stderr)
        return EXIT_CONFIG
    log.info("stopped")
    return 0


async def _token_refused(settings: Settings) -> bool:
    """One getMe with a throw-away Bot: a wrong token is a configuration error, told in one line.

    (Inside run_polling the same failure is logged by PTB with a traceback before it is raised.) Other
    failures, such as Telegram being unreachable, are left to run_polling and its own handling.
    """
    from bot.proxy import telegram_request

    request = telegram_request(settings)
    bot = Bot(
        settings.telegram_bot_token.value,
        base_url=settings.telegram_api_url,
        base_file_url=settings.telegram_file_url,
        request=request,
    )
    try:
        await bot.initialize()
    except InvalidToken:
        return True
    except TelegramError:
        return False
    finally:  # a failed initialize leaves the request open (aiohttp would warn of an unclosed session)
        await bot.shutdown()
        await request.shutdown()
    return False


def _worker_lock(settings: Settings) -> WorkerLock | PgWorkerLock:
    """One live process per WORKER_ID and database: a flock beside a SQLite file, a session advisory lock on
    a PostgreSQL server (whose clients may be on several hosts)."""
    if settings.database_url is not None:
        return PgWorkerLock(settings.database_url.value, settings.worker_id)
    return WorkerLock(settings.db_path, settings.worker_id)


def _database_problem(path: Path) -> str | None:
    """A database location we cannot write is a configuration error: say so in one line, up front."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"PORTRAIT_BOT_DB: cannot create {directory} ({exc.strerror or exc})"
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"PORTRAIT_BOT_DB: {path} is not writable"
    return None


if __name__ == "__main__":
    sys.exit(main())
