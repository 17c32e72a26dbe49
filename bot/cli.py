"""`portrait-bot run | generate | admin`: the console script.

Why so little here: configuration errors must end in one line on stderr and exit code 2 (never a
traceback), logging must be redacting before anything can log a URL holding the token, and graceful
shutdown is PTB's `run_polling` (SIGINT/SIGTERM stop fetching updates, let running handlers finish, then
post_stop/post_shutdown stop the runner and leave unfinished tasks in the database for the next start).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from telegram import Bot, Update
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
    commands.add_parser("run", help="run the bot (long polling) until SIGINT/SIGTERM")
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
    build_parser().parse_args(argv)
    return run()


def run(env: dict[str, str] | None = None) -> int:
    """Read the configuration, set up redacting logs, poll until a stop signal."""
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        print(f"portrait-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    problem = (None if settings.database_url else _database_problem(settings.db_path)) or asyncio.run(
        store_problem(settings)
    )
    if problem:
        print(f"portrait-bot: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(settings.log_level, settings.secret_values(), settings.log_format)
    log.info("starting: %s", settings.describe())
    # uvloop where installed (the `fast` extra): run_polling makes its loop through the policy set here.
    log.info("event loop: %s", "uvloop" if install_fast_loop() else "asyncio")

    if asyncio.run(_token_refused(settings)):
        print("portrait-bot: Telegram refused TELEGRAM_BOT_TOKEN (check it with @BotFather)", file=sys.stderr)
        return EXIT_CONFIG

    from bot.app import build_application

    try:
        with _worker_lock(settings):
            build_application(settings).run_polling(allowed_updates=Update.ALL_TYPES)
    except (WorkerLockHeld, WorkerIdInUse) as exc:
        print(f"portrait-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log.info("stopped")
    return 0


async def _token_refused(settings: Settings) -> bool:
    """One getMe with a throw-away Bot: a wrong token is a configuration error, told in one line.

    (Inside run_polling the same failure is logged by PTB with a traceback before it is raised.) Other
    failures, such as Telegram being unreachable, are left to run_polling and its own handling.
    """
    from bot.proxy import telegram_request

    bot = Bot(
        settings.telegram_bot_token.value,
        base_url=settings.telegram_api_url,
        base_file_url=settings.telegram_file_url,
        request=telegram_request(settings),
    )
    try:
        await bot.initialize()
    except InvalidToken:
        return True
    except TelegramError:
        return False
    await bot.shutdown()
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
