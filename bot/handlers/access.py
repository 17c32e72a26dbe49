"""Private mode (ALLOWED_USERS / ALLOWED_CHATS): strangers get one polite refusal and nothing is stored.

Why a handler of its own, in group -3 (before the group gate and the user gate): those gates record what
they see (the group gate stores the chat, the user gate upserts the user), and private mode promises that
nothing about a stranger is kept. So this runs first, reads only the settings, and stops the update. (The
update itself waits in the inbox until the claim just before this gate, which clears it; only its id
stays, for a day: bot/ops/dedupe.py.)

Who is admitted: bot owners (ADMIN_IDS), users named in ALLOWED_USERS (id or @username), and anyone in a
chat named in ALLOWED_CHATS (so a team's group can use the bot without listing every member). A stranger
hears the refusal where they addressed the bot (a private message, a command in a group, a button);
other group chatter and edits are dropped silently, so the bot never spams a group it was added to.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.config import Settings
from bot.handlers.context import BotContext
from bot.handlers.gate import is_edit
from bot.replies import pick_language, t


def is_allowed(update: Update, settings: Settings) -> bool:
    """True when private mode is off or the update's user or chat is on the lists."""
    if not settings.private_mode:
        return True
    user, chat = update.effective_user, update.effective_chat
    if user is not None and (
        user.id in settings.admin_ids or settings.allowed_users.admits(user.id, user.username)
    ):
        return True
    return chat is not None and settings.allowed_chats.admits(chat.id, chat.username)


async def guard(update: Update, context: BotContext) -> None:
    """Stop every update from a stranger; answer the ones that expect an answer."""
    if is_allowed(update, context.services.settings):
        return
    user = update.effective_user
    lang = pick_language(user.language_code if user is not None else None)
    text = t("private.refused", lang)
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif not is_edit(update) and _addressed(update, context.bot.username or ""):
        message = update.effective_message
        assert message is not None
        await message.reply_text(text, do_quote=True)
    raise ApplicationHandlerStop


def _addressed(update: Update, bot_username: str) -> bool:
    """A private message, or a command in a group (the group gate decides which commands are ours later,
    but a stranger's `/anime@OtherBot` is none of our business either way)."""
    message = update.message
    if message is None or update.effective_user is None:
        return False
    if message.chat.type == "private":
        return True
    text = message.text or message.caption or ""
    if not text.startswith("/"):
        return False
    target = text.split()[0].partition("@")[2].lower()
    return not target or target == bot_username.lower()
