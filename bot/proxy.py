"""Proxies: one for the Bot API (TELEGRAM_PROXY), another, independent one for the upstream (VOLC_PROXY).

Why two: a bot hosted where Telegram is blocked needs a proxy for Telegram only, while the Volcengine
endpoint (often in the same region as the host) should stay direct; and the other way round. PTB makes two
HTTP clients (one for bot methods, one for the getUpdates long-poll) and both need the proxy. The upstream
client gets a transport with the proxy, so PortraitClient's API stays as it is. socks5 URLs need the
`socksio` package (`httpx[socks]`), a dependency.

The Bot API's requests go over aiohttp (bot/chat/botapi.py, TELEGRAM_HTTP=aiohttp, the default) or PTB's
`HTTPXRequest` (TELEGRAM_HTTP=httpx). aiohttp speaks no SOCKS, so a socks5 TELEGRAM_PROXY keeps httpx.
"""

from __future__ import annotations

from typing import Any

import httpx
from telegram.request import BaseRequest, HTTPXRequest

from api_client.client import DEFAULT_LIMITS
from api_client.transport import env_proxy
from bot.config import Settings
from bot.config_values import TelegramHttp


def uses_aiohttp(settings: Settings) -> bool:
    """Whether the Bot API goes over aiohttp: asked for, and no SOCKS proxy in the way."""
    socks = settings.telegram_proxy is not None and settings.telegram_proxy.value.lower().startswith("socks")
    return settings.telegram_http == "aiohttp" and not socks


def _aiohttp_proxy(settings: Settings) -> str | None:
    """TELEGRAM_PROXY, else what the environment names for the API's host (httpx's `trust_env` read it)."""
    if settings.telegram_proxy is not None:
        return settings.telegram_proxy.value
    return env_proxy(settings.telegram_api_url)


def with_telegram_proxy(builder: Any, settings: Settings) -> Any:
    """`builder` (an ApplicationBuilder) with its two request objects (bot methods; the getUpdates
    long-poll, one connection as PTB's default) and TELEGRAM_PROXY on both, when set."""
    if uses_aiohttp(settings):
        from bot.chat.botapi import AiohttpRequest  # aiohttp takes ~0.2 s to import: not for every CLI run

        proxy = _aiohttp_proxy(settings)
        return builder.request(AiohttpRequest(proxy=proxy)).get_updates_request(
            AiohttpRequest(connection_pool_size=1, proxy=proxy)
        )
    if settings.telegram_proxy is None:
        return builder
    url = settings.telegram_proxy.value
    return builder.proxy(url).get_updates_proxy(url)


def telegram_downloads(settings: Settings) -> tuple[TelegramHttp, str | None]:
    """How files are downloaded (bot/handlers/downloads.py): the Bot API requests' stack and proxy."""
    if uses_aiohttp(settings):
        return "aiohttp", _aiohttp_proxy(settings)
    return "httpx", settings.telegram_proxy.value if settings.telegram_proxy is not None else None


def telegram_request(settings: Settings) -> BaseRequest:
    """A stand-alone request object for a one-off Bot (the CLI's token check, refunds from the CLI)."""
    if uses_aiohttp(settings):
        from bot.chat.botapi import AiohttpRequest

        return AiohttpRequest(proxy=_aiohttp_proxy(settings))
    proxy = settings.telegram_proxy.value if settings.telegram_proxy is not None else None
    return HTTPXRequest(proxy=proxy)


def upstream_transport(settings: Settings) -> httpx.AsyncBaseTransport | None:
    """The upstream client's transport through VOLC_PROXY; None (httpx's default, direct) when unset."""
    if settings.volc_proxy is None:
        return None
    return httpx.AsyncHTTPTransport(proxy=settings.volc_proxy.value, limits=DEFAULT_LIMITS)
