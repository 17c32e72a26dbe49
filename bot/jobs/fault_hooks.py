"""Test-only fault hooks, read from the environment; without their variables they change nothing.

The crash soak (tests/e2e/test_crash_soak.py) runs real bot processes and needs two things production
never sets:
- PORTRAIT_BOT_CLOCK_OFFSET (seconds, may be fractional): added to the *wall* clock of the store and the
  job runner of this process, as on a host whose clock was stepped forward. The monotonic clock and the
  upstream client's signing clock stay true (the fencing under test relies on the first; the second
  would only make the service refuse the signatures).
- PORTRAIT_BOT_TIME_SCALE (factor, default 1): multiplies the runner's lease and scan intervals (read
  once, at import), so a lease runs out and is taken over in seconds; the work renews a short lease
  after a third of it (ShieldedTasks.hold).
"""

from __future__ import annotations

import os
import time
from typing import Final

from api_client.clock import SystemClock

CLOCK_OFFSET_ENV: Final = "PORTRAIT_BOT_CLOCK_OFFSET"
TIME_SCALE_ENV: Final = "PORTRAIT_BOT_TIME_SCALE"


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None


def scaled(seconds: float) -> float:
    """`seconds` times PORTRAIT_BOT_TIME_SCALE (unset: unchanged)."""
    scale = _number(TIME_SCALE_ENV, 1.0)
    if scale <= 0:
        raise ValueError(f"{TIME_SCALE_ENV} must be positive, got {scale!r}")
    return seconds * scale


class SteppedClock(SystemClock):
    """The system clock with its wall time moved by `offset` seconds; monotonic time and sleeps are true."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def __repr__(self) -> str:
        return f"SteppedClock(offset={self.offset!r})"


def stepped_clock() -> SteppedClock | None:
    """The clock for the store and the runner when PORTRAIT_BOT_CLOCK_OFFSET is set, else None."""
    offset = _number(CLOCK_OFFSET_ENV, 0.0)
    return SteppedClock(offset) if offset else None
