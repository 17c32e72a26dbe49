"""getUpdates that confirms only what the database holds: PTB's Updater with its polling loop replaced.

Why: PTB's Updater puts a fetched batch into the Application's queue and confirms it with the next
getUpdates (offset = last + 1) while the handlers have not run yet; a process killed then loses those
updates for good. This loop stores each batch in the durable inbox (bot/ops/inbox.py, one fsynced
transaction) before it asks for the next one; if storing fails, the offset stays and Telegram sends the
batch again. Why a subclass: the Application, `run_polling`, the start and stop helpers, the poller
election and /readyz all drive an Updater (`start_polling`, `stop`, `running`), and keep doing so.

The Updater's bootstrap is kept (deleteWebhook first, with `drop_pending_updates`); errors talking to
Telegram are logged and retried with a capped back-off, as PTB's loop does; a stop cancels the long poll
and confirms what was stored, so the next poller is not handed it again (if it is, the inbox knows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
from collections.abc import Callable, Sequence
from typing import Final

import orjson
from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError
from telegram.ext import Updater

from bot.ops.inbox import Inbox

log = logging.getLogger(__name__)

#: Back-off after a failed getUpdates or a failed store: doubling from the first to the last.
BACKOFF: Final = (0.5, 30.0)

TimePeriod = int | dtm.timedelta


class InboxUpdater(Updater):
    """An Updater whose polling stores every batch in `inbox` before confirming it to Telegram."""

    def __init__(self, bot: Bot, update_queue: asyncio.Queue[object], inbox: Inbox) -> None:
        super().__init__(bot, update_queue)
        self._inbox = inbox
        self._poll: asyncio.Task[None] | None = None
        self._allowed: Sequence[str] | None = None

    async def start_polling(
        self,
        poll_interval: float = 0.0,
        timeout: TimePeriod = dtm.timedelta(seconds=10),  # noqa: ASYNC109 - getUpdates' long poll, as PTB's
        bootstrap_retries: int = 0,
        allowed_updates: Sequence[str] | None = None,
        drop_pending_updates: bool | None = None,
        error_callback: Callable[[TelegramError], None] | None = None,
    ) -> asyncio.Queue[object]:
        if self.running:
            raise RuntimeError("This Updater is already running!")
        if not self._initialized:
            raise RuntimeError("This Updater was not initialized via `Updater.initialize`!")
        self._running = True
        try:
            await self._bootstrap(
                bootstrap_retries, drop_pending_updates=drop_pending_updates, webhook_url="",
                allowed_updates=None,
            )  # fmt: skip
        except BaseException:
            self._running = False
            raise
        self._allowed = allowed_updates
        self._poll = asyncio.create_task(
            self._poll_loop(poll_interval, timeout, error_callback), name="Updater:inbox-polling"
        )
        return self.update_queue

    async def _poll_loop(
        self,
        interval: float,
        long_poll: TimePeriod,
        on_error: Callable[[TelegramError], None] | None,
    ) -> None:
        pause = BACKOFF[0]
        while self.running:
            try:
                batch = await self._fetch(long_poll)
                if batch:
                    await self._inbox.receive(batch)  # stored: only now may the next call confirm them
                    self._last_update_id = batch[-1][0].update_id + 1
            except InvalidToken:
                log.critical("Telegram refused the bot token: polling stops")
                raise
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except TelegramError as exc:
                if on_error is not None:
                    on_error(exc)
                else:
                    log.warning("getUpdates failed (%s); trying again in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF[1])
                continue
            except Exception:
                log.exception("storing fetched updates failed; Telegram keeps them, fetching again")
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF[1])
                continue
            pause = BACKOFF[0]
            if interval:
                await asyncio.sleep(interval)

    async def _fetch(self, long_poll: TimePeriod) -> list[tuple[Update, str]]:
        """One getUpdates: each update parsed, and as Telegram sent it (what the inbox stores).

        Why not `Bot.get_updates`: it returns parsed updates only, and writing each back to JSON
        (`to_dict`) was about 7 % of the bot's event-loop time in `bench_bot`'s profile. `Bot._post` is the
        step under it (defaults, the rate limiter, the request, the error mapping), so everything but the
        parsing stays PTB's; the read timeout is the long poll plus the request's own, as `get_updates`
        computes it (and the long poll goes out as PTB sends it: whole seconds as an integer, as the Bot API
        documents the field). The bot uses no arbitrary callback data, so ExtBot has nothing to insert."""
        data = {"offset": self._last_update_id, "timeout": long_poll, "allowed_updates": self._allowed}
        read_timeout = (self.bot._request[0].read_timeout or 0) + _seconds(long_poll)
        raw = await self.bot._post("getUpdates", data, read_timeout=read_timeout)
        return [(Update.de_json(item, self.bot), orjson.dumps(item).decode()) for item in raw or ()]

    async def stop(self) -> None:
        if not self.running:
            raise RuntimeError("This Updater is not running!")
        self._running = False
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError, InvalidToken):
                await self._poll
            self._poll = None
        try:  # confirm what was stored, so the next poller does not fetch it again
            await self.bot.get_updates(
                offset=self._last_update_id, timeout=0, read_timeout=2.0, allowed_updates=self._allowed
            )
        except TelegramError as exc:
            log.info("confirming the last stored updates failed (%s); the next poller gets them again", exc)


def _seconds(period: TimePeriod) -> float:
    return period.total_seconds() if isinstance(period, dtm.timedelta) else float(period)
