"""The Bot API's HTTP requests over aiohttp: PTB's `BaseRequest` on one `aiohttp.ClientSession`.

Why not PTB's `HTTPXRequest`: `bench_bot` profiled about 60 % of the bot's event-loop time in Bot API
calls, most of it httpcore's pure-Python HTTP/1.1 and connection pool (which scans every pooled connection
on each request) and anyio's per-read machinery; aiohttp parses HTTP in C (the same finding as the
upstream client's transport, `api_client/transport.py`). JSON answers are read with orjson.

What stays exactly as with `HTTPXRequest`, because the bot relies on it (bot/chat/notifier.py treats
`NetworkError`/`TimedOut` as "may have arrived"): every timeout is `TimedOut`; every other transport
failure is `NetworkError`; status codes, 429's `retry_after` and bad JSON are PTB's own handling
(`BaseRequest._request_wrapper`). Uploads go out as the same multipart bodies; other calls as one JSON
object encoded by orjson (the Bot API takes both; HTTPXRequest's form encoding JSON-encoded each value
with the standard library, then percent-encoded them all). Redirects are not followed, and there are no
cookies.

Timeouts: `connect` is aiohttp's `sock_connect`, `pool` + `connect` bound getting a connection (a pool
timeout is `TimedOut` too, only without HTTPXRequest's "not sent" wording), `read` is `sock_read`.
aiohttp has no write timeout and starts its read timer while the body is still going out, so an upload
gets `write` + `read` as its read timeout (a slow 10 MB photo is not cut off after 5 s).

Proxies: http(s) ones (TELEGRAM_PROXY, else `HTTPS_PROXY`/`ALL_PROXY` for the API's host, as httpx's
`trust_env` did). aiohttp has no SOCKS: with a socks5 TELEGRAM_PROXY the bot keeps `HTTPXRequest`
(bot/proxy.py), as it does with TELEGRAM_HTTP=httpx.

The URLs hold the bot token (`/bot<token>/method`): aiohttp logs no URLs, and error texts have the URL's
path masked before they become a `NetworkError`.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from functools import cache
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import httpx
import orjson
import yarl
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

JSON: Final = {"Content-Type": "application/json"}

#: Idle connections are dropped after this many seconds, as httpx does (its keepalive_expiry): a
#: connection the server has just closed fails the request that reuses it.
KEEPALIVE_SECONDS: Final = 5.0


@cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default context (the same CA bundle HTTPXRequest used), made once: it takes ~0.1 s."""
    return httpx.create_ssl_context()


def _mask_path(text: str, url: str) -> str:
    """`text` without `url`'s path (which holds the token), in the raw and the percent-encoded form."""
    path = urlsplit(url).path
    for form in {path, yarl.URL(url).raw_path}:
        if len(form) > 1:
            text = text.replace(form, "/***")
    return text


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on aiohttp; the arguments mean what HTTPXRequest's of the same name do."""

    __slots__ = ("_limit", "_media_write_timeout", "_proxy", "_session", "_timeout", "_timeouts")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        proxy: str | None = None,
    ) -> None:
        self._limit = connection_pool_size
        self._timeout = {
            "read": read_timeout,
            "write": write_timeout,
            "connect": connect_timeout,
            "pool": pool_timeout,
        }
        self._media_write_timeout = media_write_timeout
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:
        return f"AiohttpRequest(pool={self._limit}, proxy={'set' if self._proxy else None})"

    @property
    def proxy(self) -> str | None:
        return self._proxy

    @property
    def read_timeout(self) -> float | None:
        return self._timeout["read"]

    async def initialize(self) -> None:
        """Opens the session here, inside the running loop, which aiohttp binds it to."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS, ssl=ssl_context()
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # the proxy is chosen once (bot/proxy.py); no ~/.netrc look-ups per request
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _client_timeout(
        self, connect: float | None, read: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        key = (connect, read, pool)
        cached = self._timeouts.get(key)
        if cached is None:
            acquire = None if connect is None or pool is None else connect + pool
            cached = aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=read)
            if len(self._timeouts) < 32:  # a handful of combinations in practice (getUpdates adds its own)
                self._timeouts[key] = cached
        return cached

    def _pick(self, name: str, value: ODVInput[float]) -> float | None:
        return self._timeout[name] if isinstance(value, DefaultValue) else value

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = self._pick("read", read_timeout)
        data: aiohttp.FormData | bytes | None = None
        headers: Mapping[str, str] | None = None
        if request_data is not None and request_data.contains_files:
            if isinstance(write_timeout, DefaultValue):
                write: float | None = self._media_write_timeout
            else:
                write = write_timeout
            read = None if read is None or write is None else read + write
            data = _multipart(request_data)
        elif request_data is not None:
            fields = request_data.parameters
            if fields:
                data, headers = orjson.dumps(fields), JSON
        timeout = self._client_timeout(
            self._pick("connect", connect_timeout), read, self._pick("pool", pool_timeout)
        )
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                proxy=self._proxy,
                allow_redirects=False,
            ) as answer:
                return answer.status, await answer.read()
        except TimeoutError as exc:  # aiohttp's connect/read timeouts are TimeoutError subclasses
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            text = _mask_path(f"aiohttp.{type(exc).__name__}: {exc}", url)
            raise NetworkError(text) from exc

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        """orjson (a large share of each call's CPU went to the standard library's decoder); what orjson
        refuses (invalid UTF-8, which PTB decodes with replacement) gets PTB's own parser and its error.
        A sent or edited message comes back without the message it replies to and its keyboard (see
        `_without_quoted`)."""
        try:
            result = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return BaseRequest.parse_json_payload(payload)
        _without_quoted(result)
        return result  # type: ignore[no-any-return]


def _without_quoted(answer: object) -> None:
    """Drop `reply_to_message` and `reply_markup` from a method's single-object result (what sendMessage,
    sendPhoto and editMessageText return), before PTB parses it into a Message.

    Telegram echoes the whole replied-to message in the answer to every reply, and the bot replies to each
    request (its status line, the portrait); parsing that second message was about half of the cost of
    parsing the answers, the largest share of the bot's event-loop time in `bench_bot`'s profile. The
    keyboard the bot just sent comes back too: it was a third of what parsing the portrait's answer cost
    (about 100 us of 290). The bot never reads either from a message it sent. Updates (a list, from
    getUpdates) keep both: handlers read what a command replies to."""
    if isinstance(answer, dict):
        result = answer.get("result")
        if isinstance(result, dict):
            result.pop("reply_to_message", None)
            result.pop("reply_markup", None)


def _multipart(request_data: RequestData) -> aiohttp.FormData:
    """The parameters and the files as multipart/form-data, the parts HTTPXRequest sends."""
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
