"""The quota time zone belongs to the database, not to whoever opens it.

Why: quota days are stored as local dates (`quota_accounts.free_day`, `ledger.day`, `tasks.quota_day`).
A process that opened the file with another zone would compute another "today" and roll every account it
touches over to a new day, handing out (or taking away) a day's free allowance. So the zone is written to
the `config` table the first time the file is opened, every later open must ask for the same zone (or for
none: "whatever the file says"), and moving it is one deliberate, audited step (`change`).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .audit import write_audit
from .config_keys import ZONE_KEY
from .context import StoreContext
from .db import Session
from .errors import QuotaTimezoneMismatch

DEFAULT_ZONE = "UTC"


def check_zone(name: str) -> str:
    """The name if it is an IANA zone this machine knows; ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


async def stored_zone(s: Session) -> str | None:
    value = await s.value("SELECT value FROM config WHERE key = ?", (ZONE_KEY,))
    return None if value is None else str(value)


def agreed_zone(stored: str | None, requested: str | None) -> str:
    """The zone to count days in; refuses a request that contradicts the stored zone."""
    if stored is not None and requested is not None and stored != requested:
        raise QuotaTimezoneMismatch(stored, requested)
    return stored or requested or DEFAULT_ZONE


async def pin_zone(tx: Session, requested: str | None) -> str:
    """At open: the stored zone (written now if the file has none yet); a contradicting request raises."""
    stored = await stored_zone(tx)
    zone = agreed_zone(stored, requested)
    if stored is None:
        await tx.execute("INSERT INTO config (key, value) VALUES (?, ?)", (ZONE_KEY, zone))
    return zone


class ZoneRepo:
    """`store.zone`: read or deliberately move the quota time zone."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def get(self) -> str:
        async with self._ctx.db.read() as r:
            return await stored_zone(r) or DEFAULT_ZONE

    async def change(self, zone: str, *, actor: int, reason: str) -> str:
        """Store `zone` as the quota time zone, audited; returns the previous one (unchanged: no audit row).

        Accounts keep their current `free_day`; each rolls over lazily the next time it is touched, when
        the new zone's date differs from it. A store opened before the change keeps counting in the old zone
        until it is reopened (which then has to ask for the new one).
        """
        check_zone(zone)
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            previous = await stored_zone(tx) or DEFAULT_ZONE
            if previous == zone:
                return previous
            await tx.execute(
                "INSERT INTO config (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (ZONE_KEY, zone),
            )
            details = f"{previous} -> {zone}" + (f": {reason}" if reason else "")
            await write_audit(tx, actor=actor, action="set_timezone", target=None, details=details, at=now)
        return previous
