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

A handler cut off by a kill, replayed only where that is harmless. An update whose handler had started
when its process died stays `started`. It is handled again only if it is replay-safe (below) and its
claimer is provably dead (bot/ops/inbox.py: the claim names the WORKER_ID; the same id restarting, or an
id whose lock no live process holds). For every other kind the handler may already have reserved,
granted, paid or replied, and commands that cost must never run twice: at most once, kept on purpose.

Replay-safe, decided here at the claim (`replay_safe`, from the parsed update only; nothing else keeps its
payload): a new message (not edited, not a channel post, not part of an album) that is
- the text command /anime or /generate (a reply to a photo included): the task is created in one
  transaction that first looks up the request's origin key (`msg:<chat>:<message>`, bot/handlers/
  generate.py -> storage/tasks.py `create`); a repeat finds the task, reserves nothing and says nothing,
  and the runner resumes the task from the database. Before that the handler only reads settings and
  checks the replied photo (a download and a decode; the prepared copy is keyed by the file's unique id);
- a photo or document whose caption starts with /anime, /generate, /face or /style: storing the same
  file ids in the same slot again changes nothing, and /anime then goes on as above.
The gates before them upsert the user and the chat (idempotent) and may reply. So a replay may repeat a
reply ("saved", a refusal such as "no selfie yet"; never the "queued" status of a task it found), while
every effect stays exactly once. Not replay-safe, among others: admin commands (a grant would be given
twice), /buy and payments, /forgetme, /cancel, buttons (a callback answered twice fails, and settings
toggle), a photo without a caption (its slot comes from a /face or /style remembered only in the dead
process's memory), album parts (collected in memory), everything not verified above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from telegram import Message, MessageEntity, Update
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
#: Text commands whose handling is replay-safe (the rule above), and photo or document captions.
SAFE_COMMANDS: Final = frozenset({"anime", "generate"})
SAFE_CAPTIONS: Final = frozenset({"anime", "generate", "face", "style"})


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
        if not await self._inbox.claim(update.update_id, replayable=replay_safe(update)):
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


def replay_safe(update: Update) -> bool:
    """Handling `update` again after a kill cut its handler off has no second effect (the rule above)."""
    message = update.message
    if message is None or message.media_group_id is not None:
        return False
    if message.photo or message.document is not None:
        return _leading_command(message, caption=True) in SAFE_CAPTIONS
    return _leading_command(message, caption=False) in SAFE_COMMANDS


def _leading_command(message: Message, *, caption: bool) -> str | None:
    """The command the text (or caption) starts with: lower-case, without "/" and "@bot"; None if none."""
    entities = message.caption_entities if caption else message.entities
    for entity in entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            word = message.parse_caption_entity(entity) if caption else message.parse_entity(entity)
            return word[1:].partition("@")[0].lower()
    return None
