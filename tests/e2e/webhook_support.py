"""The end-to-end harness in webhook mode: the bot serves HTTP and the fake Telegram pushes updates to it.

Same bot, fake and emulator as `Harness`; only the way updates arrive differs (bot/ops/process.py's
`running(..., Role.WEBHOOK)` on a free local port, and the fake's webhook delivering to it).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from bot.app import App
from bot.config import Secret
from bot.config_values import Listen
from bot.ops.process import Role, RunningProcess, running
from fake_telegram.model import JSON
from tests.e2e.conftest import Harness

SECRET = "e2e-webhook-secret_0123"
HOOK_URL = "https://bot.example/telegram"  # what setWebhook is given; deliveries go to `targets`


class WebhookHarness(Harness):
    """`await h.start()` runs the bot as a webhook process; `h.base_url` is where it listens."""

    def __init__(self, tmp_path: Path, role: Role = Role.WEBHOOK, **settings: Any) -> None:
        settings.setdefault("webhook_url", HOOK_URL)
        settings.setdefault("webhook_secret", Secret(SECRET))
        super().__init__(tmp_path, **settings)
        self.role = role
        self.process: RunningProcess | None = None
        self._stack = contextlib.AsyncExitStack()

    def share(self, other: Harness) -> None:
        """Use `other`'s fake Telegram and emulator: a second process of the same bot on the same database."""
        self.fake, self.emulator, self.emulator_time = other.fake, other.emulator, other.emulator_time
        self.url = other.url

    async def start(self) -> App:
        listen = Listen("127.0.0.1", 0)
        self.process = await self._stack.enter_async_context(
            running(self.settings(), self.role, services_factory=self._services, listen=listen)
        )
        self.app = self.process.app
        self.fake.webhook.targets.append(self.base_url)
        return self.app

    async def stop(self) -> None:
        if self.process is not None:
            self.fake.webhook.targets.remove(self.base_url)
            self.process, self.app = None, None
            await self._stack.aclose()

    @property
    def base_url(self) -> str:
        assert self.process is not None and self.process.port is not None
        return f"http://127.0.0.1:{self.process.port}"


def intercept(harness: Harness) -> JSON:
    """Take the update the fake just queued before it is pushed (call right after a user action)."""
    return harness.fake.updates.pop()
