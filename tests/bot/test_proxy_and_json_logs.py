"""TELEGRAM_PROXY reaches both of PTB's HTTP clients, VOLC_PROXY only the upstream's; JSON logs are masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpcore
import pytest
from telegram.request import HTTPXRequest

from bot.app import build_application
from bot.chat.botapi import AiohttpRequest
from bot.config import Settings
from bot.log import setup_logging
from bot.proxy import telegram_request, upstream_transport

TOKEN = "123456789:AAH-secret-token-value-abcdefghijklmnop"
GOOD = {"TELEGRAM_BOT_TOKEN": TOKEN, "VOLC_ACCESSKEY": "AKLTexample", "VOLC_SECRETKEY": "VerySecretKey=="}


def _proxy_pools(client: object) -> list[object]:
    mounts = getattr(client, "_mounts")  # noqa: B009 - httpx keeps proxy transports here
    return [getattr(transport, "_pool", None) for transport in mounts.values() if transport is not None]


def _proxy_url(pool: object) -> str:
    url = getattr(pool, "_proxy_url")  # noqa: B009
    return f"{url.scheme.decode()}://{url.host.decode()}:{url.port}"


@pytest.mark.parametrize(
    ("proxy", "pool_type", "stack"),
    [
        ("socks5://user:pw@127.0.0.1:1080", httpcore.AsyncSOCKSProxy, "aiohttp"),  # aiohttp has no SOCKS
        ("http://127.0.0.1:3128", httpcore.AsyncHTTPProxy, "httpx"),
    ],
)
def test_telegram_proxy_reaches_both_httpx_clients(proxy: str, pool_type: type, stack: str) -> None:
    settings = Settings.from_env(GOOD | {"TELEGRAM_PROXY": proxy, "TELEGRAM_HTTP": stack}, dotenv=False)
    app = build_application(settings)
    requests = app.bot._request  # (getUpdates request, every other method's request)
    assert len(requests) == 2
    for request in requests:
        assert isinstance(request, HTTPXRequest)
        pools = _proxy_pools(request._client)
        assert len(pools) == 1 and isinstance(pools[0], pool_type)
        assert _proxy_url(pools[0]) == proxy.replace("user:pw@", "")
    # ...and the upstream stays direct, because VOLC_PROXY is not set.
    assert upstream_transport(settings) is None
    request = telegram_request(settings)
    assert isinstance(request, HTTPXRequest)
    assert isinstance(_proxy_pools(request._client)[0], pool_type)


def test_an_http_proxy_reaches_both_aiohttp_requests_by_default() -> None:
    settings = Settings.from_env(GOOD | {"TELEGRAM_PROXY": "http://user:pw@127.0.0.1:3128"}, dotenv=False)
    requests = build_application(settings).bot._request
    assert len(requests) == 2
    for request in [*requests, telegram_request(settings)]:
        assert isinstance(request, AiohttpRequest)
        assert request.proxy == "http://user:pw@127.0.0.1:3128"
        assert "pw" not in repr(request)


def test_without_a_proxy_the_bot_goes_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for request in build_application(Settings.from_env(GOOD, dotenv=False)).bot._request:
        assert isinstance(request, AiohttpRequest) and request.proxy is None
    app = build_application(Settings.from_env(GOOD | {"TELEGRAM_HTTP": "httpx"}, dotenv=False))
    for request in app.bot._request:
        assert isinstance(request, HTTPXRequest)
        assert not any(
            isinstance(p, httpcore.AsyncHTTPProxy | httpcore.AsyncSOCKSProxy)
            for p in _proxy_pools(request._client)
        )


def test_an_https_proxy_from_the_environment_still_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's client read HTTPS_PROXY (trust_env); the aiohttp requests read it once, for the API's host."""
    monkeypatch.setenv("HTTPS_PROXY", "http://10.9.8.7:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for request in build_application(Settings.from_env(GOOD, dotenv=False)).bot._request:
        assert isinstance(request, AiohttpRequest) and request.proxy == "http://10.9.8.7:3128"


def test_volc_proxy_is_the_upstream_clients_only() -> None:
    settings = Settings.from_env(GOOD | {"VOLC_PROXY": "socks5://10.1.2.3:1080"}, dotenv=False)
    transport = upstream_transport(settings)
    pool = getattr(transport, "_pool")  # noqa: B009
    assert isinstance(pool, httpcore.AsyncSOCKSProxy) and _proxy_url(pool) == "socks5://10.1.2.3:1080"
    for request in build_application(settings).bot._request:
        assert isinstance(request, AiohttpRequest) and request.proxy is None


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield io.StringIO()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _json_logger(stream: io.StringIO, secrets: list[str]) -> logging.Logger:
    setup_logging("DEBUG", secrets, "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return logging.getLogger("bot.test")


def test_json_lines_carry_the_context_fields_and_mask_secrets(captured: io.StringIO) -> None:
    settings = Settings.from_env(
        GOOD | {"TELEGRAM_PROXY": "http://u:proxy-pass@127.0.0.1:3128"}, dotenv=False
    )
    log = _json_logger(captured, settings.secret_values())
    log.info(
        "sending to /bot%s/sendMessage", TOKEN,
        extra={"task_id": 7, "user_id": 1001, "chat_id": -100, "request_id": "req-1"},
    )  # fmt: skip
    log.warning("proxy said no: http://u:proxy-pass@127.0.0.1:3128", extra={"error": f"token {TOKEN}"})
    try:
        raise RuntimeError(f"failed with VerySecretKey== and {TOKEN}")
    except RuntimeError:
        log.exception("boom")
    text = captured.getvalue()
    for secret in (TOKEN, "proxy-pass", "VerySecretKey=="):
        assert secret not in text
    first, second, third = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "sending to /bot***/sendMessage"
    assert (first["task_id"], first["user_id"], first["chat_id"], first["request_id"]) == (
        7,
        1001,
        -100,
        "req-1",
    )
    assert first["level"] == "INFO" and first["logger"] == "bot.test" and "ts" in first
    assert second["error"] == "token ***" and "task_id" not in second
    assert "RuntimeError" in third["exception"]


def test_text_stays_the_default_format(captured: io.StringIO) -> None:
    setup_logging("INFO", [TOKEN])
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(captured)
    logging.getLogger("bot.test").info("plain %s", TOKEN)
    assert captured.getvalue().rstrip().endswith("bot.test: plain ***")
