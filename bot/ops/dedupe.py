"""Each Telegram update is handled once, whichever process gets it and however often it comes.

Why: Telegram re-delivers a webhook update whose answer was slow or failed, a load balancer may hand the
same update to two processes, and a poller killed before confirming its updates gets them again. The first
handler group records the update_id in the database (storage/updates.py); an update already recorded is
stopped before any other handler sees it. The check runs when the update is processed, not when the
webhook receives it, so the webhook still answers Telegram at once.

A process that dies between recording an update and handling it loses that update: once Telegram had its
200 it would not have sent it again anyway, and "at most once" is the safe side for commands that cost.
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
from storage import Store

log = logging.getLogger(__name__)

#: The handler group: before the payments (-4) and everything else.
GROUP: Final = -5
#: How often old rows are pruned (storage/updates.py keeps a day).
PRUNE_EVERY_SECONDS: Final = 3600.0


class UpdateOnce:
    """The gate's state: when the table was last pruned (pruning runs in the background, hourly)."""

    def __init__(self) -> None:
        self._pruned_at = 0.0
        self._pruning: asyncio.Task[None] | None = None

    def handler(self) -> TypeHandler[Update, BotContext, None]:
        return TypeHandler(Update, self.check)

    async def check(self, update: Update, context: BotContext) -> None:
        store = context.services.store
        if not await store.updates.first_seen(update.update_id):
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
        log.info("pruned %d processed update(s) older than a day", gone)


def update_kind(update: Update) -> str:
    """The update's field name (message, edited_message, callback_query, ...), as Telegram names it."""
    kinds = (str(kind) for kind in Update.ALL_TYPES)
    return next((kind for kind in kinds if getattr(update, kind, None) is not None), "unknown")
