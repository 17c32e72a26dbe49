"""/settings: one message with an inline keyboard, edited in place as the user taps.

Every tap is answered (Telegram shows a spinner until then), the stored settings change in one call, and
the same message is redrawn from what was stored, so the screen never shows a value that was not saved.
What a tap stores (Reset and dropping the style image included) is read from the table of user settings
(`bot.preferences`), so this handler knows no setting by name.
"""

from __future__ import annotations

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.chat.callbacks import (
    OpenMenu,
    SetOption,
    choice_keyboard,
    parse,
    settings_keyboard,
    stale_answer,
)
from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.preferences import LANGUAGE, OPTIONS_BY_CODE
from bot.replies import t
from storage import UserSettings


async def show(update: Update, context: BotContext) -> None:
    """/settings: the main screen."""
    if update.effective_user is None:
        return
    current = await context.services.store.users.get_settings(update.effective_user.id)
    await say(update, context, _title_key(current), reply_markup=settings_keyboard(current, context.lang))


async def on_button(update: Update, context: BotContext) -> None:
    """A tap on a settings screen: open a sub-screen, change one setting, or close."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    action = parse(query.data)
    if not _owner(query, user.id):
        await query.answer(t("callback.not_yours", context.lang), show_alert=True)
    elif isinstance(action, OpenMenu) and action.name == "close":
        await query.answer()
        await _edit(query, t("settings.closed", context.lang), None)
    elif isinstance(action, OpenMenu):
        current = await context.services.store.users.get_settings(user.id)
        await query.answer()
        screen = choice_keyboard(action.name, current, context.lang)
        await _edit(query, t(_title_key(current), context.lang), screen)
    elif isinstance(action, SetOption):
        current = await apply(context, user.id, action)
        await query.answer(t(OPTIONS_BY_CODE[action.field].toast_key, context.lang))
        await _edit(query, t(_title_key(current), context.lang), settings_keyboard(current, context.lang))
    else:
        await query.answer(stale_answer(context.lang))


async def apply(context: BotContext, user_id: int, option: SetOption) -> UserSettings:
    """Store one change; returns the settings as stored. The language also switches this update's replies.

    `option` came from the parser, so its field and value are in the table.
    """
    users = context.services.store.users
    changes = OPTIONS_BY_CODE[option.field].changes(option.value)
    language = changes.pop(LANGUAGE, None)
    if isinstance(language, str):
        await users.set_language(user_id, language)
        context.lang = language
    if not changes:
        return await users.get_settings(user_id)
    return await users.update_settings(user_id, **changes)


def _owner(query: CallbackQuery, user_id: int) -> bool:
    """In a group anyone can tap: only whoever sent the /settings this screen answers may use it."""
    screen = query.message
    asked = screen.reply_to_message if isinstance(screen, Message) else None
    return asked is None or asked.from_user is None or asked.from_user.id == user_id


def _title_key(current: UserSettings) -> str:
    return "settings.title_fast" if current.hyper else "settings.title"


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the settings message in place; "message is not modified" means it already shows this."""
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
