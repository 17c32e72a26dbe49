"""Times as users read them: "at 00:00 UTC, in 5 h 12 min", in their language.

Why here and not in the catalogue alone: the reset moment depends on the configured quota time zone and on
"now", and the duration needs unit words in each language; the catalogue holds the words and patterns.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.replies import t


def duration(seconds: float, lang: str) -> str:
    """Whole minutes, hours and minutes above an hour; never "0 min" for a moment that is still ahead."""
    minutes = max(1, int(seconds // 60 + (1 if seconds % 60 else 0)))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return t("time.hours_minutes", lang, hours=hours, minutes=minutes)
    return t("time.minutes", lang, minutes=minutes)


def reset_time(resets_at: float, timezone: str, lang: str, *, now: float | None = None) -> str:
    """When the daily allowance comes back, as a wall-clock time in the quota zone plus "in ..."."""
    now = time.time() if now is None else now
    local = datetime.fromtimestamp(resets_at, ZoneInfo(timezone))
    return t(
        "time.reset_at",
        lang,
        clock=local.strftime("%H:%M"),
        zone=timezone,
        delta=duration(max(0.0, resets_at - now), lang),
    )


def clock_time(at: float, timezone: str) -> str:
    """A short date and time for lists such as /history."""
    return datetime.fromtimestamp(at, ZoneInfo(timezone)).strftime("%m-%d %H:%M")
