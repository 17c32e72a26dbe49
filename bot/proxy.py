"""Proxies: one for the Bot API (TELEGRAM_PROXY), another, independent one for the upstream (VOLC_PROXY).

Why two: a bot hosted where Telegram is blocked needs a proxy for Telegram only, while the Volcengine
endpoint (often in the same region as the host) should stay direct; and the other way round. PTB makes two
HTTP clients (one for bot methods, one for the getUpdates long-poll) and both need the proxy. The upstream
client gets a transport with the proxy, so PortraitClient's API stays as it is. socks5 URLs need the
`socksio` package (`httpx[socks]`), a dependency.
"""

from __future__ import annotations

from typing import Any

import httpx
from telegram.request import HTTPXRequest

from api_client.client import DEFAULT_LIMITS
from bot.config import Settings


def with_telegram_proxy(builder: Any, settings: Settings) -> Any:
    """`builder` (an ApplicationBuilder) with TELEGRAM_PROXY on both of its HTTP clients, when set."""
    if settings.telegram_proxy is None:
        return builder
    url = settings.telegram_proxy.value
    return builder.proxy(url).get_updates_proxy(url)


def telegram_request(settings: Settings) -> HTTPXRequest:
    """A stand-alone request object for a one-off Bot (the CLI's token check, refunds from the CLI)."""
    proxy = settings.telegram_proxy.value if settings.telegram_proxy is not None else None
    return HTTPXRequest(proxy=proxy)


def upstream_transport(settings: Settings) -> httpx.AsyncBaseTransport | None:
    """The upstream client's transport through VOLC_PROXY; None (httpx's default, direct) when unset."""
    if settings.volc_proxy is None:
        return None
    return httpx.AsyncHTTPTransport(proxy=settings.volc_proxy.value, limits=DEFAULT_LIMITS)
