"""Point python-telegram-bot at a served fake.

The fake speaks plain HTTP, so the clients skip building TLS contexts: that alone costs ~0.13 s of CPU
per Bot, which adds up over a suite that starts one Application per test.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest


def plain_request(pool_size: int = 256) -> HTTPXRequest:
    return HTTPXRequest(connection_pool_size=pool_size, httpx_kwargs={"verify": False})


def application_builder(token: str, url: str) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """`Application.builder()` already aimed at the fake served at `url`."""
    return (
        Application.builder()
        .token(token)
        .base_url(f"{url}/bot")
        .base_file_url(f"{url}/file/bot")
        .request(plain_request())
        .get_updates_request(plain_request(pool_size=1))
    )


def make_bot(token: str, url: str) -> Bot:
    """A bare `Bot` for the fake at `url` (use as `async with make_bot(...) as bot`)."""
    return Bot(
        token,
        base_url=f"{url}/bot",
        base_file_url=f"{url}/file/bot",
        request=plain_request(),
        get_updates_request=plain_request(pool_size=1),
    )
