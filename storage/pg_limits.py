"""The upstream account's limits shared by every process on one PostgreSQL schema (migration 0008).

`PgUpstreamLimits` is the bot's `api_client.throttle.SharedLimits` (structurally: storage imports no
api_client): each process's `Throttle` takes its local token and task place first, then one from here.

- QPS: one token bucket row, `upstream_budget('qps')` (storage/pg_bucket.py: refilled and drawn from in one
  UPDATE). A caller that finds less than one token sleeps for the deficit and tries again.
- Task places: rows `upstream_slots(0 .. MAX_CONCURRENT_TASKS-1)`, each claimed by one process with a
  conditional UPDATE on a row picked `FOR UPDATE SKIP LOCKED` (two claims never wait for each other) and
  leased for `SLOT_LEASE` seconds, renewed every `RENEW_EVERY` while held, freed when the task ends. A
  process that dies (even SIGKILL) holds its places until their lease runs out; one restarting with the
  same WORKER_ID (there is one live process per id: pg_worker_lock.py) frees them at once.

Times are the processes' wall clocks, as for task leases. Every process should have the same UPSTREAM_QPS
and MAX_CONCURRENT_TASKS: the bucket refills at the rate of whoever draws, a process claims only places
below its own maximum. If the database cannot be reached the limits fail open (logged): the local limits
still hold, and upstream throttling answers (50429) are backed off as before. A task place being waited
for is polled (from 50 ms, doubling to 1 s): the database has no wake-up a waiter could block on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import asyncpg

from storage.pg_bucket import ERRORS, WHOLE, Sleep, seed, take, wait_seconds

log = logging.getLogger(__name__)

SLOT_LEASE = 20.0
RENEW_EVERY = 5.0
_POLL_FIRST, _POLL_MAX = 0.05, 1.0
#: The token bucket's row in upstream_budget (storage/pg_bucket.py).
BUDGET: Final = "qps"

_CLAIM = """
UPDATE upstream_slots SET holder = $1, until = $3
WHERE slot = (
    SELECT slot FROM upstream_slots
    WHERE slot < $4 AND (holder IS NULL OR until < $2)
    ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING slot
"""
_RENEW = "UPDATE upstream_slots SET until = $2 WHERE holder = $1 AND slot = ANY($3::int[])"
_RELEASE = "UPDATE upstream_slots SET holder = NULL, until = 0 WHERE holder = $1 AND slot = ANY($2::int[])"
_RELEASE_ALL = "UPDATE upstream_slots SET holder = NULL, until = 0 WHERE holder = $1"
_SEED_SLOTS = "INSERT INTO upstream_slots (slot) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING"


class PgUpstreamLimits:
    """`await PgUpstreamLimits.open(url, qps=..., max_concurrent_tasks=..., holder=WORKER_ID)`; `aclose()`.

    `now` (epoch seconds) and `sleep` (the waits for a token or a place) are injectable for tests; a fake
    `sleep` should advance `now`. Leases are renewed on real time.
    """

    def __init__(
        self, pool: asyncpg.Pool[Any], *, qps: float, max_concurrent_tasks: int, holder: str,
        now: Callable[[], float], sleep: Sleep,
    ) -> None:  # fmt: skip
        self._pool = pool
        self.qps = float(qps)
        self.burst = max(1.0, self.qps)
        self.max_concurrent_tasks = max_concurrent_tasks
        self.holder = holder
        self._now = now
        self._sleep = sleep
        self._held: set[int] = set()
        self._turn = asyncio.Lock()  # one draw at a time from this process (see acquire_request)
        self._renewer: asyncio.Task[None] | None = None
        self._failing = False

    @classmethod
    async def open(
        cls, url: str, *, qps: float, max_concurrent_tasks: int, holder: str,
        now: Callable[[], float] = time.time, sleep: Sleep = asyncio.sleep,
    ) -> PgUpstreamLimits:  # fmt: skip
        """Connect (a pool of 2 of its own), make sure the rows exist, free what a past `holder` left."""
        if qps <= 0 or max_concurrent_tasks < 1:
            raise ValueError("qps must be positive and max_concurrent_tasks at least 1")
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(_SEED_SLOTS, max_concurrent_tasks)
                await seed(conn, BUDGET, max(1.0, float(qps)), now())
                await conn.execute(_RELEASE_ALL, holder)
        except BaseException:
            await pool.close()
            raise
        limits = cls(pool, qps=qps, max_concurrent_tasks=max_concurrent_tasks, holder=holder, now=now,
                     sleep=sleep)  # fmt: skip
        limits._renewer = asyncio.get_running_loop().create_task(limits._renew_forever(), name="slot-leases")
        return limits

    def __repr__(self) -> str:
        return f"PgUpstreamLimits(qps={self.qps}, max_concurrent_tasks={self.max_concurrent_tasks}, " \
            f"holder={self.holder!r}, held={sorted(self._held)})"  # fmt: skip

    @property
    def held(self) -> frozenset[int]:
        """The task places this process holds now."""
        return frozenset(self._held)

    async def acquire_request(self) -> None:
        """Wait for one token of the shared bucket (rate `qps`, burst max(1, qps)).

        A process's callers take turns: only the first in line asks the database, and sleeps for the
        deficit, while the others wait here; each waiter asking on its own was one statement per waiter
        per refill, all but one of them answered "not yet" (the shared send rate queues the same way)."""
        async with self._turn:
            while True:
                try:
                    tokens = await take(self._pool, BUDGET, now=self._now(), rate=self.qps, burst=self.burst)
                except ERRORS as exc:
                    self._fail_open("a request token", exc)
                    return
                self._recovered()
                if tokens is None:  # the row is gone (a wiped schema): nothing to share
                    return
                if tokens >= WHOLE:
                    return
                await self._sleep(wait_seconds(tokens, self.qps))

    @asynccontextmanager
    async def task_slot(self) -> AsyncIterator[None]:
        """Hold one of the account's `max_concurrent_tasks` places (waits for a free one)."""
        slot = await self._claim()
        try:
            yield
        finally:
            if slot is not None:
                self._held.discard(slot)
                # Shielded: a cancelled task still frees its place (else it stays taken for a lease).
                with contextlib.suppress(*ERRORS):
                    await asyncio.shield(self._pool.execute(_RELEASE, self.holder, [slot]))

    async def _claim(self) -> int | None:
        pause = _POLL_FIRST
        while True:
            now = self._now()
            try:
                slot = await self._pool.fetchval(_CLAIM, self.holder, now, now + SLOT_LEASE,
                                                 self.max_concurrent_tasks)  # fmt: skip
            except ERRORS as exc:
                self._fail_open("a task place", exc)
                return None
            self._recovered()
            if slot is not None:
                self._held.add(int(slot))
                return int(slot)
            await self._sleep(pause)
            pause = min(_POLL_MAX, pause * 2)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)  # real time: a lease outlives the process's own pauses
            if self._held:
                try:
                    until = self._now() + SLOT_LEASE
                    await self._pool.execute(_RENEW, self.holder, until, sorted(self._held))
                except ERRORS as exc:
                    self._fail_open("renewing task places", exc)

    def _fail_open(self, what: str, exc: BaseException) -> None:
        if not self._failing:
            log.warning("shared upstream limits unavailable (%s: %s); using this process's limits only",
                        what, type(exc).__name__)  # fmt: skip
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.warning("shared upstream limits available again")
        self._failing = False

    async def aclose(self) -> None:
        """Stop renewing, free every place still held, close the pool."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        try:
            with contextlib.suppress(*ERRORS):
                await self._pool.execute(_RELEASE_ALL, self.holder)
        finally:
            self._held.clear()
            await self._pool.close()
