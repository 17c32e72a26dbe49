"""Replying from the catalogue: the only way handlers put text in front of a user.

Why one helper: every reply must be catalogue text in the caller's language, must quote the message it
answers (so in groups it is clear whom it is for), and must cope with updates that carry no message
(callbacks, edits), which `update.message` does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telegram import Message, Update

from bot.handlers.context import BotContext
from bot.replies import t
from bot.replies.errors import FriendlyError, describe
from bot.replies.timefmt import reset_time


async def say(update: Update, context: BotContext, key: str, /, **values: Any) -> Message | None:
    """Reply to the update's message with catalogue `key`; the sent message, or None if there is none."""
    message = update.effective_message
    if message is None:
        return None
    reply_markup = values.pop("reply_markup", None)
    return await message.reply_text(t(key, context.lang, **values), reply_markup=reply_markup, do_quote=True)


async def say_error(
    update: Update,
    context: BotContext,
    error: BaseException | FriendlyError,
    *,
    extras: Sequence[str] = (),
) -> Message | None:
    """Reply with what the error table says about `error` (a failure, or a reply the table already gave),
    its hint, and `extras` (finished lines, e.g. how to buy more) as further paragraphs.

    A `resets_at` value (epoch seconds) becomes `{resets}` in the reader's language and the quota zone.
    """
    message = update.effective_message
    if message is None:
        return None
    reply = error if isinstance(error, FriendlyError) else describe(error).reply
    values = dict(reply.values)
    resets_at = values.pop("resets_at", None)
    if isinstance(resets_at, int | float):
        values["resets"] = reset_time(resets_at, context.services.settings.quota_timezone, context.lang)
    paragraphs = [t(reply.key, context.lang, **values)]
    if reply.hint is not None:
        paragraphs.append(t(reply.hint, context.lang))
    paragraphs += extras
    return await message.reply_text("\n\n".join(paragraphs), do_quote=True)
