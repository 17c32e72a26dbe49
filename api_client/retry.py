"""Which failures are worth another attempt, how long to wait first, and how many retries the process affords.

Three roles, kept apart (botocore's standard retry mode, simplified to one table and two functions):
- `classify(error, resend_safe=...)` decides *whether* (NEVER / TRANSIENT / THROTTLED);
- `RetryPolicy.delay(...)` decides *how long* (full jitter, bounded server hint);
- `RetryBudget` caps *how many* across the process, so an outage does not multiply the load.
The one retry loop (`PortraitClient._call`) glues them; nothing else retries.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from enum import StrEnum

from .errors import (
    PortraitAPIError,
    RateLimited,
    ServerError,
    SubmitOutcomeUnknown,
    TransportError,
)

__all__ = [
    "RETRY_AFTER_LIMIT",
    "RetryBudget",
    "RetryKind",
    "RetryPolicy",
    "classify",
    "parse_retry_after",
    "retry_after_of",
]

#: A server's Retry-After above this (seconds) is ignored: we fall back to our own back-off.
RETRY_AFTER_LIMIT = 60.0


class RetryKind(StrEnum):
    NEVER = "never"
    TRANSIENT = "transient"  # the service or the network failed; the same request may work
    THROTTLED = "throttled"  # our quota is exhausted; wait longer


def classify(error: BaseException, *, resend_safe: bool) -> RetryKind:
    """The retry kind of a failed attempt.

    `resend_safe` is False for a submit: a second submit may bill twice, so it is resent only when the
    service surely refused it (throttled) or surely never saw it (connect-phase error). A 5xx or a read
    timeout on a submit is NEVER here; the client reports it as `SubmitOutcomeUnknown`.
    """
    if isinstance(error, RateLimited):
        return RetryKind.THROTTLED
    if isinstance(error, SubmitOutcomeUnknown):
        return RetryKind.NEVER
    if isinstance(error, TransportError):
        return RetryKind.TRANSIENT if (error.connect_phase or resend_safe) else RetryKind.NEVER
    if isinstance(error, ServerError):
        return RetryKind.TRANSIENT if resend_safe else RetryKind.NEVER
    return RetryKind.NEVER


class RetryPolicy:
    """Attempt limit and back-off: full jitter, a random fraction of min(cap, base * 2**(attempt-1)).

    Throttled attempts start from `throttled_base` (longer), since the quota, not a glitch, is the cause.
    `max_attempts` counts the first try: 4 means up to 3 retries.
    """

    def __init__(
        self,
        max_attempts: int = 4,
        base: float = 0.5,
        throttled_base: float = 1.0,
        cap: float = 20.0,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (the first try)")
        if base < 0 or throttled_base < 0 or cap < 0:
            raise ValueError("base, throttled_base and cap must not be negative")
        self.max_attempts = max_attempts
        self.base = base
        self.throttled_base = throttled_base
        self.cap = cap
        self.rng = rng if rng is not None else random.Random()

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, base={self.base}, "
            f"throttled_base={self.throttled_base}, cap={self.cap})"
        )

    def should_retry(self, attempt: int, kind: RetryKind) -> bool:
        """Whether attempt number `attempt` (1-based, the one that just failed) may be followed by another."""
        return kind is not RetryKind.NEVER and attempt < self.max_attempts

    def ceiling(self, attempt: int, kind: RetryKind) -> float:
        """The upper bound of the jittered delay after attempt `attempt`."""
        base = self.throttled_base if kind is RetryKind.THROTTLED else self.base
        exponent = min(max(attempt, 1) - 1, 62)  # avoid float overflow for absurd attempt numbers
        return min(self.cap, base * 2.0**exponent)

    def delay(self, attempt: int, kind: RetryKind, retry_after: float | None = None) -> float:
        """Seconds to wait after attempt `attempt` failed with `kind`.

        A server hint in [0, RETRY_AFTER_LIMIT] is obeyed as given (it may exceed `cap`: the server knows its
        quota window); a larger or negative one is ignored in favour of our own jittered back-off.
        """
        if kind is RetryKind.NEVER:
            raise ValueError("a NEVER failure has no retry delay")
        if retry_after is not None and 0.0 <= retry_after <= RETRY_AFTER_LIMIT:
            return float(retry_after)
        return self.rng.uniform(0.0, self.ceiling(attempt, kind))


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None if absent or bad.

    `headers` should be case-insensitive (httpx.Headers); `now` is the wall clock, for the date form.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class RetryBudget:
    """A process-wide retry token bucket (botocore's RetryQuota): retries cost, successes refund.

    While the service is healthy the bucket stays full; during an outage every retry drains it, and once
    empty the clients fail fast instead of tripling the load. A success refunds what its own retries cost,
    or adds `success_refund` when it needed none.
    """

    def __init__(
        self,
        capacity: int = 500,
        *,
        retry_cost: int = 5,
        transport_cost: int = 10,
        success_refund: int = 1,
    ) -> None:
        if capacity < 0 or retry_cost < 0 or transport_cost < 0 or success_refund < 0:
            raise ValueError("budget amounts must not be negative")
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.transport_cost = transport_cost
        self.success_refund = success_refund
        self._available = capacity
        self._lock = threading.Lock()  # sync and never held across an await: safe from any thread or loop

    @property
    def available(self) -> int:
        return self._available

    def __repr__(self) -> str:
        return f"RetryBudget(available={self._available}/{self.capacity})"

    def cost_of(self, error: BaseException) -> int:
        """Transport failures (timeouts, resets) cost more: they tie up connections and time."""
        return self.transport_cost if isinstance(error, TransportError) else self.retry_cost

    def spend(self, error: BaseException) -> int | None:
        """Take the cost of retrying after `error`; None (and nothing taken) when the budget cannot pay."""
        cost = self.cost_of(error)
        with self._lock:
            if cost > self._available:
                return None
            self._available -= cost
            return cost

    def succeed(self, spent: int = 0) -> None:
        """Record a success: refund `spent` (what this call's retries cost) or the small no-retry bonus."""
        amount = spent if spent > 0 else self.success_refund
        with self._lock:
            self._available = min(self.capacity, self._available + amount)


def retry_after_of(error: PortraitAPIError) -> float | None:
    """The server's delay hint carried by a throttled or server error, if any."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None
