"""Telegram's side of a webhook: each pending update is POSTed to the bot until it answers 2xx.

As Telegram does: the registered URL gets the update as JSON with `X-Telegram-Bot-Api-Secret-Token` (the
`secret_token` of setWebhook), a non-2xx answer or a connection failure is retried, and getUpdates is
refused while a webhook is set. What tests add:
- `targets`: base URLs (`http://127.0.0.1:PORT`) the deliveries are spread over in turn, keeping the
  registered URL's path: a load balancer in front of several bot processes. A target that fails is skipped
  for the next one, as a balancer's health check would.
- `duplicates`: after a delivery succeeded, the same update is sent this many more times, each to the next
  target (Telegram re-delivering after a slow answer, or a balancer retrying).
Every attempt is recorded in `deliveries` (update_id, URL, HTTP status or 0 for a connection failure),
and the first successful one's start in the core's `handed_out`, as getUpdates notes its answers (the
benchmarks time update -> submit from it).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from fake_telegram.model import JSON

if TYPE_CHECKING:
    from fake_telegram.core import FakeCore

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RETRY_SECONDS = 0.05


@dataclass(frozen=True)
class Delivery:
    update_id: int
    url: str
    status: int  # 0: no answer (connection refused, reset, timeout)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class WebhookPusher:
    """The webhook's state and its delivery loop (started by setWebhook, ended by deleteWebhook/close)."""

    url: str = ""
    secret: str = ""
    targets: list[str] = field(default_factory=list)
    duplicates: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    _turn: int = 0
    _task: asyncio.Task[None] | None = None

    def start(self, fake: FakeCore) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(fake), name="fake-telegram-webhook")

    def delivered(self, update_id: int) -> list[Delivery]:
        """The successful deliveries of one update (more than one: it was duplicated)."""
        return [d for d in self.deliveries if d.update_id == update_id and d.ok]

    def _next_url(self) -> str:
        if not self.targets:
            return self.url
        path = urlsplit(self.url).path or "/"
        target = self.targets[self._turn % len(self.targets)].rstrip("/")
        self._turn += 1
        return target + path

    async def _run(self, fake: FakeCore) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            while fake.webhook_url and not fake.closed:
                pending = fake.pending_updates(None, 1)
                if not pending:
                    await fake._wait_change(1.0)
                    continue
                update = pending[0]
                if not await self._post(fake, client, update):
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                with contextlib.suppress(ValueError):
                    fake.updates.remove(update)
                for _ in range(self.duplicates):
                    await self._post(fake, client, update)

    async def _post(self, fake: FakeCore, client: httpx.AsyncClient, update: JSON) -> bool:
        url = self._next_url()
        posted = fake.clock()
        try:
            response = await client.post(url, json=update, headers={SECRET_HEADER: self.secret})
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        delivery = Delivery(int(update["update_id"]), url, status)
        self.deliveries.append(delivery)
        if delivery.ok:
            fake.handed_out.setdefault(delivery.update_id, posted)
        fake.notify()
        return delivery.ok
