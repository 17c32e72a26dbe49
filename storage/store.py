"""The Store: opens the file, applies migrations and hangs the repositories off one object.

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
from .db import Database, Synchronous
from .errors import SchemaMismatch
from .gauges import GaugesRepo
from .migrate import applied_versions, latest_version, migrate, pending, unknown_versions
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
    """`store = await Store.open(path)`; every method is async; close() (or `async with`) at shutdown."""

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
        db = await Database.open(
            path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms, read_only=read_only
        )
        try:
            if read_only:
                version = await _check_schema(db)
                async with db.read() as r:
                    zone = agreed_zone(await stored_zone(r), quota_timezone)
            else:
                version = await migrate(db.writer, now=now())
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

    async def close(self) -> None:
        await self._ctx.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def _check_schema(db: Database) -> int:
    """A read-only open must find exactly this code's migrations applied."""
    applied = await applied_versions(db.writer)
    behind, unknown = pending(applied), unknown_versions(applied)
    if behind or unknown:
        raise SchemaMismatch(
            behind=[m.version for m in behind], unknown=sorted(unknown), expected=latest_version()
        )
    return max(applied)
