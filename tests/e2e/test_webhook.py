"""Webhook mode end to end: the secret, each update once (across two processes too), a portrait, probes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bot.ops.metrics import REGISTRY
from bot.ops.webhook import SECRET_HEADER
from fake_telegram import serve
from tests.e2e.conftest import WAIT, Person, is_photo, says
from tests.e2e.images import draw_selfie
from tests.e2e.webhook_support import SECRET, WebhookHarness, intercept


@contextlib.asynccontextmanager
async def webhook_bots(tmp_path: Path, count: int = 1) -> AsyncIterator[list[WebhookHarness]]:
    """`count` webhook processes of one bot on one database, behind the fake's delivery targets."""
    first = WebhookHarness(tmp_path, worker_id="web-1")
    bots = [first]
    async with contextlib.AsyncExitStack() as stack:
        first.url = await stack.enter_async_context(serve(first.fake))
        for n in range(2, count + 1):
            other = WebhookHarness(tmp_path, worker_id=f"web-{n}")
            other.share(first)
            bots.append(other)
        for bot in bots:
            stack.push_async_callback(bot.stop)
            await bot.start()
        yield bots


def duplicates_seen() -> float:
    return REGISTRY.get_sample_value("portrait_bot_duplicate_updates_total") or 0.0


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_handled(tmp_path: Path) -> None:
    async with webhook_bots(tmp_path) as (bot,):
        alice = bot.person()
        bot.fake.send_text(alice.user, alice.chat, "/start")
        update = intercept(bot)
        hook = f"{bot.base_url}/telegram"
        async with httpx.AsyncClient() as client:
            missing = await client.post(hook, json=update)
            wrong = await client.post(hook, json=update, headers={SECRET_HEADER: SECRET + "x"})
            assert (missing.status_code, wrong.status_code) == (403, 403)
            assert await bot.services.store.updates.count() == 0  # not even recorded
            right = await client.post(hook, json=update, headers={SECRET_HEADER: SECRET})
        assert right.status_code == 200
        # The same update, now with the secret, is handled: the refused posts had left no trace.
        welcome = await alice.reply_after(bot.fake.chat_messages(alice.chat.id)[-1])
        assert welcome.body.startswith("Hi Alice!")
        assert len(bot.fake.sent_messages(alice.chat.id)) == 1


async def test_an_update_delivered_twice_to_one_process_is_handled_once(tmp_path: Path) -> None:
    async with webhook_bots(tmp_path) as (bot,):
        await _start_twice(bot, bot.person())


async def test_an_update_delivered_to_two_processes_is_handled_once(tmp_path: Path) -> None:
    async with webhook_bots(tmp_path, count=2) as (first, second):
        await _start_twice(first, first.person())
        deliveries = first.fake.webhook.deliveries
        assert {d.url for d in deliveries} == {f"{first.base_url}/telegram", f"{second.base_url}/telegram"}


async def _start_twice(bot: WebhookHarness, alice: Person) -> None:
    """/start delivered twice: one welcome, and the second delivery counted as a duplicate."""
    before = duplicates_seen()
    bot.fake.webhook.duplicates = 1
    sent = bot.fake.send_text(alice.user, alice.chat, "/start")
    await alice.reply_after(sent)
    await bot.fake.wait_for(lambda: duplicates_seen() >= before + 1 or None, WAIT)
    (update_id,) = {d.update_id for d in bot.fake.webhook.deliveries}
    # The bot counts the duplicate before its 200 reaches the fake, which records the delivery after that.
    await bot.fake.wait_for(lambda: len(bot.fake.webhook.delivered(update_id)) == 2 or None, WAIT)
    assert len(bot.fake.sent_messages(alice.chat.id)) == 1


async def test_anime_through_the_webhook_delivers_a_portrait(tmp_path: Path) -> None:
    async with webhook_bots(tmp_path, count=2) as (bot, _):
        bot.fake.webhook.duplicates = 1  # every update twice, once to each process
        alice = bot.person()
        await alice.photo(draw_selfie(), expect=says("face.saved"))
        portrait = await alice.say("/anime", is_photo)
        assert portrait.reply_to is not None
        await bot.settle()
        photos = [m for m in bot.fake.sent_messages(alice.chat.id) if m.photo]
        assert len(photos) == 1
        assert len(bot.fake.calls_to("setWebhook", ok=True)) == 2
        assert bot.fake.calls_to("setWebhook")[0].params["secret_token"] == SECRET


async def test_probes_and_metrics_of_a_webhook_process(tmp_path: Path) -> None:
    async with webhook_bots(tmp_path) as (bot,):
        alice = bot.person()
        await alice.photo(draw_selfie(), expect=says("face.saved"))
        await alice.say("/anime", is_photo)
        await bot.settle()
        async with httpx.AsyncClient(base_url=bot.base_url) as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
            scraped = await client.get("/metrics")
    assert health.status_code == 200 and health.json()["ok"] is True
    assert set(health.json()["checks"]) == {"event_loop", "database"}
    assert ready.status_code == 200
    assert ready.json()["role"] == "webhook" and ready.json()["checks"]["webhook_set"] is True
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    for line in (
        'portrait_bot_info{role="webhook",worker_id="web-1"} 1.0',
        'portrait_bot_tasks{state="queued"} 0.0',
        "portrait_bot_queue_depth 0.0",
        "portrait_bot_database_up 1.0",
    ):
        assert line in text.splitlines(), line
    assert _sample(text, 'portrait_bot_updates_total{type="message"}') >= 2
    assert _sample(text, 'portrait_bot_quota_units_total{outcome="spent"}') >= 1
    assert _sample(text, 'portrait_bot_upstream_request_seconds_count{action="CVSync2AsyncSubmitTask"}') >= 1
    assert _sample(text, 'portrait_bot_tasks_finished_total{state="done"}') >= 1
    assert "portrait_bot_telegram_rate_limited_total" in text and "portrait_bot_lease_takeovers_total" in text


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")
