"""Downloading and checking received images with bounded memory, however many arrive at once.

Why a bound: files are free for users to send (forwarding a hundred 19 MB files costs them nothing), and
before this each upload was downloaded whole inside its own handler, with no limit on how many ran at once,
so a burst held gigabytes in memory. Now:

- sizes are read from metadata first (`file_size` in the update, then in getFile's answer): anything over
  the 20 MB Bot API download limit is refused before a byte is fetched;
- at most `limit` images are in hand at once in the whole process (a semaphore around download *and*
  decode, since both hold the bytes); the others wait holding nothing;
- the body is streamed and counted: a file with no size in its metadata (or a self-hosted Bot API server,
  which serves bigger files) is cut off one chunk past the limit; the first bytes are sniffed and a
  non-image is dropped without reading the rest;
- a download that drips slowly is given up after `deadline` seconds, so it cannot hold a slot forever.

So the bytes held by downloads never exceed `limit` × 20 MB (plus one chunk each, and the growing buffer's
slack); the memory test checks the whole process stays under (limit + 1) × 20 MB while a hundred 19 MB
files arrive at once. `held` / `peak_held` count the bytes received and not yet given back.

The file's URL holds the bot token: it is never logged, and errors are reported by type only.

The body comes over aiohttp (C-parsed HTTP, a fraction of httpx's CPU per download: bench_bot), through
the same proxy as the Bot API's requests; with TELEGRAM_HTTP=httpx or a socks5 proxy, over httpx
(bot/proxy.py decides).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import aiohttp
import httpx
from telegram import Bot
from telegram.constants import FileSizeLimit
from telegram.error import BadRequest, TelegramError

from api_client.errors import ImageRejected
from api_client.images import check_image, sniff_format
from bot.chat.botapi import ssl_context
from bot.config_values import TelegramHttp
from bot.jobs.prepared import PreparedCache

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES: Final = int(FileSizeLimit.FILESIZE_DOWNLOAD)  # getFile refuses more (public Bot API)
SNIFF_BYTES: Final = 32  # enough for every signature sniff_format knows
DEFAULT_DEADLINE: Final = 60.0
CONNECT_TIMEOUT: Final = 10.0
READ_TIMEOUT: Final = 30.0  # between two reads

#: (status, Content-Length as sent or "", the body's chunks as they arrive)
Opened = tuple[int, str, AsyncIterator[bytes]]


class DownloadFailed(Exception):
    """Telegram could not give us the file right now (network, 5xx, an expired file id): try again."""


class ImageDownloads:
    """The process-wide bound on images being downloaded and checked; one per Application."""

    def __init__(
        self,
        limit: int,
        *,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
        deadline: float = DEFAULT_DEADLINE,
        prepared: PreparedCache | None = None,
        http: TelegramHttp = "aiohttp",
        proxy: str | None = None,
    ) -> None:
        """`prepared`: where the decoded image is kept, prepared for the service (bot.jobs.prepared);
        `http` and `proxy`: how the Bot API is reached (bot/proxy.py `telegram_downloads`)."""
        self.limit = limit
        self.prepared = prepared
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.http = http
        self.proxy = proxy
        self._slots = asyncio.Semaphore(limit)
        self._client: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self.active = 0
        self.peak_active = 0
        self.held = 0
        self.peak_held = 0

    async def check(
        self, bot: Bot, file_id: str, declared_size: int | None, *, unique_id: str | None = None
    ) -> tuple[int, int]:
        """Download `file_id` and decode it fully (in a thread), at most `limit` at a time.

        ImageRejected (too_large, not_image, bomb, too_small) for what the user must change; DownloadFailed
        when Telegram could not deliver the file. Returns the decoded, fitted size. With a prepared-image
        cache and the file's unique id, the decoded image is also prepared for the service and kept there,
        so no generation downloads or decodes it again.
        """
        if declared_size is not None and declared_size > self.max_bytes:
            raise _too_large()
        async with self._slot() as hold:
            raw = await self._fetch(bot, file_id, hold)
            if self.prepared is not None and unique_id:
                return await asyncio.to_thread(self.prepared.keep_upload, raw, file_id, unique_id)
            return await asyncio.to_thread(check_image, raw)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        session, self._session = self._session, None
        if client is not None:
            await client.aclose()
        if session is not None:
            await session.close()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[_Holding]:
        async with self._slots:
            holding = _Holding(self)
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            try:
                yield holding
            finally:
                self.active -= 1
                holding.release()

    async def _fetch(self, bot: Bot, file_id: str, hold: _Holding) -> bytes:
        url = await self._file_url(bot, file_id)
        try:
            async with asyncio.timeout(self.deadline):
                return await self._stream(url, hold)
        except (aiohttp.ClientError, httpx.HTTPError, TimeoutError) as exc:
            log.warning("downloading a file failed: %s", type(exc).__name__)
            raise DownloadFailed(type(exc).__name__) from None

    async def _file_url(self, bot: Bot, file_id: str) -> str:
        """getFile: the download URL (PTB prefixes the file base URL), refusing what is too large."""
        try:
            file = await bot.get_file(file_id)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise _too_large() from None
            log.warning("getFile refused a file: %s", exc.message)
            raise DownloadFailed("getFile refused") from None
        except TelegramError as exc:
            log.warning("getFile failed: %s", type(exc).__name__)
            raise DownloadFailed(type(exc).__name__) from None
        if file.file_size is not None and file.file_size > self.max_bytes:
            raise _too_large()
        url = file.file_path or ""
        if not url.startswith(("http://", "https://")):
            raise DownloadFailed("no download URL (a local Bot API server path)")
        return url

    async def _stream(self, url: str, hold: _Holding) -> bytes:
        """The body, never more than max_bytes + one chunk; a non-image stops after its first bytes.

        Collected in a BytesIO: it grows in place, and getvalue() hands over that same buffer instead of a
        copy, so a finished file is held once, never twice (a list of chunks joined at the end would
        hold it twice for a moment)."""
        body, head = io.BytesIO(), b""
        async with self._open(url) as (status, length, chunks):
            if status != httpx.codes.OK:
                raise DownloadFailed(f"HTTP {status}")
            if length.isdigit() and int(length) > self.max_bytes:
                raise _too_large()
            async for chunk in chunks:
                hold.add(len(chunk))
                if hold.size > self.max_bytes:
                    raise _too_large()
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) == SNIFF_BYTES and sniff_format(head) is None:
                        raise ImageRejected("not an image", reason="not_image")
                body.write(chunk)
        return body.getvalue()

    @asynccontextmanager
    async def _open(self, url: str) -> AsyncIterator[Opened]:
        """A GET of `url`, its body not read yet; no redirects, no cookies."""
        if self.http == "httpx":
            if self._client is None:
                self._client = httpx.AsyncClient(
                    timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                    follow_redirects=False,
                    proxy=self.proxy,
                )
            async with self._client.stream("GET", url) as response:
                yield response.status_code, response.headers.get("content-length", ""), response.aiter_bytes()
            return
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl_context()),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # the proxy was chosen once, with the Bot API's (bot/proxy.py)
                timeout=timeout,
            )
        async with self._session.get(url, allow_redirects=False, proxy=self.proxy) as response:
            yield response.status, response.headers.get("Content-Length", ""), response.content.iter_any()


class _Holding:
    """The bytes one download holds, added to its owner's `held` and given back when its slot ends."""

    def __init__(self, owner: ImageDownloads) -> None:
        self._owner = owner
        self.size = 0

    def add(self, count: int) -> None:
        self.size += count
        self._owner.held += count
        self._owner.peak_held = max(self._owner.peak_held, self._owner.held)

    def release(self) -> None:
        self._owner.held -= self.size
        self.size = 0


def _too_large() -> ImageRejected:
    return ImageRejected("file is over the 20 MB Bot API download limit", reason="too_large")
