"""The HTTP transports `PortraitClient` can send through, and the choice of the default.

Decision: the default is `"aiohttp"`, `AiohttpTransport`, over an `aiohttp` connection pool. Measured with
`benchmarks/bench_client.py` (300 submit+poll tasks of photo-sized images, 100 in flight, polling every
0.2 s, a signature-checking upstream in its own process, each client in its own process; one run on a
2-core machine, 2026-12-06), CPU per finished task against the official SDK with 100 threads:

    aiohttp, PortraitClient's direct path (`exchange`), uvloop    0.20x   <- the default
    the same on asyncio's own loop                                 0.22x
    httpx-aiohttp (the same engine behind httpx Request/Response)  0.27x
    httpx's own transport (httpcore + anyio), uvloop / asyncio     0.81x / 0.82x

httpcore's pure-Python HTTP/1.1 state machine and anyio's per-read machinery are most of the difference;
aiohttp parses HTTP in C. Through httpx's transport interface, pyreqwest (Rust) cost about the same CPU
per call as aiohttp and curl-cffi (`httpx-curl-cffi`) ~1.6x; neither has a lower-level path to add.
uvloop moved the figure by a few per cent at most (within a shared machine's noise); it costs nothing.
`httpx-aiohttp` itself is not used: it maps a dropped connection to `httpx.ConnectTimeout`, a
connect-phase error after which a billed submit would be resent; the mapping here keeps "surely never
sent" (`ConnectError`, `ConnectTimeout`, `UnsupportedProtocol`) apart from everything that may have
reached the service.

`"httpx"` (httpx's `AsyncHTTPTransport`) stays available: it honours `write` timeouts and SOCKS proxies,
which aiohttp lacks. Any `httpx.AsyncBaseTransport` may be passed instead of a name (tests use
`httpx.MockTransport` and `httpx.ASGITransport`): `exchange_for` sends through its
`handle_async_request`.

Both named transports read `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` once, for the one endpoint the
client talks to (httpx's client did the same through `trust_env`). aiohttp's own `trust_env` is left off:
it would look up `~/.netrc` in a thread on every request and could put Basic credentials over our
signature.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, get_args
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TRANSPORT",
    "AiohttpTransport",
    "Answer",
    "Exchange",
    "TransportName",
    "env_proxy",
    "exchange_for",
    "make_transport",
]

TransportName = Literal["aiohttp", "httpx"]
TRANSPORT_NAMES: Final[tuple[str, ...]] = get_args(TransportName)
DEFAULT_TRANSPORT: Final[TransportName] = "aiohttp"
#: One endpoint, at most a few dozen calls in flight: a small pool. An idle connection is dropped after 4 s,
#: below the 5 s after which common servers (uvicorn, gunicorn) close one: reusing a connection the server
#: is closing fails the request midway, and for a submit that means "may have been billed, never resent"
#: (bench_bot saw 1 in 200 submits end so after an idle spell). Polling keeps busy connections warm.
DEFAULT_LIMITS: Final = httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=4.0)

_HTTP11: Final = {"http_version": b"HTTP/1.1"}



@cache
def _errors() -> tuple[tuple[type[BaseException], type[httpx.TransportError]], ...]:
    """aiohttp failure -> httpx error, most specific first. Only the first kinds are "connect phase"
    (errors.error_from_transport): raised before a byte of the request could have been written.
    (aiohttp is imported on first use: it takes ~0.2 s, which every `portrait-bot admin` run would pay.)"""
    import aiohttp

    return (
        (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake, proxy connect
        (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # connecting, or waiting for a pooled one
        (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
        (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
        (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
        (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
        (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
        (aiohttp.ClientOSError, httpx.ReadError),  # reset while writing or reading
        (aiohttp.ClientError, httpx.TransportError),
    )


def _aiohttp() -> Any:
    """The aiohttp module (imported by the first session; by then this is a dictionary look-up)."""
    import aiohttp

    return aiohttp


@cache
def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default (the same CA bundle as its transport), made once: loading it takes ~0.1 s."""
    return httpx.create_ssl_context()


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`*_PROXY`, `NO_PROXY`), or None."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all") or None


def _map_error(exc: BaseException, request: httpx.Request | None) -> httpx.TransportError:
    for source, target in _errors():
        if isinstance(exc, source):
            return target(f"{type(exc).__name__}: {exc}", request=request)
    return httpx.TransportError(f"{type(exc).__name__}: {exc}", request=request)  # pragma: no cover


