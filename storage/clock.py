"""Time for storage: an injected clock and the quota calendar.

Every timestamp the store writes comes from one injected clock so tests can move time across midnight
without sleeping. The calendar turns epoch seconds into the configured time zone's quota day, because the
free allowance resets at *local* midnight, not UTC's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo


@runtime_checkable
class SupportsNow(Protocol):
    """Anything with `now()` returning epoch seconds, e.g. api_client's Clock."""

    def now(self) -> float: ...


ClockLike = Callable[[], float] | SupportsNow


def as_now(clock: ClockLike | None) -> Callable[[], float]:
    """Accept a bare callable or an object with now(), so the bot can pass its shared Clock."""
    if clock is None:
        return time.time
    if isinstance(clock, SupportsNow):
        return clock.now
    return clock


class QuotaCalendar:
    """Quota days in one time zone; a day is its ISO date string ('2026-11-26')."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.zone = ZoneInfo(timezone)

    def day(self, ts: float) -> str:
        return self._date(ts).isoformat()

    def day_start(self, ts: float) -> float:
        """Epoch seconds of the local midnight that began the day containing ts."""
        return self._midnight(self._date(ts))

    def next_reset(self, ts: float) -> float:
        """Epoch seconds of the next local midnight: when today's free allowance comes back."""
        return self._midnight(self._date(ts) + timedelta(days=1))

    def _date(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.zone).date()

    def _midnight(self, day: date) -> float:
        return datetime.combine(day, dtime(0), tzinfo=self.zone).timestamp()
