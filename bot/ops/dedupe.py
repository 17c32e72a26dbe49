"""Each Telegram update is handled once, whichever process gets it and however often it comes, and none
is lost with a killed process.

Why: Telegram re-delivers a webhook update whose answer was slow or failed, a load balancer may hand the
same update to two processes, and a poller killed before confirming its updates gets them again. And
Telegram forgets an update for good once it is confirmed, so one held only in memory dies with its process.

Decision, the durable inbox (bot/ops/inbox.py over storage/updates.py): every update is stored in the
database (raw JSON, state `received`) before Telegram is told it arrived: the poller (bot/ops/polling.py)
stores each getUpdates batch in one transaction and only then asks for the next batch with the advanced
offset; the webhook (bot/ops/webhook.py) stores the update before answering 200. This handler group, the
first, claims it (`received` -> `started`, one statement, so exactly one process wins); an update some
process already claimed is stopped before any other handler sees it. When the handlers are done the row
becomes `handled`. Rows nobody claimed (the receiver died with them queued) are replayed through the same
claim by any process: all of them at start-up, then those older than a few seconds, periodically.

At most once, kept on purpose: an update whose handler had started when its process died is never
replayed (its row stays `started`), since the handler may already have reserved a unit or replied, and
commands that cost must never run twice. The window is the handler's own run (a few transactions) instead
of everything between the fetch and the handler; the crash soak (tests/e2e/test_crash_soak.py) counts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from telegram import Update
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.handlers.context import BotContext
from bot.ops import metrics
from bot.ops.inbox import Inbox
from storage import Store

log = logging.getLogger(__name__)

#: The handler group: before the payments (-4) and everything else.
GROUP: Final = -5
#: How often old rows are pruned (storage/updates.py keeps a day).
PRUNE_EVERY_SECONDS: Final = 3600.0


class UpdateOnce:
    """The gate: claims each update through the inbox; prunes the table in the background, hourly."""

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._pruned_at = 0.0
        self._pruning: asyncio.Task[None] | None = None

    def handler(self) -> TypeHandler[Update, BotContext, None]:
        return TypeHandler(Update, self.check)

    async def check(self, update: Update, context: BotContext) -> None:
        store = context.services.store
        if not await self._inbox.claim(update.update_id):
            metrics.duplicate_update()
            log.info("update %d was already taken; dropped", update.update_id)
            raise ApplicationHandlerStop
        metrics.update_taken(update_kind(update))
        self._maybe_prune(store)

    def _maybe_prune(self, store: Store) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_SECONDS or (self._pruning and not self._pruning.done()):
            return
        self._pruned_at = now
        self._pruning = asyncio.create_task(_prune(store), name="prune-processed-updates")


async def _prune(store: Store) -> None:
    try:
        gone = await store.updates.prune()
    except Exception:
        log.warning("pruning processed updates failed", exc_info=True)
        return
    if gone:
        log.info("pruned %d stored update(s) older than a day", gone)


def update_kind(update: Update) -> str:
    """The update's field name (message, edited_message, callback_query, ...), as Telegram names it."""
    kinds = (str(kind) for kind in Update.ALL_TYPES)
    return next((kind for kind in kinds if getattr(update, kind, None) is not None), "unknown")
