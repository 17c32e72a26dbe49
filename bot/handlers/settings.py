"""/settings: one message with an inline keyboard, edited in place as the user taps.

Every tap is answered (Telegram shows a spinner until then), the stored settings change in one call, and
the same message is redrawn from what was stored, so the screen never shows a value that was not saved.
"""

from __future__ import annotations

from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.chat.callbacks import (
    SIZES,
    OpenMenu,
    SetOption,
    choice_keyboard,
    parse,
    settings_keyboard,
    stale_answer,
)
from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.replies import t
from storage import UserSettings

# What "Reset" restores: the look of the result and how it arrives. Images and the prompt are the user's
# content and stay; so does the language, which is how the user reads everything else.
RESETTABLE = (
    "preset", "width", "height", "seed", "hyper", "identity",
    "watermark", "watermark_language", "full_size_file",
)  # fmt: skip


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
        await query.answer(t("settings.saved", context.lang))
        await _edit(query, t(_title_key(current), context.lang), settings_keyboard(current, context.lang))
    else:
        await query.answer(stale_answer(context.lang))


async def apply(context: BotContext, user_id: int, option: SetOption) -> UserSettings:
    """Store one change; returns the settings as stored. `lang` also switches this update's language."""
    users = context.services.store.users
    if option.field == "lang":
        await users.set_language(user_id, option.value)
        context.lang = option.value
        return await users.get_settings(user_id)
    return await users.update_settings(user_id, **_changes(option))


def _changes(option: SetOption) -> dict[str, Any]:
    value = option.value
    if option.field == "size":
        width, height = SIZES[value]
        return {"width": width, "height": height}
    if option.field == "reset":
        defaults = UserSettings()
        return {name: getattr(defaults, name) for name in RESETTABLE}
    changes: dict[str, dict[str, Any]] = {
        "preset": {"preset": value},
        "id": {"identity": value},
        "hyper": {"hyper": value == "on"},
        "wm": {"watermark": value == "on"},
        "wml": {"watermark_language": 0 if value == "zh" else 1},
        "full": {"full_size_file": value == "always"},
    }
    return changes[option.field]


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
