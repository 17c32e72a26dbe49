"""The last resort for exceptions no handler expected.

Why this shape: the full traceback goes to the log (redacted by bot.log's filter), a one-line alert goes
to the admin chat so someone notices, and the user gets the catalogue apology in their language. The
exception text never reaches a user (it may hold upstream messages, ids or URLs).
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, TelegramError

from bot.handlers.context import BotContext
from bot.replies import pick_language, t
from bot.replies.errors import friendly

log = logging.getLogger(__name__)


async def on_error(update: object, context: BotContext) -> None:
    """Log with traceback, alert the admin chat briefly, apologise to the user."""
    error = context.error
    where = update.update_id if isinstance(update, Update) else "background"
    log.error("unhandled %s while handling update %s", type(error).__name__, where, exc_info=error)
    if isinstance(error, Forbidden) or not isinstance(update, Update):
        return  # the user blocked us (nobody to tell), or no update to answer
    reply = friendly(error) if error is not None else friendly(RuntimeError())
    if reply.alert_admins:
        name = type(error).__name__
        try:
            notifier = context.services.notifier
            await notifier.admin_alert(f"⚠️ {name} while handling update {where}", kind=f"handler:{name}")
        except Exception:
            log.warning("could not alert the admin chat", exc_info=True)
    await _apologise(update, context, reply.key)


async def _apologise(update: Update, context: BotContext, key: str) -> None:
    lang = await _language(update, context)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(t(key, lang), show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(t(key, lang))
    except TelegramError:
        log.warning("could not apologise for update %s", update.update_id, exc_info=True)


async def _language(update: Update, context: BotContext) -> str:
    """The user's chosen language; their client's if the store is what just failed."""
    user = update.effective_user
    if user is None:
        return pick_language(None)
    try:
        account = await context.services.store.users.get(user.id)
    except Exception:
        account = None
    return pick_language(account.language if account is not None else user.language_code)
