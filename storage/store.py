"""The Store: opens the database, applies migrations and hangs the repositories off one object.

The database is a SQLite file (a path, or a `sqlite:///path` URL) or a PostgreSQL schema (a
`postgresql://` URL): the repositories run the same SQL on either through the `Db`/`Session` API (db.py,
postgres.py, dialect.py).

Opening read-write migrates (see migrate.py for why that is safe with several processes) and pins the
quota time zone (zone.py). Opening read-only does neither: it reads the file as it is and refuses a file
whose schema is not this code's, since the queries of this code may not fit it.
"""

from __future__ import annotations

import os
from types import TracebackType

from .admin import AdminRepo
from .chats import ChatsRepo
from .clock import ClockLike, QuotaCalendar, as_now
from .context import StoreContext
from .db import Database, Db, Synchronous
from .dialect import is_postgres_url, sqlite_path
from .errors import SchemaMismatch
from .gauges import GaugesRepo
from .migrate import latest_version, pending, unknown_versions
from .payments import PaymentsRepo
from .privacy import PrivacyRepo
from .quotas import QuotasRepo
from .referrals import ReferralsRepo
from .tasks import TasksRepo
from .timings import TimingsRepo
from .updates import UpdatesRepo
from .users import UsersRepo
from .zone import ZoneRepo, agreed_zone, check_zone, pin_zone, stored_zone


class Store:
    """`store = await Store.open(path_or_url)`; every method is async; close() (or `async with`) at exit."""

    def __init__(self, ctx: StoreContext, schema_version: int) -> None:
        self._ctx = ctx
        self.schema_version = schema_version
        self.users = UsersRepo(ctx)
        self.timings = TimingsRepo(ctx)
        self.chats = ChatsRepo(ctx)
        self.quotas = QuotasRepo(ctx)
        self.tasks = TasksRepo(ctx)
        self.admin = AdminRepo(ctx)
        self.payments = PaymentsRepo(ctx)
        self.referrals = ReferralsRepo(ctx)
        self.privacy = PrivacyRepo(ctx)
        self.zone = ZoneRepo(ctx)
        self.updates = UpdatesRepo(ctx)
        self.gauges = GaugesRepo(ctx)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: ClockLike | None = None,
        daily_free_quota: int = 3,
        quota_timezone: str | None = None,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
        read_only: bool = False,
    ) -> Store:
        """Open (creating the file and its directory if needed) and migrate to the newest schema.

        `path` is a SQLite file (or `sqlite:///path`) or a `postgresql://` URL; on PostgreSQL the schema
        must exist (the first of the URL's `search_path`, `public` by default) and `synchronous` does not
        apply (every commit is durable as the server is configured).

        `daily_free_quota` is the default allowance until an admin sets one with quotas.set_daily(None, ...).
        `quota_timezone` is the IANA zone whose midnight resets it: the first open stores it in the file
        (UTC if None) and later opens must ask for the same zone or None, else QuotaTimezoneMismatch.
        `read_only` opens without migrating or writing anything (SchemaMismatch if the file is not at this
        code's schema). See db.py for `synchronous`.
        """
        if daily_free_quota < 0:
            raise ValueError("daily_free_quota cannot be negative")
        if quota_timezone is not None:
            check_zone(quota_timezone)
        now = as_now(clock)
        db = await open_db(
            path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms, read_only=read_only
        )
        try:
            if read_only:
                version = await _check_schema(db)
                async with db.read() as r:
                    zone = agreed_zone(await stored_zone(r), quota_timezone)
            else:
                version = await db.migrate(now=now())
                async with db.transaction() as tx:
                    zone = await pin_zone(tx, quota_timezone)
        except BaseException:
            await db.close()
            raise
        return cls(StoreContext(db, now, QuotaCalendar(zone), daily_free_quota), version)

    @property
    def quota_timezone(self) -> str:
        """The zone this store counts quota days in (the file's, as agreed at open)."""
        return self._ctx.calendar.zone.key

    @property
    def read_only(self) -> bool:
        return self._ctx.db.read_only

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._ctx.db.backend

    async def close(self) -> None:
        await self._ctx.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def open_db(
    target: str | os.PathLike[str],
    *,
    synchronous: Synchronous = "FULL",
    busy_timeout_ms: int = 5000,
    read_only: bool = False,
) -> Db:
    """The backend `target` names: a `postgresql://` URL, else a SQLite file (path or `sqlite:///path`)."""
    if is_postgres_url(target):
        from .postgres import PgDatabase  # asyncpg is loaded only by stores that use it

        return await PgDatabase.open(str(target), busy_timeout_ms=busy_timeout_ms, read_only=read_only)
    path = sqlite_path(target) if isinstance(target, str) else target
    return await Database.open(
        path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms, read_only=read_only
    )


async def _check_schema(db: Db) -> int:
    """A read-only open must find exactly this code's migrations applied."""
    applied = await db.applied_versions()
    behind, unknown = pending(applied, backend=db.backend), unknown_versions(applied, db.backend)
    if behind or unknown:
        raise SchemaMismatch(
            behind=[m.version for m in behind], unknown=sorted(unknown), expected=latest_version(db.backend)
        )
    return max(applied)
