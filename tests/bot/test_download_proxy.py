"""A received image is downloaded through TELEGRAM_PROXY, like getFile before it, on either HTTP stack.

(Before, the download had an httpx client of its own that only read the environment's proxies: where the
Bot API is reachable only through TELEGRAM_PROXY, getFile worked and the download then failed.)
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from PIL import Image
from telegram import Bot

from bot.config import Settings
from bot.config_values import TelegramHttp
from bot.handlers.downloads import ImageDownloads
from bot.proxy import telegram_downloads

TOKEN = "123456789:AAH-secret-token-value-abcdefghijklmnop"
GOOD = {"TELEGRAM_BOT_TOKEN": TOKEN, "VOLC_ACCESSKEY": "AKLTexample", "VOLC_SECRETKEY": "VerySecretKey=="}
FILE_URL = f"http://files.telegram.invalid/file/bot{TOKEN}/photos/file_1.jpg"  # resolvable only by the proxy


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 640), (200, 120, 90)).save(out, "JPEG")
    return out.getvalue()


@dataclass
class Proxy:
    url: str
    asked: list[str] = field(default_factory=list)


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    """A forward HTTP proxy that knows one file: it answers absolute-form requests itself."""
    state = Proxy("")
    body = _jpeg()

    async def forward(request: web.Request) -> web.StreamResponse:
        state.asked.append(str(request.url))
        if request.host != "files.telegram.invalid":
            return web.Response(status=502)
        return web.Response(body=body, content_type="image/jpeg")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()


class _Bot:
    """getFile's answer: the download URL (PTB prefixes the file base URL) and the size."""

    async def get_file(self, file_id: str) -> Any:
        return SimpleNamespace(file_path=FILE_URL, file_size=None)


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
async def test_the_download_goes_through_the_telegram_proxy(proxy: Proxy, http: TelegramHttp) -> None:
    settings = Settings.from_env(GOOD | {"TELEGRAM_PROXY": proxy.url, "TELEGRAM_HTTP": http}, dotenv=False)
    chosen, via = telegram_downloads(settings)
    assert (chosen, via) == (http, proxy.url)
    downloads = ImageDownloads(2, http=chosen, proxy=via)
    try:
        assert await downloads.check(cast(Bot, _Bot()), "file-id", None) == (640, 640)
    finally:
        await downloads.aclose()
    assert proxy.asked == [FILE_URL]
    assert downloads.held == 0


def test_a_socks_proxy_downloads_over_httpx_through_it() -> None:
    settings = Settings.from_env(GOOD | {"TELEGRAM_PROXY": "socks5://127.0.0.1:1080"}, dotenv=False)
    assert telegram_downloads(settings) == ("httpx", "socks5://127.0.0.1:1080")
