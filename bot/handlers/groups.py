"""The bot in group chats: what it listens to, the group's own settings, and the bot's membership.

Why a gate of its own (registered before everything else, group -2): in a group the bot must react only
to what is addressed to it (a command without `@` or with `@OurBot`, a command in a photo caption, a reply
to one of its messages). With privacy mode off it would otherwise store every photo posted in the group as
someone's selfie and answer `/help@OtherBot` as an unknown command. A group whose admins switched the bot
off hears nothing but `/group`, and its buttons (Again, New seed) only answer that it is off. Everything
else about groups is ordinary group-0 handlers.

Settings (`/group`, alias `/groupsettings`): anyone may look; only the group's admins (getChatMember,
cached in bot/permissions.py) may change them. The daily cap is enforced by the store when a task is
charged to the group; `results_private` tells delivery to send results to the requester privately.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Chat, Message, MessageEntity, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
)
from telegram.ext import filters as F

from bot.admin.args import MAX_AMOUNT
from bot.handlers.caption import caption_command
from bot.handlers.context import BotContext
from bot.handlers.permissions import chat_admin_cache, is_chat_admin
from bot.handlers.reply import say
from bot.replies import t
from storage import NO_CAP, NotFound
from storage import Chat as ChatRecord

log = logging.getLogger(__name__)

GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
SETTINGS_COMMANDS = ("group", "groupsettings")
PRESENT = frozenset({ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER})


def replied_photo(message: Message) -> tuple[str, str] | None:
    """(file_id, file_unique_id) of the photo (or image file) this message replies to, for `/anime` as a
    reply in a group; None when the replied message has no image."""
    replied = message.reply_to_message
    if replied is None:
        return None
    if replied.photo:
        largest = replied.photo[-1]
        return largest.file_id, largest.file_unique_id
    document = replied.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return document.file_id, document.file_unique_id
    return None


def command_of(message: Message, bot_username: str) -> str | None:
    """The command a text or caption starts with, lower-case, if it is for us; None otherwise."""
    for entity in message.entities or ():
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            name, _, target = message.parse_entity(entity)[1:].partition("@")
            return None if target and target.lower() != bot_username.lower() else name.lower()
    caption = caption_command(message, bot_username)
    return caption.name if caption is not None else None


def addressed_to_bot(message: Message, bot_id: int, bot_username: str) -> bool:
    """A command for us (text or caption), or a reply to one of our messages."""
    if command_of(message, bot_username) is not None:
        return True
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot_id


async def group_gate(update: Update, context: BotContext) -> None:
    """Stop group updates that are not for us, and everything but /group in a group switched off."""
    chat = update.effective_chat
    if chat is None or chat.type not in GROUP_TYPES:
        return
    if update.callback_query is not None:
        await _button_gate(update, context, chat)
        return
    if update.my_chat_member is not None or update.chat_member is not None:
        return
    message = update.message
    if message is None:  # edits, channel posts, reactions: never acted on in groups
        raise ApplicationHandlerStop
    if message.migrate_to_chat_id or message.migrate_from_chat_id:
        return
    bot = context.bot
    if not addressed_to_bot(message, bot.id, bot.username):
        raise ApplicationHandlerStop
    record = await _known_chat(context, chat)
    if not record.enabled and command_of(message, bot.username) not in SETTINGS_COMMANDS:
        raise ApplicationHandlerStop


async def _button_gate(update: Update, context: BotContext, chat: Chat) -> None:
    """A button under an older message ("Again", "New seed") in a group switched off since: a polite
    answer, and nothing is generated or charged. Buttons are not commands: no addressing check."""
    query = update.callback_query
    record = await context.services.store.chats.get(chat.id)
    if query is None or record is None or record.enabled:
        return
    await query.answer(t("group.off_button", context.lang))
    raise ApplicationHandlerStop


async def _known_chat(context: BotContext, chat: Chat) -> ChatRecord:
    """The stored group, created (or marked active again) on the first message we see from it."""
    store = context.services.store
    record = await store.chats.get(chat.id)
    if record is None or record.title != (chat.title or "") or not record.active:
        record = await store.chats.upsert(chat.id, type=chat.type, title=chat.title or "")
        if not record.active:
            await store.chats.set_active(chat.id, True)
    return record


async def group_settings(update: Update, context: BotContext) -> None:
    """`/group` shows; `/group on|off`, `/group cap <n>|off`, `/group private on|off` change (admins only)."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    if chat.type not in GROUP_TYPES:
        await say(update, context, "group.only_in_groups")
        return
    record = await _known_chat(context, chat)
    args = [a.lower() for a in context.args or []]
    if args:
        changes = parse_group_args(args)
        if changes is None:
            await say(update, context, "group.usage")
            return
        if not await is_chat_admin(update, context):
            log.info("user %s is not an admin of chat %s: group settings unchanged", user.id, chat.id)
            await say(update, context, "group.not_admin")
            return
        record = await context.services.store.chats.update_settings(
            chat.id,
            enabled=changes.enabled,
            daily_cap=changes.daily_cap,
            results_private=changes.results_private,
            actor=_actor(update),
        )
    await say(update, context, "group.settings", **describe(record, context.lang))


