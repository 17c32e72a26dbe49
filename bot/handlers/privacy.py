"""/forgetme: a user deletes what the bot keeps about them, after confirming with a button.

Why a confirmation: the deletion cannot be undone (images, prompt, settings, history), and a command typed
by mistake must not do it. Why only in a private chat: the question and the answer are about one person's
data, and in a group anyone could read them. Why refuse while a portrait is being made: the running task
holds the user's selfie and a reserved unit; deleting under it would orphan the work, so the user waits for
it or /cancel's it first (the store checks this again inside the deleting transaction).

What stays (storage/privacy.py): the user id with the balance and the ledger's numbers, so nobody loses
credits or a day's allowance by asking to be forgotten.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.chat.callbacks import Forget, parse, stale_answer
from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.jobs.prepared import user_image_ids
from bot.replies import t
from storage import HasActiveTasks


def privacy_handlers() -> list[BaseHandler[Any, Any, Any]]:
    """The command and its buttons, for bot/app.py's list."""
    return [
        CommandHandler("forgetme", forgetme),
        CallbackQueryHandler(on_button, pattern=r"^forget:"),
    ]


async def forgetme(update: Update, context: BotContext) -> None:
    """Ask before deleting; in groups, point to the private chat."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    if chat.type != "private":
        await say(update, context, "forget.private_only")
        return
    if await context.services.store.tasks.active_for_user(user.id):
        await say(update, context, "forget.busy")
        return
    await say(update, context, "forget.confirm", reply_markup=confirm_keyboard(user.id, context.lang))


def confirm_keyboard(user_id: int, lang: str) -> InlineKeyboardMarkup:
    yes = InlineKeyboardButton(t("forget.button.yes", lang), callback_data=Forget(user_id, True).encode())
    no = InlineKeyboardButton(t("forget.button.no", lang), callback_data=Forget(user_id, False).encode())
    return InlineKeyboardMarkup([[yes, no]])


async def on_button(update: Update, context: BotContext) -> None:
    """Yes deletes (unless a portrait started meanwhile), No keeps; the question is replaced by the answer."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    action = parse(query.data)
    if not isinstance(action, Forget):
        await query.answer(stale_answer(context.lang))
        return
    if action.user_id != user.id:
        await query.answer(t("callback.not_yours", context.lang), show_alert=True)
        return
    if not action.confirm:
        await query.answer()
        await _replace(query, t("forget.kept", context.lang))
        return
    images = await user_image_ids(context.services.store, user.id)  # read before they are deleted
    try:
        await context.services.store.privacy.forget_user(user.id)
    except HasActiveTasks:
        await query.answer(t("forget.busy", context.lang), show_alert=True)
        return
    if context.services.prepared is not None:  # the prepared copies of their photos go too
        await asyncio.to_thread(context.services.prepared.forget, images)
    context.services.awaiting.pop(user.id, None)  # "the next photo is your style image" is theirs too
    await query.answer()
    await _replace(query, t("forget.done", context.lang))


async def _replace(query: CallbackQuery, text: str) -> None:
    """Edit the question into the answer, buttons gone; a second tap finds it already answered."""
    try:
        await query.edit_message_text(text, reply_markup=None)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
