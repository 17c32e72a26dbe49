"""/healthz, /readyz and /metrics of a polling process (METRICS_PORT), and what makes them say no."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Secret, Settings
from bot.ops.health import LAG_LIMIT_SECONDS
from bot.ops.metrics import REGISTRY
from bot.ops.process import Role, http_listen
from fake_telegram import serve
from tests.e2e.conftest import Harness
from tests.e2e.webhook_support import WebhookHarness

ProcessFactory = Callable[..., Awaitable[WebhookHarness]]


@pytest.fixture
async def make_process(tmp_path: Path) -> AsyncIterator[ProcessFactory]:
    """`await make_process(Role.POLLING, **settings)`: a process of that role serving HTTP on a free port."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(role: Role, **settings: Any) -> WebhookHarness:
            bot = WebhookHarness(tmp_path, role=role, **settings)
            bot.url = await stack.enter_async_context(serve(bot.fake))
            stack.push_async_callback(bot.stop)
            await bot.start()
            return bot

        yield make


async def test_a_polling_process_serves_its_probes_and_they_turn_503(make_process: ProcessFactory) -> None:
    bot: WebhookHarness = await make_process(Role.POLLING)
    assert bot.process is not None
    async with httpx.AsyncClient(base_url=bot.base_url) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "services_open": True, "not_stopping": True, "jobs_started": True, "polling": True,
            "application_running": True,
        }  # fmt: skip
        bot.process.view.lag.seconds = LAG_LIMIT_SECONDS + 1  # as if the loop had been stuck
        sick = await client.get("/healthz")
        bot.process.view.stopping = True
        leaving = await client.get("/readyz")
    assert sick.status_code == 503 and sick.json()["checks"]["event_loop"]["ok"] is False
    assert sick.json()["checks"]["database"] == {"ok": True}
    assert leaving.status_code == 503 and leaving.json()["checks"]["not_stopping"] is False


async def test_no_jobs_is_ready_without_a_runner(make_process: ProcessFactory) -> None:
    bot: WebhookHarness = await make_process(Role.WEBHOOK, run_jobs=False)
    async with httpx.AsyncClient(base_url=bot.base_url) as client:
        ready = (await client.get("/readyz")).json()
    assert ready["ok"] is True and ready["checks"]["jobs_off"] is True
    assert "jobs_started" not in ready["checks"]


def test_metrics_port_is_only_for_roles_without_a_webhook() -> None:
    base = Settings(Secret("t"), Secret("a"), Secret("s"))
    assert http_listen(base, Role.POLLING) is None and http_listen(base, Role.WORKER) is None
    with_port = replace(base, metrics_port=9100)
    assert str(http_listen(with_port, Role.WORKER)) == "0.0.0.0:9100"
    assert http_listen(with_port, Role.WEBHOOK) == base.webhook_listen


async def test_telegram_429s_are_counted(harness: Harness) -> None:
    name = "portrait_bot_telegram_rate_limited_total"
    before = REGISTRY.get_sample_value(name, {"method": "sendMessage"}) or 0.0
    alice = harness.person()
    harness.fake.rate_limit("sendMessage", times=1, retry_after=1)
    await alice.say("/help")  # answered after the 429's retry_after
    assert REGISTRY.get_sample_value(name, {"method": "sendMessage"}) == before + 1
