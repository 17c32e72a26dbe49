"""PTB's AIORateLimiter, counting every 429 the Bot API answers (including the ones it then retries).

Why wrap the request callback instead of catching RetryAfter elsewhere: the limiter retries a 429 itself
(TELEGRAM_429_RETRIES), so the rest of the bot only sees the ones that outlasted the retries; the callback
sees each answer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

from bot.ops import metrics

JSONDict = dict[str, Any]
Result = bool | JSONDict | list[JSONDict]


class CountingRateLimiter(AIORateLimiter):
    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        async def counted(*call_args: Any, **call_kwargs: Any) -> Result:
            try:
                return await callback(*call_args, **call_kwargs)
            except RetryAfter:
                metrics.telegram_rate_limited(endpoint)
                raise

        return await super().process_request(counted, args, kwargs, endpoint, data, rate_limit_args)
