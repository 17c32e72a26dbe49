"""Time as an injected dependency.

Signing needs the wall clock (X-Date), back-off and throttling need a monotonic clock and a sleep. Everything
that waits takes a `Clock`, so tests swap in `FakeClock` and never sleep for real.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]

#: 2024-01-01T00:00:00Z: the instant the signing vectors were frozen at, a handy default for fakes.
VECTOR_EPOCH = 1_704_067_200.0


@runtime_checkable
class Clock(Protocol):
    """What api_client (and the rest of the project) needs to know about time."""

    def now(self) -> float:
        """Wall clock, epoch seconds (UTC). Used for X-Date and stored timestamps."""
        ...

    def monotonic(self) -> float:
        """Never goes backwards; used for deadlines, back-off and token buckets."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait; a fake advances its time instead."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """Manual time for tests: `sleep()` advances both clocks at once and only yields to the loop.

    Every sleep is recorded in `sleeps`, so a test can assert the back-off a component chose without waiting
    for it. Concurrent sleepers each advance the clock by their own amount (time is not simulated as a
    timeline); components that must be exact under concurrency (the throttle) let only one waiter sleep.
    """

    def __init__(self, start: float = VECTOR_EPOCH, *, monotonic_start: float = 0.0) -> None:
        self._now = float(start)
        self._monotonic = float(monotonic_start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks forward (never backwards: a monotonic clock cannot)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        self._monotonic += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    @property
    def slept(self) -> float:
        """Total fake seconds spent in `sleep()`."""
        return sum(self.sleeps)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, monotonic={self._monotonic!r})"
