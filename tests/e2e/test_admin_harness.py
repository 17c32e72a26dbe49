"""The bot as built by `build_application`, long-polling the fake Bot API, with the emulator upstream.

Shared by the admin and group end-to-end tests (they import `running_bot`/`Harness`); the tests here check
the wiring those tests rely on: the admin and group handlers are registered where they must be.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from telegram.ext import CommandHandler, MessageHandler

from api_client.clock import FakeClock
from api_client.emulator import EmulatorConfig, create_app
from bot.app import App, build_application, handler_list, start_application, stop_application
from bot.config import Secret, Settings
from bot.handlers import access, account, admin, groups, payments
from bot.handlers.context import SERVICES_KEY
from bot.handlers.permissions import CACHE_KEY, ChatAdminCache
from bot.ops.dedupe import UpdateOnce
from bot.services import Services, open_services
from demo.scripted_chat import ACCESS_KEY, EMULATOR_URL, SECRET_KEY
from fake_telegram import FakeChat, FakeMessage, FakeTelegram, FakeUser, serve
from storage import Store

OWNER_ID = 1
WAIT = 10.0


@dataclass
class Harness:
    fake: FakeTelegram
    app: App
    settings: Settings
    clock: FakeClock  # drives the chat-admin cache

    @property
    def services(self) -> Services:
        services: Services = self.app.bot_data[SERVICES_KEY]
        return services

    @property
    def store(self) -> Store:
        return self.services.store

    async def ask(
        self, user: FakeUser, chat: FakeChat, text: str, reply_to: FakeMessage | None = None
    ) -> FakeMessage:
        """Send text and wait for the bot's first message after it in that chat."""
        sent = self.fake.send_text(user, chat, text, reply_to=reply_to)
        return await self.fake.wait_for_message(chat, after=sent.message_id, timeout=WAIT)

    async def ignored(self, user: FakeUser, chat: FakeChat, text: str, probe: str) -> FakeMessage:
        """Send `text`, then `probe` (which is answered): nothing but the probe's answer may follow `text`."""
        sent = self.fake.send_text(user, chat, text)
        answer = await self.ask(user, chat, probe)
        after = [m for m in self.fake.sent_messages(chat.id) if m.message_id > sent.message_id]
        assert after == [answer], self.fake.transcript(chat.id)
        return sent


def harness_settings(fake: FakeTelegram, url: str, db_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": Secret(fake.token),
        "volc_access_key": Secret(ACCESS_KEY),
        "volc_secret_key": Secret(SECRET_KEY),
        "telegram_api_url": f"{url}/bot",
        "volc_endpoint": EMULATOR_URL,
        "db_path": db_path,
        "admin_ids": frozenset({OWNER_ID}),
        "daily_free_quota": 3,
        "status_edit_interval": 0.0,
        "chat_send_interval": 0.0,  # pacing is tested with a fake clock (tests/bot/test_pacing.py)
        "user_rate_limit": 0.0,  # tests act fast; the limit is tested on its own (tests/e2e/test_flood.py)
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    privacy_mode: bool = True,
    queue_seconds: float = 0.0,
    fault_rate_429: float = 0.0,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """The whole bot; `queue_seconds` keeps upstream tasks queued that long (a task still running),
    `fault_rate_429` refuses that share of requests (1.0: every submit waits to be sent again)."""
    emulator = create_app(
        EmulatorConfig(
            access_key=ACCESS_KEY, secret_key=SECRET_KEY, queue_seconds=queue_seconds, generate_seconds=0.0,
            fault_rate_429=fault_rate_429,
        )
    )  # fmt: skip
    fake = FakeTelegram(privacy_mode=privacy_mode)
    clock = FakeClock()
    async with serve(fake) as url:
        settings = harness_settings(fake, url, tmp_path / "bot.db", **overrides)
        factory = partial(open_services, transport=httpx.ASGITransport(app=emulator), album_window=0.05)
        app = build_application(settings, services_factory=factory)
        app.bot_data[CACHE_KEY] = ChatAdminCache(ttl=60.0, clock=clock.monotonic)
        await start_application(app, poll_timeout=1)
        try:
            yield Harness(fake, app, settings, clock)
        finally:
            await stop_application(app)


def _callback(handler: object) -> object:
    return getattr(handler, "callback", None)


def test_admin_handlers_come_before_the_users_quota_and_group_handlers_before_the_catch_alls() -> None:
    handlers = handler_list()
    callbacks = [_callback(h) for h in handlers]
    admin_quota_at = callbacks.index(admin.quota_with_args)
    user_quota_at = callbacks.index(account.quota)
    assert admin_quota_at < user_quota_at
    admin_quota = handlers[admin_quota_at]
    assert isinstance(admin_quota, CommandHandler) and admin_quota.has_args is True
    catch_all_at = next(
        i
        for i, h in enumerate(handlers)
        if isinstance(h, MessageHandler) and getattr(_callback(h), "__name__", "") == "unknown_command"
    )
    for handler in groups.group_handlers():
        assert callbacks.index(_callback(handler)) < catch_all_at
    for name in admin.COMMANDS:
        assert any(isinstance(h, CommandHandler) and name in h.commands for h in handlers[:catch_all_at])


async def test_group_gate_runs_before_the_user_gate(tmp_path: Path) -> None:
    fake = FakeTelegram()
    settings = harness_settings(fake, "http://fake.invalid", tmp_path / "bot.db")
    app = build_application(settings)
    gate_groups = {group: [_callback(h) for h in hs] for group, hs in app.handlers.items() if group < 0}
    assert groups.group_gate in gate_groups[-2]
    # First of all each update is taken once (bot/ops/dedupe.py), before anything reads it.
    assert [callback.__func__ for callback in gate_groups.pop(-5)] == [UpdateOnce.check]  # type: ignore[attr-defined]
    # Before it only the payment updates (always answered / credited) and private mode (stores nothing).
    assert {group: hs for group, hs in gate_groups.items() if group < -2} == {
        -4: [payments.pre_checkout, payments.successful_payment],
        -3: [access.guard],
    }
