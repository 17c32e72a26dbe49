"""Why a database cannot be opened, said in one line an operator can act on.

Shared by `portrait-bot run` (checked before polling starts, so a mismatch is one line on stderr and exit
code 2, not a traceback from inside PTB's post_init) and by `portrait-bot admin`. The store raises typed
errors without naming our configuration; this module adds the variable and the command that fix each.
"""

from __future__ import annotations

from bot.config import Settings
from storage import DATABASE_ERRORS, QuotaTimezoneMismatch, SchemaMismatch, StorageError, Store

#: What opening the store may raise: its own refusals, or the database's (file, server, connection).
OPEN_ERRORS: tuple[type[Exception], ...] = (StorageError, *DATABASE_ERRORS)


def refusal_line(exc: BaseException) -> str:
    """One line for a refused open (time zone, schema) or an unreadable file."""
    if isinstance(exc, QuotaTimezoneMismatch):
        return (
            f"the database counts quota days in {exc.stored}, but QUOTA_TIMEZONE is {exc.requested}: "
            f"set QUOTA_TIMEZONE={exc.stored}, or move the database to {exc.requested} on purpose with "
            f"`portrait-bot admin set-timezone {exc.requested}` (docs/ADMIN.md)"
        )
    if isinstance(exc, SchemaMismatch) and exc.unknown:
        return f"{exc}: run the newer version of portrait-bot"
    if isinstance(exc, SchemaMismatch):
        return f"{exc}: start the bot (or run a changing admin command) to migrate it"
    if isinstance(exc, DATABASE_ERRORS):
        return f"cannot read the database: {exc}"
    return str(exc)


async def store_problem(settings: Settings) -> str | None:
    """Open the bot's database as the bot will (migrating, pinning the zone); the refusal line, if any."""
    try:
        store = await Store.open(
            settings.database,
            daily_free_quota=settings.daily_free_quota,
            quota_timezone=settings.quota_timezone,
        )
    except OPEN_ERRORS as exc:
        return f"{settings.database_variable}: {refusal_line(exc)}"
    await store.close()
    return None
