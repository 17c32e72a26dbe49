"""Telegram's overall send rate shared through PostgreSQL (bot/ops/ratelimit.py over storage/pg_bucket.py).

Several "processes" here are several limiters on one schema, each with its own connections, as separate
processes would have them. Time is a fake wall clock that moves only when a limiter sleeps, so the tests
never wait for the rate.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest

from bot.app import build_application
from bot.config import Secret, Settings
from bot.config_values import DatabaseUrl
from bot.ops.metrics import REGISTRY
from bot.ops.ratelimit import TELEGRAM_BUDGET, CountingRateLimiter
from storage.pg_bucket import PgRateLimit, wait_seconds

SHARED = "portrait_bot_telegram_shared_sends_total"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1: refused at once


@pytest.fixture
def url(migrated_pg_url: str) -> str:
    return migrated_pg_url


class FakeTime:
    """Wall and monotonic time that move only when someone sleeps; sleepers that overlap share the wait
    (two processes waiting 0.1 s at once are 0.1 s later, not 0.2 s)."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        until = self.t + max(0.0, seconds)
        await asyncio.sleep(0)
        self.t = max(self.t, until)


def _settings(**values: Any) -> Settings:
    return Settings(telegram_bot_token=Secret("123:abc"), volc_access_key=Secret("a"),
                    volc_secret_key=Secret("s"), **values)  # fmt: skip


async def _send(limiter: CountingRateLimiter, chat_id: int | None, sent: list[float], at: FakeTime) -> None:
    async def callback() -> bool:
        sent.append(at.now())
        return True

    data = {"text": "hi"} if chat_id is None else {"chat_id": chat_id, "text": "hi"}
    await limiter.process_request(callback, (), {}, "sendMessage", data, None)


async def _tokens(url: str) -> float | None:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval("SELECT tokens FROM upstream_budget WHERE name = $1", TELEGRAM_BUDGET)
    finally:
        await conn.close()
    return None if value is None else float(value)


async def test_two_processes_together_never_send_faster_than_the_shared_rate(url: str) -> None:
    time = FakeTime()
    rate, per_process = 10.0, 20

    async def open_shared() -> PgRateLimit:
        return await PgRateLimit.open(url, name=TELEGRAM_BUDGET, rate=rate, now=time.now, sleep=time.sleep)

    # PTB's own overall limit set far above the shared one: only the shared bucket paces here.
    limiters = [
        CountingRateLimiter(max_retries=0, overall_max_rate=1000, shared=open_shared) for _ in range(2)
    ]
    sent: list[float] = []
    for limiter in limiters:
        await limiter.initialize()
    try:
        await asyncio.gather(*(_send(limiter, 42 + n, sent, time) for limiter in limiters
                               for n in range(per_process)))  # fmt: skip
    finally:
        for limiter in limiters:
            await limiter.shutdown()
    assert len(sent) == 2 * per_process
    # A token bucket's promise: in any window of w seconds at most burst + rate * w sends (burst = rate).
    for start in sent:
        for w in (0.25, 1.0, 2.0):
            assert sum(start <= t < start + w for t in sent) <= rate + rate * w + 1e-6
    # One bucket for both: 40 sends at 10/s after a burst of 10 take 3 s (two buckets would take 1 s).
    assert max(sent) - min(sent) >= (2 * per_process - rate) / rate - 1e-6


def test_a_wait_for_a_rounding_sliver_of_a_token_still_moves_an_epoch_clock() -> None:
    """Regression: at epoch seconds a refill may leave 0.9999995 tokens (float8 steps are 2.4e-7 s there);
    the wait for the rest was 5e-8 s, which does not move such a clock, so the limiter drew again at once,
    forever (seen as a hang of the two-process test, a busy loop of queries on a real clock)."""
    now = 1_800_000_000.0
    assert now + wait_seconds(0.9999995, rate=10.0) > now
    assert wait_seconds(0.0, rate=10.0) == pytest.approx(0.1)  # a whole token's wait is unchanged


async def test_the_application_on_postgresql_draws_its_sends_from_the_shared_rate(url: str) -> None:
    limiter = build_application(
        _settings(database_url=DatabaseUrl(url), telegram_send_rate=5.0)
    ).bot.rate_limiter
    assert isinstance(limiter, CountingRateLimiter)
    time, sent = FakeTime(), []
    drawn_before = REGISTRY.get_sample_value(SHARED, {"outcome": "drawn"}) or 0.0
    await limiter.initialize()
    try:
        assert isinstance(limiter.shared, PgRateLimit) and limiter.shared.rate == 5.0
        await _send(limiter, 42, sent, time)
        await _send(limiter, -100123, sent, time)  # a group: also PTB's 20 a minute, and the overall rate
        await _send(limiter, None, sent, time)  # no chat (getMe, getUpdates...): not counted, as in PTB
    finally:
        await limiter.shutdown()
    assert len(sent) == 3
    tokens = await _tokens(url)
    assert tokens is not None and 3.0 <= tokens < 3.5  # a burst of 5, two drawn (and a moment's refill)
    assert REGISTRY.get_sample_value(SHARED, {"outcome": "drawn"}) == drawn_before + 2


async def test_on_sqlite_each_process_keeps_its_own_rate(tmp_path: Any) -> None:
    limiter = build_application(_settings(db_path=tmp_path / "bot.db")).bot.rate_limiter
    assert isinstance(limiter, CountingRateLimiter)
    await limiter.initialize()
    try:
        assert limiter.shared is None
        sent: list[float] = []
        await _send(limiter, 42, sent, FakeTime())
        assert len(sent) == 1
    finally:
        await limiter.shutdown()


async def test_an_unreachable_database_fails_open_and_is_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = FakeTime()
    monotonic = [0.0]

    async def open_shared() -> PgRateLimit:
        return await PgRateLimit.open(UNREACHABLE, name=TELEGRAM_BUDGET, rate=30.0, now=time.now,
                                      sleep=time.sleep, monotonic=lambda: monotonic[0])  # fmt: skip

    limiter = CountingRateLimiter(max_retries=0, shared=open_shared)
    failed_before = REGISTRY.get_sample_value(SHARED, {"outcome": "failed_open"}) or 0.0
    sent: list[float] = []
    caplog.set_level(logging.WARNING, logger="storage.pg_bucket")
    await limiter.initialize()  # opening does not need the database
    try:
        for _ in range(3):
            await _send(limiter, 42, sent, time)
        assert len(sent) == 3  # every message went out, on this process's own limit
        assert limiter.shared is not None and getattr(limiter.shared, "failing_open", False)
        assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()] == [
            "shared rate 'telegram' unavailable (ConnectionRefusedError); using this process's limit only, "
            "trying again every 30 s"
        ]
        caplog.clear()
        monotonic[0] += 61.0  # a minute on: tried again (still refused), and said so once more
        await _send(limiter, 42, sent, time)
        await _send(limiter, 42, sent, time)
        assert len(sent) == 5
        assert [r.getMessage() for r in caplog.records] == [
            "shared rate 'telegram' still unavailable; 4 call(s) let through on this process's limit"
        ]
    finally:
        await limiter.shutdown()
    assert REGISTRY.get_sample_value(SHARED, {"outcome": "failed_open"}) == failed_before + 5
