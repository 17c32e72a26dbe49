"""Turning a chat request into a durable task: the one path shared by /anime, captions, albums and buttons.

Why handlers never generate: generation takes a minute, and a handler must answer in milliseconds. So the
request becomes a stored task (quota reserved in the same transaction), the user gets a status message the
runner will keep editing, and the runner takes it from there. The task's `origin_key` (the message or the
callback that asked) makes a re-delivered update find the existing task instead of charging twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from telegram import Update
from telegram.constants import ChatType

from bot.chat.progress import queue_text, status_text
from bot.handlers.context import BotContext
from bot.handlers.payments import quota_exhausted_extras
from bot.handlers.prompt import visible_words
from bot.handlers.reply import say, say_error
from bot.jobs.params import PromptTooLong, build_params
from storage import GroupCapReached, NewTask, QuotaExhausted, Task, TooManyActiveTasks

log = logging.getLogger(__name__)

GROUP_CHATS = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})


@dataclass(frozen=True)
class Request:
    """What to generate: the images (Telegram file ids) and the params persisted with the task."""

    face_file_id: str
    style_file_id: str | None
    params: dict[str, object]


async def request_from_settings(
    update: Update, context: BotContext, *, prompt_override: str | None = None, face: str | None = None
) -> Request | None:
    """The stored selfie, style and settings as a Request; None (after telling the user why) if unusable.

    `face` (a file id) replaces the stored selfie for this request only: `/anime` replying to a photo.
    Words with nothing visible in them (zero-width characters, control characters) are no words: the
    stored /prompt applies, as for a bare `/anime`.
    """
    if prompt_override is not None:
        prompt_override = visible_words(prompt_override) or None
    user = update.effective_user
    if user is None:
        return None
    settings = await context.services.store.users.get_settings(user.id)
    if face is not None:
        settings = replace(settings, selfie_file_id=face)
    if not settings.selfie_file_id:
        await say(update, context, "generate.no_selfie")
        return None
    try:
        params = build_params(
            settings,
            has_style=settings.style_file_id is not None,
            prompt_override=prompt_override,
            max_prompt_length=context.services.settings.max_prompt_length,
        )
    except PromptTooLong as exc:
        await say_error(update, context, exc)
        return None
    return Request(settings.selfie_file_id, settings.style_file_id, params)


async def submit(update: Update, context: BotContext, request: Request, *, origin_key: str) -> None:
    """Create the task (deduplicated by origin_key), post its status message, hand it to the runner."""
    user, chat, message = update.effective_user, update.effective_chat, update.effective_message
    if user is None or chat is None or message is None:
        return
    services = context.services
    new = NewTask(
        user_id=user.id,
        chat_id=chat.id,
        origin_key=origin_key,
        request_message_id=message.message_id,
        face_file_id=request.face_file_id,
        style_file_id=request.style_file_id,
        params=request.params,
        charge_chat_id=chat.id if chat.type in GROUP_CHATS else None,  # counts against the group's cap
        max_active_per_user=services.settings.max_active_tasks_per_user,
    )
    task = await _create(update, context, new)
    if task is None:
        return
    # In a long line the first status already says the place and the wait: no edit needed to learn it.
    place = services.runner.estimate_new(chat.id)
    try:
        text = status_text("queued", context.lang, 0.0)
        if place is not None:
            text = queue_text(place.position, place.minutes, context.lang)
        status = await message.reply_text(text, do_quote=True)
        # Display only (no fsync): lost to a power cut, the status simply is not edited.
        task = await services.store.tasks.update(task.id, status_message_id=status.message_id, durable=False)
    finally:
        # Even if the status message failed (user blocked us...), the runner must settle the task and refund.
        services.runner.enqueue(task, shown=place)


async def _create(update: Update, context: BotContext, new: NewTask) -> Task | None:
    """The new task; None when it was refused (the user is told why) or already exists (re-delivery)."""
    try:
        task, created = await context.services.store.tasks.create(new)
    except (QuotaExhausted, TooManyActiveTasks, GroupCapReached) as refused:
        extras = []
        if isinstance(refused, QuotaExhausted):  # where more portraits come from, when there is a way
            extras = quota_exhausted_extras(context.services.settings, context.lang)
        await say_error(update, context, refused, extras=extras)
        return None
    if not created:
        log.info("task %s already exists for %s: update re-delivered", task.id, new.origin_key)
        return None
    log.info("task %s created for user %s in chat %s (%s)", task.id, new.user_id, new.chat_id, new.origin_key)
    return task
