"""Client-side limits: a QPS token bucket for HTTP calls and a cap on tasks in flight.

Volcengine publishes no QPS or concurrency figures (they are per-account quotas), so the client must pace
itself instead of discovering the limit through 50429/50430. One `Throttle` is shared by every call of the
process (the client holds it), so polls of many tasks and new submits draw from the same budget.

Several processes on one account: a `SharedLimits` (the bot implements it on PostgreSQL, storage/pg_limits.py)
is asked after the local limits, so the account-wide budget and task places are drawn from too. The local
ones still apply: they keep a process from queueing on the shared ones more than it may use anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Protocol

from .clock import Clock, SystemClock

__all__ = ["SharedLimits", "Throttle"]

_EPSILON = 1e-9  # float slack: after sleeping exactly the deficit, the refill may land a hair under 1


class SharedLimits(Protocol):
    """Limits shared with other processes of the same account (api_client implements none of them)."""

    async def acquire_request(self) -> None:
        """Wait for one request token of the shared budget."""
        ...

    def task_slot(self) -> AbstractAsyncContextManager[None]:
        """Hold one of the account's task places until the context ends."""
        ...


class Throttle:
    """Token bucket (rate `qps`, burst max(1, qps), starts full) plus a semaphore of `max_concurrent_tasks`.

    Waiters for a request token queue on a FIFO lock and only the head of the queue sleeps, so callers are
    served in arrival order and the wait is computed once per token (exact with a fake clock). A waiter
    cancelled while queued or sleeping takes no token; a cancelled task-slot waiter takes no slot.
    With `shared`, a token and a task place are also taken from it, after the local ones (the head of the
    queue waits for the shared token, so a process has one waiter on it at a time).
    """

    def __init__(
        self,
        qps: float,
        max_concurrent_tasks: int,
        clock: Clock | None = None,
        *,
        shared: SharedLimits | None = None,
    ) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        if max_concurrent_tasks < 1:
            raise ValueError("max_concurrent_tasks must be at least 1")
        self.qps = float(qps)
        self.burst = max(1.0, self.qps)
        self.max_concurrent_tasks = max_concurrent_tasks
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._tokens = self.burst
        self._updated = self.clock.monotonic()
        self._not_before = self._updated
        self._queue = asyncio.Lock()
        self._tasks = asyncio.Semaphore(max_concurrent_tasks)
        self._tasks_in_flight = 0
        self.shared = shared

    def __repr__(self) -> str:
        return (
            f"Throttle(qps={self.qps}, max_concurrent_tasks={self.max_concurrent_tasks}, "
            f"tasks_in_flight={self._tasks_in_flight})"
        )

    @property
    def tasks_in_flight(self) -> int:
        return self._tasks_in_flight

    def _refill(self) -> float:
        now = self.clock.monotonic()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.qps)
            self._updated = now
        return now

    def tokens(self) -> float:
        """Tokens available right now (for tests and metrics)."""
        self._refill()
        return self._tokens

    def hold_off(self, seconds: float) -> None:
        """Give out no token for `seconds` (e.g. after a 50429 with Retry-After): every caller backs off."""
        if seconds > 0:
            self._not_before = max(self._not_before, self.clock.monotonic() + seconds)

    async def acquire_request(self) -> None:
        """Wait for one request token."""
        async with self._queue:
            while True:
                now = self._refill()
                if now < self._not_before:
                    await self.clock.sleep(self._not_before - now)
                    continue
                if self._tokens >= 1.0 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    if self.shared is not None:
                        await self.shared.acquire_request()
                    return
                await self.clock.sleep((1.0 - self._tokens) / self.qps)

    @asynccontextmanager
    async def request_slot(self) -> AsyncIterator[None]:
        """`async with throttle.request_slot():` around one HTTP call. A token is never given back."""
        await self.acquire_request()
        yield

    @asynccontextmanager
    async def task_slot(self) -> AsyncIterator[None]:
        """Hold one of `max_concurrent_tasks` places for a task's whole life (submit until result)."""
        async with self._tasks, self.shared.task_slot() if self.shared is not None else nullcontext():
            self._tasks_in_flight += 1
            try:
                yield
            finally:
                self._tasks_in_flight -= 1
