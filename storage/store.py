"""The Store: opens the file, applies migrations and hangs the repositories off one object."""

from __future__ import annotations

import os
from types import TracebackType

from .admin import AdminRepo
from .chats import ChatsRepo
from .clock import ClockLike, QuotaCalendar, as_now
from .context import StoreContext
from .db import Database, Synchronous
from .migrate import migrate
from .quotas import QuotasRepo
from .tasks import TasksRepo
from .timings import TimingsRepo
from .users import UsersRepo


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

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: ClockLike | None = None,
        daily_free_quota: int = 3,
        quota_timezone: str = "UTC",
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
    ) -> Store:
        """Open (creating the file and its directory if needed) and migrate to the newest schema.

        `daily_free_quota` is the default allowance until an admin sets one with quotas.set_daily(None, ...);
        `quota_timezone` is the IANA zone whose midnight resets it. See db.py for `synchronous`.
        """
        if daily_free_quota < 0:
            raise ValueError("daily_free_quota cannot be negative")
        calendar = QuotaCalendar(quota_timezone)
        now = as_now(clock)
        db = await Database.open(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        try:
            version = await migrate(db.writer, now=now())
        except BaseException:
            await db.close()
            raise
        return cls(StoreContext(db, now, calendar, daily_free_quota), version)

    async def close(self) -> None:
        await self._ctx.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
