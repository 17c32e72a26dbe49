"""Token buckets in `upstream_budget` rows (migration 0008) that every process on one schema shares.

A row per bucket, by name: `qps`, the upstream account's request rate (storage/pg_limits.py), and
`telegram`, the bot token's overall Bot API send rate (`PgRateLimit` here, used by bot/ops/ratelimit.py).
A draw refills the row for the time since the last one and takes a token if there is one, in one UPDATE:
its row lock orders the processes, and no process keeps any state of its own. Rows are seeded full with
INSERT ... ON CONFLICT DO NOTHING, so the first process to come creates them and the others find them.
Times are the processes' wall clocks (epoch seconds), as for task leases; every process should use the same
rate, since the bucket refills at the rate of whoever draws.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import asyncpg

log = logging.getLogger(__name__)

ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
#: A bucket holding this much has a whole token (float rounding of the refill must not cost a turn).
WHOLE: Final = 1.0 - 1e-9
#: The shortest wait for a token: far above an epoch clock's resolution, far below a token at any rate.
MIN_WAIT: Final = 0.001

_TAKE = """
WITH cur AS (
    SELECT least($2::float8, tokens + $3::float8 * greatest(0::float8, $1::float8 - at)) AS t
    FROM upstream_budget WHERE name = $4 FOR UPDATE
)
UPDATE upstream_budget b
SET tokens = CASE WHEN cur.t >= $5::float8 THEN greatest(0::float8, cur.t - 1) ELSE cur.t END,
    at = greatest(b.at, $1::float8)
FROM cur WHERE b.name = $4
RETURNING cur.t
"""
_SEED = "INSERT INTO upstream_budget (name, tokens, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"

Sleep = Callable[[float], Awaitable[None]]


class Executor(Protocol):
    """A pool or a connection: what the two statements run on."""

    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


async def seed(db: Executor, name: str, burst: float, now: float) -> None:
    """Create the bucket full, unless some process already did."""
    await db.execute(_SEED, name, burst, now)


async def take(db: Executor, name: str, *, now: float, rate: float, burst: float) -> float | None:
    """One draw: the tokens the bucket had (at least WHOLE: one of them is now taken; fewer: none was, and
    the caller may wait `wait_seconds` for the rest). None: no such row (not seeded, or a wiped schema)."""
    tokens = await db.fetchval(_TAKE, now, burst, rate, name, WHOLE)
    return None if tokens is None else float(tokens)


def wait_seconds(tokens: float, rate: float) -> float:
    """How long until a bucket holding `tokens` has a whole one, at least MIN_WAIT.

    Why the floor: the refill is computed from epoch seconds (about 1.8e9, where a float8 step is 2.4e-7
    s), so a bucket may hold 0.9999995 tokens for want of a rounding; the exact wait for the rest is
    shorter than a clock step, and a caller would draw again at once, and again, as fast as the database
    answers (forever, on a clock that only moves when slept on).
    """
    return max(MIN_WAIT, (1.0 - tokens) / rate)


class PgRateLimit:
    """`await PgRateLimit.open(url, name=..., rate=...)`, then `await acquire()` before each call it paces.

    Why it fails open: the rate it shares protects against a 429 from the other side, which the caller
    handles anyway, while waiting on an unreachable database would stop the bot's messages altogether. So
    when a draw fails (or takes longer than `TIMEOUT`) `acquire` returns at once and so does every call in
    the next `RETRY_AFTER` seconds (the caller's own, per-process limit still holds); this is logged when it
    starts, at most once a `LOG_EVERY` while it lasts (with the number of calls let through), and when the
    database answers again.

    One draw at a time per process: the callers waiting here queue on a lock, in order, rather than each
    asking the database. `now` (epoch seconds) and `sleep` are injectable for tests; a fake `sleep`
    should advance `now`.
    """

    TIMEOUT: Final = 5.0
    RETRY_AFTER: Final = 30.0
    LOG_EVERY: Final = 60.0

    def __init__(
        self, pool: asyncpg.Pool[Any], *, name: str, rate: float, burst: float | None = None,
        now: Callable[[], float] = time.time, sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._pool = pool
        self.name = name
        self.rate = float(rate)
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self._now, self._sleep, self._monotonic = now, sleep, monotonic
        self._turn = asyncio.Lock()
        self._seeded = False
        self._retry_at: float | None = None  # failing open until then (monotonic)
        self._logged_at = 0.0
        self._let_through = 0

    @classmethod
    async def open(
        cls, url: str, *, name: str, rate: float, burst: float | None = None,
        now: Callable[[], float] = time.time, sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> PgRateLimit:  # fmt: skip
        """A pool of its own that connects on the first draw: opening never waits for the database."""
        pool = await asyncpg.create_pool(url, min_size=0, max_size=2, timeout=cls.TIMEOUT)
        return cls(pool, name=name, rate=rate, burst=burst, now=now, sleep=sleep, monotonic=monotonic)

    @property
    def failing_open(self) -> bool:
        return self._retry_at is not None

    async def acquire(self) -> bool:
        """Wait for one token of the shared bucket: True once taken; False when it failed open."""
        if self._retry_at is not None and self._monotonic() < self._retry_at:
            return self._let_one_through()
        async with self._turn:
            while True:
                try:
                    async with asyncio.timeout(self.TIMEOUT):
                        tokens = await self._draw()
                except ERRORS as exc:
                    self._failed(exc)
                    return self._let_one_through()
                self._recovered()
                if tokens is None:  # the row went away (a wiped schema): seed it again on the next draw
                    self._seeded = False
                    return self._let_one_through()
                if tokens >= WHOLE:
                    return True
                await self._sleep(wait_seconds(tokens, self.rate))

    async def _draw(self) -> float | None:
        if not self._seeded:
            await seed(self._pool, self.name, self.burst, self._now())
            self._seeded = True
        return await take(self._pool, self.name, now=self._now(), rate=self.rate, burst=self.burst)

    def _let_one_through(self) -> bool:
        self._let_through += 1
        if self._retry_at is not None and self._monotonic() - self._logged_at >= self.LOG_EVERY:
            self._logged_at = self._monotonic()
            log.warning("shared rate %r still unavailable; %d call(s) let through on this process's limit",
                        self.name, self._let_through)  # fmt: skip
        return False

    def _failed(self, exc: BaseException) -> None:
        now = self._monotonic()
        if self._retry_at is None:
            self._logged_at, self._let_through = now, 0
            log.warning("shared rate %r unavailable (%s); using this process's limit only, trying again "
                        "every %.0f s", self.name, type(exc).__name__, self.RETRY_AFTER)  # fmt: skip
        self._retry_at = now + self.RETRY_AFTER

    def _recovered(self) -> None:
        if self._retry_at is not None:
            log.warning("shared rate %r available again (%d call(s) went by on this process's limit)",
                        self.name, self._let_through)  # fmt: skip
        self._retry_at = None

    async def aclose(self) -> None:
        await self._pool.close()
