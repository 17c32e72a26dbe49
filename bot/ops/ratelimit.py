"""PTB's AIORateLimiter, counting every 429 the Bot API answers; on PostgreSQL, one send rate for all.

Why wrap the request callback instead of catching RetryAfter elsewhere: the limiter retries a 429 itself
(TELEGRAM_429_RETRIES), so the rest of the bot only sees the ones that outlasted the retries; the callback
sees each answer.

Telegram's overall limit (about 30 messages a second) is per bot token, not per process. On PostgreSQL the
processes share it: before PTB's own limits, each request AIORateLimiter counts against the overall rate
(one with a `chat_id`: sends, edits, chat actions; not a paid broadcast) draws a token from one bucket in
the database (storage/pg_bucket.py, row `telegram` of `upstream_budget`), `TELEGRAM_SEND_RATE` a second.
PTB's limits stay as they were: the overall rate per process (the same TELEGRAM_SEND_RATE, what one process
alone may use), 20 a minute per group, and the retries after a 429. If the database cannot be reached the
draw fails open (logged, storage/pg_bucket.py) and only the process's own limit holds. On SQLite (one
process per token when polling) there is nothing to share and nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

from bot.config import Settings
from bot.ops import metrics
from storage.pg_bucket import PgRateLimit

JSONDict = dict[str, Any]
Result = bool | JSONDict | list[JSONDict]

#: Telegram's 429 answers are retried this many times after their retry_after.
TELEGRAM_429_RETRIES: Final = 3
#: The shared bucket's row in upstream_budget.
TELEGRAM_BUDGET: Final = "telegram"


class SharedRate(Protocol):
    """A rate several processes draw from (PgRateLimit): `acquire` is False when it let a call through
    without a token (the database away)."""

    async def acquire(self) -> bool: ...

    async def aclose(self) -> None: ...


SharedRateOpener = Callable[[], Awaitable[SharedRate]]


def counts_against_overall_rate(data: JSONDict) -> bool:
    """What AIORateLimiter counts against its overall rate: requests to a chat, except paid broadcasts."""
    return data.get("chat_id") is not None and not data.get("allow_paid_broadcast", False)


class CountingRateLimiter(AIORateLimiter):
    """`shared` opens the shared send rate when the bot initializes (None: per process only). A rate of 0
    is no limit (PTB's meaning; the benchmarks lift Telegram's limits so)."""

    def __init__(
        self, *, max_retries: int, overall_max_rate: float = 30.0, group_max_rate: float = 20.0,
        shared: SharedRateOpener | None = None,
    ) -> None:  # fmt: skip
        super().__init__(
            overall_max_rate=overall_max_rate, group_max_rate=group_max_rate, max_retries=max_retries
        )
        self._open_shared = shared
        self.shared: SharedRate | None = None

    async def initialize(self) -> None:
        await super().initialize()
        if self._open_shared is not None and self.shared is None:
            self.shared = await self._open_shared()

    async def shutdown(self) -> None:
        shared, self.shared = self.shared, None
        try:
            if shared is not None:
                await shared.aclose()
        finally:
            await super().shutdown()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        if self.shared is not None and counts_against_overall_rate(data):
            started = time.monotonic()
            drawn = await self.shared.acquire()
            metrics.telegram_shared_send(drawn, time.monotonic() - started)

        async def counted(*call_args: Any, **call_kwargs: Any) -> Result:
            try:
                return await callback(*call_args, **call_kwargs)
            except RetryAfter:
                metrics.telegram_rate_limited(endpoint)
                raise

        return await super().process_request(counted, args, kwargs, endpoint, data, rate_limit_args)


def telegram_rate_limiter(settings: Settings) -> CountingRateLimiter:
    """The Application's limiter: TELEGRAM_SEND_RATE per process, and for all processes on PostgreSQL."""
    rate = settings.telegram_send_rate
    if settings.database_url is None:
        return CountingRateLimiter(max_retries=TELEGRAM_429_RETRIES, overall_max_rate=rate)
    url = settings.database_url.value

    async def open_shared() -> SharedRate:
        return await PgRateLimit.open(url, name=TELEGRAM_BUDGET, rate=rate)

    return CountingRateLimiter(max_retries=TELEGRAM_429_RETRIES, overall_max_rate=rate, shared=open_shared)
