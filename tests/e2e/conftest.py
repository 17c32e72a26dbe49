"""End-to-end harness: the real Application against the fake Bot API, with the emulator as the upstream.

Nothing inside the bot is replaced. PTB long-polls the fake over HTTP; the runner's PortraitClient signs
real requests that reach the emulator through an in-process ASGI transport; the store is SQLite in
tmp_path. Two things are tuned for speed, not faked: the emulator finishes tasks at once (or when the test
moves its clock), and the client's clock sleeps 1/50 of the time it is asked to, so polling a finished
task takes milliseconds instead of 1.5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_client.clock import SystemClock
from api_client.emulator import EmulatorConfig, create_app
from bot.app import App, build_application, start_application, stop_application
from bot.config import Secret, Settings
from bot.handlers.context import SERVICES_KEY
from bot.replies import t
from bot.services import Services, open_services
from fake_telegram import FakeChat, FakeMessage, FakeTelegram, FakeUser, serve
from storage import Task, TaskState

ACCESS_KEY, SECRET_KEY = "AKE2E", "SKE2E"
ADMIN_CHAT = -100777
TIME_WARP = 50.0
WAIT = 10.0  # seconds a test waits for an expected reply before failing


class WarpClock(SystemClock):
    """Wall-clock time for signing, but sleeps shortened TIME_WARP times (polling, throttle pacing)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / TIME_WARP)


class EmulatorTime:
    """The emulator's clock: real time plus an offset the test moves to finish slow tasks."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Person:
    """One user in one chat, with the actions a test performs and waits on."""

    fake: FakeTelegram
    user: FakeUser
    chat: FakeChat

    async def reply_after(self, sent: FakeMessage, expect: Any = None) -> FakeMessage:
        """The first bot message in this chat after `sent` (matching `expect`: text or predicate)."""
        return await self.fake.wait_for_message(self.chat, expect, after=sent.message_id, timeout=WAIT)

    async def say(self, text: str, expect: Any = None) -> FakeMessage:
        """Send text and return the first bot message after it (matching `expect`)."""
        return await self.reply_after(self.fake.send_text(self.user, self.chat, text), expect)

    async def photo(self, data: bytes, caption: str | None = None, expect: Any = None) -> FakeMessage:
        sent = self.fake.send_photo(self.user, self.chat, data, caption=caption)
        return await self.reply_after(sent, expect)

    async def document(
        self, data: bytes, name: str, mime: str | None, caption: str | None = None, expect: Any = None
    ) -> FakeMessage:
        sent = self.fake.send_document(self.user, self.chat, data, name, mime, caption=caption)
        return await self.reply_after(sent, expect)

    async def click(self, message: FakeMessage, data: str) -> dict[str, Any]:
        """Press a button and return answerCallbackQuery's parameters once the bot answered."""
        query_id = self.fake.click(self.user, message, data)
        answer: dict[str, Any] = await self.fake.wait_for(lambda: self.fake.callback_answer(query_id), WAIT)
        return answer

    async def tap(self, message: FakeMessage, data: str) -> dict[str, Any]:
        """Press a button that edits its own message: wait for the answer and for the edit."""
        edits = len(message.history)
        answer = await self.click(message, data)
        await self.fake.wait_for(lambda: len(message.history) > edits or None, WAIT)
        return answer

    def sent(self) -> list[FakeMessage]:
        return self.fake.sent_messages(self.chat.id)

    def text(self, key: str, **values: object) -> str:
        """A catalogue text in this user's client language (what the bot should have said)."""
        return t(key, "zh" if (self.user.language_code or "").startswith("zh") else "en", **values)


def is_photo(message: FakeMessage) -> bool:
    return bool(message.photo)


def says(key: str, lang: str = "en", **values: object) -> Callable[[FakeMessage], bool]:
    """Matches a message whose text (or caption) is exactly catalogue `key`."""
    expected = t(key, lang, **values)
    return lambda message: message.body == expected


