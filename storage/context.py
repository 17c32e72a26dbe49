"""What every repository shares: the database, the clock and the quota rules chosen at open."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .clock import QuotaCalendar
from .db import Db


@dataclass(frozen=True)
class StoreContext:
    db: Db
    now: Callable[[], float]
    calendar: QuotaCalendar
    default_daily_quota: int
