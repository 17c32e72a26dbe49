"""The fake's webhook: updates pushed with the secret, retried until 2xx, spread and duplicated on request."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fake_telegram import FakeTelegram, serve
from fake_telegram.webhook import SECRET_HEADER


class Receiver:
    """A stand-in bot process: records what it was sent; answers `status` (503 for the first `fail` posts)."""

    def __init__(self, fail: int = 0) -> None:
        self.got: list[tuple[int, str]] = []  # (update_id, secret header)
        self.fail = fail

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            if self.fail > 0:
                self.fail -= 1
                return Response(status_code=503)
            body: dict[str, Any] = await request.json()
            self.got.append((body["update_id"], request.headers.get(SECRET_HEADER, "")))
            return Response()

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    """Serve the receiver on a free local port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(receiver.app(), lifespan="off", log_level="warning"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _set_webhook(url: str, fake: FakeTelegram, hook: str, secret: str = "s3cret") -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{url}/bot{fake.token}/setWebhook", json={"url": hook, "secret_token": secret}
        )
        info = await client.get(f"{url}/bot{fake.token}/getWebhookInfo")
        polled = await client.post(f"{url}/bot{fake.token}/getUpdates", json={"timeout": 0})
    assert answer.json() == {"ok": True, "result": True}
    assert polled.status_code == 409  # no getUpdates while a webhook is set
    result: dict[str, Any] = info.json()["result"]
    return result


async def test_updates_are_pushed_with_the_secret_and_retried_until_accepted() -> None:
    fake = FakeTelegram()
    alice = fake.add_user(1001, "Alice")
    receiver = Receiver(fail=2)
    async with receiving(receiver) as bot_url, serve(fake) as url:
        info = await _set_webhook(url, fake, f"{bot_url}/hook")
        assert info["url"] == f"{bot_url}/hook"
        first = fake.send_text(alice, fake.private_chat(alice), "/start")
        second = fake.send_text(alice, fake.private_chat(alice), "hello")
        await fake.wait_for(lambda: len(receiver.got) == 2 or None)
    ids = [update_id for update_id, _ in receiver.got]
    assert ids == sorted(ids) and len(set(ids)) == 2  # in order, each once
    assert {secret for _, secret in receiver.got} == {"s3cret"}
    assert [d.status for d in fake.webhook.deliveries] == [503, 503, 200, 200]
    assert first.message_id < second.message_id and fake.updates == []


async def test_targets_share_the_deliveries_and_duplicates_reach_the_next_one() -> None:
    fake = FakeTelegram()
    alice = fake.add_user(1001, "Alice")
    a, b = Receiver(), Receiver()
    async with receiving(a) as a_url, receiving(b) as b_url, serve(fake) as url:
        await _set_webhook(url, fake, "https://bot.example/hook")
        fake.webhook.targets = [a_url, b_url]
        fake.webhook.duplicates = 1
        for n in range(3):
            fake.send_text(alice, fake.private_chat(alice), f"message {n}")
        await fake.wait_for(lambda: len(a.got) + len(b.got) == 6 or None)
    for update_id in {u for u, _ in a.got}:
        assert update_id in {u for u, _ in b.got}  # every update reached both processes
    assert all(len(fake.webhook.delivered(u)) == 2 for u, _ in a.got)


async def test_a_pushed_update_counts_as_handed_out_once_it_is_accepted() -> None:
    fake = FakeTelegram()
    alice = fake.add_user(1001, "Alice")
    receiver = Receiver(fail=1)
    async with receiving(receiver) as bot_url, serve(fake) as url:
        await _set_webhook(url, fake, f"{bot_url}/hook")
        fake.send_text(alice, fake.private_chat(alice), "/anime")
        await fake.wait_for(lambda: receiver.got or None)
    (update_id, _) = receiver.got[0]
    refused, accepted = fake.webhook.deliveries
    assert (refused.status, accepted.status) == (503, 200)
    assert list(fake.handed_out) == [update_id]  # what load runs time update -> submit from
