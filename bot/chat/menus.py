"""The command menus per scope and language, and the bot's descriptions: what Telegram shows before a
user types anything.

Why per scope: a group member should see the commands that work in groups (not /settings or /buy, which
are private), owners should find their admin commands in their own chat with the bot, and everyone else
should not see admin commands at all (they would only get "unknown command"). Telegram picks the most
specific scope: the owner's chat (BotCommandScopeChat), then all group chats, then the default (private
chats). Each is set per language, English as the default for every other client language.

An owner who never opened the bot has no chat Telegram knows ("chat not found"): their menu is skipped
with a warning, and set again at the next start.
"""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)
from telegram.error import TelegramError

from bot.config import Settings
from bot.replies import LANGUAGES, t

log = logging.getLogger(__name__)

#: Private chats, in this order; the growth commands only when their feature is on.
USER_COMMANDS = ("anime", "settings", "prompt", "style", "face", "quota", "history", "cancel", "lang", "help")
#: What works in a group (a reply to a photo with /anime, the group's own settings, one's quota).
GROUP_COMMANDS = ("anime", "group", "quota", "help")
ADMIN_COMMANDS = ("stats", "grant", "setdaily", "ban", "unban", "audit", "admin")
PAYMENT_ADMIN_COMMANDS = ("payments", "refund")


def user_commands(settings: Settings) -> tuple[str, ...]:
    extra: list[str] = []
    if settings.credit_packs:
        extra += ["buy", "paysupport"]
    if settings.referral_bonus:
        extra.append("invite")
    return (*USER_COMMANDS[:-1], *extra, USER_COMMANDS[-1])


def admin_commands(settings: Settings) -> tuple[str, ...]:
    payments = PAYMENT_ADMIN_COMMANDS if settings.credit_packs else ()
    return (*user_commands(settings), *ADMIN_COMMANDS, *payments)


def scoped_menus(settings: Settings) -> list[tuple[BotCommandScope, tuple[str, ...]]]:
    menus: list[tuple[BotCommandScope, tuple[str, ...]]] = [
        (BotCommandScopeDefault(), user_commands(settings)),
        (BotCommandScopeAllGroupChats(), GROUP_COMMANDS),
    ]
    owners = sorted(settings.admin_ids)
    menus.extend((BotCommandScopeChat(owner), admin_commands(settings)) for owner in owners)
    return menus


async def publish(bot: Bot, settings: Settings) -> None:
    """Every scope's menu and the descriptions, in English (default) and each other catalogue language."""
    for lang in LANGUAGES:
        code = None if lang == "en" else lang
        for scope, names in scoped_menus(settings):
            commands = [BotCommand(name, t(f"command.{name}", lang)) for name in names]
            try:
                await bot.set_my_commands(commands, scope=scope, language_code=code)
            except TelegramError as exc:
                if not isinstance(scope, BotCommandScopeChat):
                    raise
                log.warning("no admin menu for %s yet (%s): they have not opened the bot", scope.chat_id, exc)
        await bot.set_my_description(t("bot.description", lang), language_code=code)
        await bot.set_my_short_description(t("bot.short_description", lang), language_code=code)
