"""Runs before every other handler (group -1): drop edits, hold each sender to their update budget, stop
posts made on behalf of a chat, record the user, pick their language, stop banned users, and never run a
command someone else wrote (forwarded).

Why one gate: "every update upserts the user", "banned users get one clear message and nothing else" and
"an edited message is never acted on" must hold for every command, photo and button, including ones added
later (groups, admin). Doing it here means no handler can forget, and later handlers read `context.account`
/ `context.lang` for free.

A banned user's service messages (they upgraded a group to a supergroup, added the bot) go through: only
what users author (commands, text, photos, buttons) is stopped.

Edits: PTB's CommandHandler also matches edited messages, so fixing a typo in `/grant @ann 5` would grant
again, an edited `/cancel` would cancel whatever runs now. The bot answers what was sent, never an edit.

Forwarded commands and posts as a group or channel: bot/handlers/senders.py says why they are stopped here.
The update budget (bot/handlers/flood.py) comes first, so a flood costs no database write and no reply
beyond one "slow down".
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop, filters

from bot.handlers import flood, senders
from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.replies import pick_language, t


async def admit(update: Update, context: BotContext) -> None:
    """Upsert the sender; a banned sender hears why once per attempt and nothing else happens."""
    if is_edit(update):
        raise ApplicationHandlerStop
    service = is_service(update)
    if not service:
        await flood.enforce(update, context)
        await senders.refuse_chat_senders(update, context)
    user = update.effective_user
    if user is None or user.is_bot:
        return
    account = await context.services.store.users.upsert_seen(
        user.id, username=user.username, first_name=user.first_name, language_code=user.language_code
    )
    context.account = account
    context.lang = pick_language(account.language)
    if service:
        return
    if account.banned:
        if update.callback_query is not None:
            await update.callback_query.answer(t("banned", context.lang), show_alert=True)
        elif _addressed_to_us(update):
            await say(update, context, "banned")
        raise ApplicationHandlerStop
    await senders.refuse_forwarded_command(update, context)


def is_edit(update: Update) -> bool:
    """An edited message or post (in any chat type): never acted on."""
    return any(
        edited is not None
        for edited in (update.edited_message, update.edited_channel_post, update.edited_business_message)
    )


def is_service(update: Update) -> bool:
    """Membership changes and service messages (a group's migration, members joining): the sender's ban is
    about what they ask of the bot, not about the group's bookkeeping, which must not be lost with them."""
    if update.my_chat_member is not None or update.chat_member is not None:
        return True
    return bool(filters.StatusUpdate.ALL.check_update(update))


def _addressed_to_us(update: Update) -> bool:
    """Private messages, and commands in groups: other group chatter from a banned user is ignored."""
    message = update.effective_message
    if message is None:
        return False
    text = message.text or message.caption or ""
    return message.chat.type == "private" or text.startswith("/")