class Answer(NamedTuple):
    """An HTTP answer read whole: status, case-insensitive headers, the decoded body."""

    status: int
    headers: Mapping[str, str]
    content: bytes


#: `exchange(method, url, headers, body, timeouts)`: one request, its answer read whole.
Exchange = Callable[
    [str, httpx.URL, list[tuple[str, str]], bytes, Mapping[str, float | None]], Awaitable[Answer]
]


def exchange_for(transport: httpx.AsyncBaseTransport) -> Exchange:
    """`transport`'s own `exchange` (AiohttpTransport), else one through `handle_async_request`."""
    if isinstance(transport, AiohttpTransport):
        return transport.exchange

    async def through_httpx(
        method: str, url: httpx.URL, headers: list[tuple[str, str]], body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> Answer:
        request = httpx.Request(method, url, headers=headers, content=body, extensions={"timeout": timeouts})
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return Answer(response.status_code, response.headers, response.content)

    return through_httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one `aiohttp.ClientSession`, HTTP/1.1 with keep-alive.

    The session is made on first use, inside the running event loop (aiohttp binds it to that loop), and
    closed by `aclose()`. Each answer is read whole before it is returned (this API's answers are JSON of
    at most a few MB), so the connection goes back to the pool at once and httpx gets the body as one
    bytes object, without re-chunking. Timeouts come from the request's `timeout` extension: `connect` is
    aiohttp's `sock_connect`, `pool` + `connect` bound getting a connection, `read` is `sock_read`; aiohttp
    has no write timeout. Content-Encoding is left to httpx's decoders, as with httpx's own transport.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: str | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.limits = limits
        self.proxy = proxy
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:
        return f"AiohttpTransport(limits={self.limits!r}, proxy={'set' if self.proxy else None})"

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        ssl_context: ssl.SSLContext | bool
        if isinstance(self._verify, ssl.SSLContext) or not self._verify:
            ssl_context = self._verify
        else:
            ssl_context = _default_ssl_context()
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=ssl_context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # an API client keeps no cookies
            auto_decompress=False,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _timeout(self, timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
        connect, read, pool = timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool")
        key = (connect, read, pool)
        cached = self._timeouts.get(key)
        if cached is None:
            acquire = None if connect is None or pool is None else connect + pool
            cached = _aiohttp().ClientTimeout(
                total=None, connect=acquire, sock_connect=connect, sock_read=read
            )
            if len(self._timeouts) < 16:
                self._timeouts[key] = cached
        return cached

    async def exchange(
        self, method: str, url: httpx.URL, headers: list[tuple[str, str]], body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> Answer:
        """One request without httpx's Request/Response objects (PortraitClient's path: it saves ~80 us of
        a ~0.7 ms call). aiohttp decodes any Content-Encoding here; errors are mapped as in
        `handle_async_request`."""
        session = self._session
        if session is None or session.closed:
            session = self._open()
        try:
            async with session.request(
                method, str(url), headers=headers, data=body or None, allow_redirects=False,
                auto_decompress=True, timeout=self._timeout(timeouts), proxy=self.proxy,
            ) as answer:
                return Answer(answer.status, answer.headers, await answer.read())
        except _aiohttp().ClientError as exc:
            raise _map_error(exc, None) from exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None or session.closed:
            session = self._open()
        body = await request.aread()
        encoding = request.headers.encoding
        headers = [(name.decode(encoding), value.decode(encoding)) for name, value in request.headers.raw]
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                proxy=self.proxy,
            ) as answer:
                content = await answer.read()
                status, raw_headers, reason = answer.status, answer.raw_headers, answer.reason
        except _aiohttp().ClientError as exc:
            raise _map_error(exc, request) from exc
        extensions: dict[str, object] = dict(_HTTP11)
        if reason:
            extensions["reason_phrase"] = reason.encode("ascii", "replace")
        return httpx.Response(status, headers=list(raw_headers), content=content, extensions=extensions)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def make_transport(
    name: TransportName = DEFAULT_TRANSPORT,
    *,
    endpoint: str,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.AsyncBaseTransport:
    """A fresh transport of the named kind for a client of `endpoint` (proxy read from the environment)."""
    proxy = env_proxy(endpoint)
    if name == "aiohttp":
        return AiohttpTransport(limits=limits, proxy=proxy)
    if name == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, proxy=proxy)
    raise ValueError(f"unknown transport {name!r}: choose one of {', '.join(TRANSPORT_NAMES)}")
