"""Who may do what: bot owners and admins, and chat admins of a group.

Why here and not in each handler: a refusal must look the same everywhere (a stranger learns nothing), and
the group-admin check costs a Bot API call, so it is cached in one place. Owners come from configuration
(ADMIN_IDS) and cannot be demoted from chat; admins are a stored role that owners hand out.

Chat-admin answers are cached for `ttl` seconds (default 60) per (chat, user) on an injected monotonic
clock: long enough that a burst of `/group` commands costs one getChatMember, short enough that a demoted
admin loses the right within a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telegram import Chat, ChatMember, Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from storage import Role

if TYPE_CHECKING:
    from bot.handlers.context import BotContext

log = logging.getLogger(__name__)

CACHE_KEY = "chat_admin_cache"
ADMIN_STATUSES = frozenset({ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER})


def is_owner(context: BotContext, user_id: int) -> bool:
    return user_id in context.services.settings.admin_ids


def is_bot_admin(context: BotContext, user_id: int) -> bool:
    """Owners always; otherwise the stored role of this update's (not banned) user."""
    if is_owner(context, user_id):
        return True
    account = context.account
    return (
        account is not None
        and account.id == user_id
        and not account.banned
        and account.role in (Role.ADMIN, Role.OWNER)
    )


class ChatAdminCache:
    """getChatMember answers, remembered briefly; failures are not cached (the next call asks again)."""

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[int, int], tuple[float, bool]] = {}

    async def is_admin(self, bot: Any, chat_id: int, user_id: int) -> bool:
        now = self._clock()
        cached = self._entries.get((chat_id, user_id))
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            member: ChatMember = await bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            log.warning("getChatMember failed for chat %s user %s: %s", chat_id, user_id, exc)
            return False
        answer = member.status in ADMIN_STATUSES
        self._entries[(chat_id, user_id)] = (now, answer)
        if len(self._entries) > 10_000:  # a bound, not an LRU: stale entries are cheap to refetch
            self._entries.clear()
        return answer

    def forget_chat(self, chat_id: int) -> None:
        """After a migration or removal the old answers mean nothing."""
        for key in [k for k in self._entries if k[0] == chat_id]:
            del self._entries[key]


def chat_admin_cache(context: BotContext) -> ChatAdminCache:
    """The application's cache (tests put one with a fake clock into bot_data before starting)."""
    cache = context.application.bot_data.get(CACHE_KEY)
    if not isinstance(cache, ChatAdminCache):
        cache = ChatAdminCache()
        context.application.bot_data[CACHE_KEY] = cache
    return cache


async def is_chat_admin(update: Update, context: BotContext) -> bool:
    """Whether the sender administers this group; an anonymous admin posting as the group counts."""
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return False
    if _sent_as_chat(message, chat):
        return True
    user = update.effective_user
    if user is None:
        return False
    return await chat_admin_cache(context).is_admin(context.bot, chat.id, user.id)


def _sent_as_chat(message: Message, chat: Chat) -> bool:
    return message.sender_chat is not None and message.sender_chat.id == chat.id