class Harness:
    """The fake Telegram, the emulator and the bot's Application, restartable on the same database."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.tmp_path = tmp_path
        self.fake = FakeTelegram()
        self.emulator_time = EmulatorTime()
        self.emulator = create_app(
            EmulatorConfig(
                access_key=ACCESS_KEY, secret_key=SECRET_KEY, queue_seconds=0.0, generate_seconds=0.0,
                clock=self.emulator_time,
            )
        )  # fmt: skip
        self.overrides = settings
        self.admin_chat = self.fake.group(ADMIN_CHAT, "Bot admins")
        self.url = ""
        self.app: App | None = None
        self.album_window = 0.15

    @property
    def emulator_state(self) -> Any:
        return self.emulator.state.emulator

    def set_timings(self, *, queue: float = 0.0, generate: float = 0.0) -> None:
        config = self.emulator_state.config
        config.queue_seconds, config.generate_seconds = queue, generate

    def settings(self) -> Settings:
        base = Settings(
            telegram_bot_token=Secret(self.fake.token),
            volc_access_key=Secret(ACCESS_KEY),
            volc_secret_key=Secret(SECRET_KEY),
            telegram_api_url=f"{self.url}/bot",
            volc_endpoint="http://emulator.invalid",
            db_path=self.tmp_path / "bot.db",
            admin_chat_id=ADMIN_CHAT,
            status_edit_interval=0.0,
            chat_send_interval=0.0,  # pacing is tested with a fake clock (tests/bot/test_pacing.py)
            user_rate_limit=0.0,  # tests act fast; the limit is tested on its own (tests/e2e/test_flood.py)
        )
        return replace(base, **self.overrides)

    async def _services(self, settings: Settings, bot: Any) -> Services:
        return await open_services(
            settings,
            bot,
            transport=httpx.ASGITransport(app=self.emulator),
            client_clock=WarpClock(),
            album_window=self.album_window,
        )

    async def start(self) -> App:
        self.app = build_application(self.settings(), services_factory=self._services)
        await start_application(self.app, poll_timeout=5)
        return self.app

    async def stop(self) -> None:
        if self.app is not None:
            app, self.app = self.app, None
            await stop_application(app)

    @property
    def services(self) -> Services:
        assert self.app is not None, "the bot is not running"
        services: Services = self.app.bot_data[SERVICES_KEY]
        return services

    def person(self, user_id: int = 1001, name: str = "Alice", lang: str = "en") -> Person:
        user = self.fake.add_user(user_id, name, name.lower(), lang)
        return Person(self.fake, user, self.fake.private_chat(user))

    async def until_state(self, person: Person, *states: TaskState) -> Task:
        """Wait until the person's newest task is in one of `states` (the runner works in the background)."""

        async def check() -> Task | None:
            tasks = await self.services.store.tasks.recent_for_user(person.user.id, limit=1)
            return tasks[0] if tasks and tasks[0].state in states else None

        async with asyncio.timeout(WAIT):
            while True:
                task = await check()
                if task is not None:
                    return task
                await asyncio.sleep(0.02)  # the store has no change signal the test could wait on

    async def settle(self) -> None:
        """Wait until the runner has nothing in flight (tasks finished or waiting on the emulator's clock)."""
        runner = self.services.runner
        await self.fake.wait_for(lambda: not runner.running or None, WAIT)


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture(scope="session", autouse=True)
def _shared_tls_context() -> Iterator[None]:
    """Each Application builds two httpx clients, and each loads the CA bundle (~0.15 s): load it once.

    Only start-up time changes; the fake and the emulator are plain HTTP / in-process anyway.
    """
    from httpx._transports import default

    cached = functools.cache(default.create_ssl_context)  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(default, "create_ssl_context", cached)
        yield


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """`await make_harness(daily_free_quota=1)`: a running bot with those settings, stopped afterwards."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**settings: Any) -> Harness:
            h = Harness(tmp_path, **settings)
            h.url = await stack.enter_async_context(serve(h.fake))
            stack.push_async_callback(h.stop)
            await h.start()
            return h

        yield make


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    return await make_harness()


@pytest.fixture
def alice(harness: Harness) -> Person:
    return harness.person()