@dataclass(frozen=True)
class GroupChange:
    """One `/group` change; None fields stay as they are."""

    enabled: bool | None = None
    daily_cap: int | None = None  # NO_CAP removes the cap
    results_private: bool | None = None


def parse_group_args(args: list[str]) -> GroupChange | None:
    """`on`/`off`, `cap <n>`/`cap off`, `private on|off`; None when malformed."""
    switch = {"on": True, "off": False}
    if len(args) == 1 and args[0] in switch:
        return GroupChange(enabled=switch[args[0]])
    if len(args) == 2 and args[0] == "private" and args[1] in switch:
        return GroupChange(results_private=switch[args[1]])
    if len(args) == 2 and args[0] == "cap":
        if args[1] in ("off", "none"):
            return GroupChange(daily_cap=NO_CAP)
        if args[1].isdigit() and 1 <= int(args[1]) <= MAX_AMOUNT:
            return GroupChange(daily_cap=int(args[1]))
    return None


def describe(record: ChatRecord, lang: str) -> dict[str, object]:
    on, off = t("settings.on", lang), t("settings.off", lang)
    cap = t("group.no_cap", lang) if record.daily_cap is None else record.daily_cap
    private = on if record.results_private else off
    return {"enabled": on if record.enabled else off, "cap": cap, "private": private}


def _actor(update: Update) -> int:
    """The admin's user id; an anonymous admin (posting as the group) is recorded as the group's id."""
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id
    return update.effective_user.id if update.effective_user is not None else 0


async def membership_changed(update: Update, context: BotContext) -> None:
    """The bot was added to or removed from a group: remember it, and say hello once when added."""
    change = update.my_chat_member
    if change is None:
        return
    chat = change.chat
    store = context.services.store
    member = change.new_chat_member
    present = member.status in PRESENT or bool(getattr(member, "is_member", False))
    was_present = change.old_chat_member.status in PRESENT
    await store.chats.upsert(chat.id, type=chat.type, title=chat.title or "")
    await store.chats.set_active(chat.id, present)
    log.info("bot %s chat %s (%s)", "added to" if present else "removed from", chat.id, chat.type)
    if not present:
        chat_admin_cache(context).forget_chat(chat.id)
    elif not was_present:
        try:
            await context.bot.send_message(chat.id, t("group.welcome", context.lang))
        except TelegramError as exc:  # e.g. no right to post: membership is still recorded
            log.warning("could not greet chat %s: %s", chat.id, exc)


async def migrated(update: Update, context: BotContext) -> None:
    """Group -> supergroup: move settings and tasks to the new id (both service messages are handled)."""
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    store = context.services.store
    try:
        await store.chats.migrate(old, new)
    except NotFound:  # we never stored the old group: start the new one fresh
        await store.chats.upsert(new, type=ChatType.SUPERGROUP, title=message.chat.title or "")
    chat_admin_cache(context).forget_chat(old)
    log.info("chat %s migrated to %s", old, new)


class GroupMembershipHandler(ChatMemberHandler[BotContext, None]):
    """my_chat_member for groups only: a private chat's block/unblock is someone else's business."""

    def check_update(self, update: object) -> bool:
        if not super().check_update(update):
            return False
        chat = update.effective_chat if isinstance(update, Update) else None
        return chat is not None and chat.type != ChatType.PRIVATE


def group_gate_handler() -> BaseHandler[Update, BotContext, None]:
    """Register in its own group before the user gate: `application.add_handler(..., group=-2)`.

    Every update type (not a MessageHandler, which never sees callback queries): the gate itself checks the
    chat type, and buttons in a group switched off must be stopped too."""
    return TypeHandler(Update, group_gate)


def group_handlers() -> list[BaseHandler[Update, BotContext, None]]:
    """Group-0 handlers; place them above the catch-all unknown-command and text handlers."""
    return [
        CommandHandler(list(SETTINGS_COMMANDS), group_settings),
        GroupMembershipHandler(membership_changed, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(F.StatusUpdate.MIGRATE, migrated),
    ]
